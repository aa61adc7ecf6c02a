"""The stage's offline design agent: OpenEvolve builds it, it answers real prompts with diffs that apply, and
its operators change the plan, the gate and the head split as named."""

import asyncio
import pickle
import random

from openevolve import config as oe
from openevolve.llm.ensemble import LLMEnsemble

from openevolve_genesys.controller.answer import operator_name
from openevolve_genesys.controller.jobs import apply_response
from openevolve_genesys.evaluation.program import split_block
from openevolve_genesys.mutations.units import class_texts
from openevolve_genesys.prompts.sampler import PromptRequest, PromptSampler
from openevolve_genesys.stages.operators import (
    MAX_CYCLE, CombinationMutationLLM, init_combination_client, mutate_plan, pool_keys, propose, read_cycle,
)
from openevolve_genesys.stages.template import COMBINATORS, GATE_VARIANTS
from stage_programs import with_plan

KEYS = ["m0", "m1", "base"]


def prompt_for(template_file, seed: str, unit: str) -> dict[str, str]:
    return PromptSampler().build(PromptRequest(framework=str(template_file), seed_code=seed,
                                               seed_curve="r0: 6.50", unit=unit, attempt=2))


def test_the_ensemble_builds_the_client_and_its_diff_applies(template_file, template):
    ensemble = LLMEnsemble([oe.LLMModelConfig(name="offline-combinator", init_client=init_combination_client,
                                              random_seed=3)])
    prompt = prompt_for(template_file, template, "Plan")
    assert "Cannot modify:" in prompt["system"] and "pool members' classes" in prompt["system"]
    answer = asyncio.run(ensemble.generate_with_context(prompt["system"],
                                                        [{"role": "user", "content": prompt["user"]}]))
    assert operator_name(answer, "Plan").startswith("Plan:")
    child, notes = apply_response(template, answer, template, "reject")
    assert not notes and read_cycle(child) != read_cycle(template)
    assert split_block(child).before == split_block(template).before  # the pool is untouched
    assert pickle.loads(pickle.dumps(init_combination_client)) is init_combination_client


def test_answers_are_deterministic_and_a_bad_prompt_gets_no_diff(template_file, template):
    prompt = prompt_for(template_file, template, "Plan")["user"]
    assert CombinationMutationLLM().respond(prompt) == CombinationMutationLLM().respond(prompt)
    assert "<<<<<<<" not in CombinationMutationLLM().respond("no program here")
    not_a_stage = prompt.replace("POOL = {", "OTHER = {")
    assert "not a combination-stage program" in CombinationMutationLLM().respond(not_a_stage)


def test_plan_operators_keep_cycles_valid():
    rng = random.Random(0)
    cycle, seen = [("single", "m0")], set()
    for _ in range(60):
        cycle, name = mutate_plan(cycle, KEYS, rng)
        seen.add(name)
        assert 1 <= len(cycle) <= MAX_CYCLE
        assert all(len(c) == 1 + COMBINATORS[c[0]] and set(c[1:]) <= set(KEYS) for c in cycle)
        assert all(c[1] != c[2] for c in cycle if len(c) == 3)  # a pair combines two different members
    assert seen == {"swap_member", "combinator", "interleave", "drop"}


def test_gate_and_head_split_units_change_what_they_name(template):
    rng = random.Random(1)
    # No cell uses a gate yet: asking for Gate turns a cell into a gate, so the change matters.
    first = propose(template, "Gate", rng)
    assert first.operator == "Plan:gate" and read_cycle(first.child_source)[0][0] == "gate"
    # Now the gate exists: its variant is swapped, and the plan stays.
    second = propose(first.child_source, "Gate", rng)
    assert second.operator == "Gate:static" and second.previous == "data"
    assert class_texts(second.child_source)["Gate"] == GATE_VARIANTS["static"]
    split = propose(with_plan(template, [("heads", "m0", "m1")]), "HeadSplit", rng)
    assert split.operator.startswith("HeadSplit:share_") and split.operator != "HeadSplit:share_0.5"


def test_pool_keys_come_from_the_frozen_pool(template):
    assert pool_keys(template) == KEYS
    assert read_cycle(template) == [("single", "m0")]


def test_the_client_does_not_propose_the_same_child_twice(template_file, template):
    client = CombinationMutationLLM()
    prompt = prompt_for(template_file, template, "Gate")["user"]
    children = set()
    # The same seed and unit every time, as when the selector keeps seeding the baseline: the one-cell plan over
    # three members has 8 children (2 swaps, 2 gates, 2 head splits, 2 interleaves), and each comes once.
    for _ in range(8):
        answer = client.respond(prompt)
        children.add(apply_response(template, answer, template, "reject")[0])
    assert len(children) == 8
