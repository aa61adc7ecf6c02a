"""The offline client as OpenEvolve sees it: built by init_client, answers real prompts with applicable diffs."""

import asyncio
import pickle

from openevolve import config as oe
from openevolve.llm.ensemble import LLMEnsemble
from openevolve.utils.code_utils import apply_diff_blocks, extract_diffs

from openevolve_genesys.evaluation.program import framework_path
from openevolve_genesys.mutations import identify
from openevolve_genesys.mutations.client import OfflineMutationLLM, init_offline_client, parse_prompt
from openevolve_genesys.prompts.sampler import PromptRequest, PromptSampler, ReferenceDesign


def design_prompt(framework: str, unit: str) -> dict[str, str]:
    seed = framework_path(framework).read_text()
    variant = seed.replace("return self.out(", "return 2 * self.out(")
    reference = ReferenceDesign("d7", "Readout:gate", "r0: 5.10", variant)
    return PromptSampler().build(PromptRequest(framework=framework, seed_code=seed, seed_curve="r0: 5.20", unit=unit,
                                               attempt=3, references=[reference]))


def ask(client, prompt: dict[str, str]) -> str:
    return asyncio.run(client.generate_with_context(prompt["system"], [{"role": "user", "content": prompt["user"]}]))


def test_the_ensemble_builds_the_client_and_its_diff_applies_to_the_seed():
    config = oe.LLMModelConfig(name="offline-mutator", init_client=init_offline_client, random_seed=5)
    ensemble = LLMEnsemble([config])
    client = ensemble.models[0]
    assert isinstance(client, OfflineMutationLLM) and vars(client)["model"] == "offline-mutator"
    seed = framework_path("test_time_regression").read_text()
    answer = ask(ensemble, design_prompt("test_time_regression", "Regressor"))
    assert answer.splitlines()[0] == f"Operator: {client.last_operator}"
    assert client.last_operator.startswith("Regressor:")
    child, applied = apply_diff_blocks(seed, extract_diffs(answer))
    assert applied == 1 and child == client.last_mutation.child_source
    assert identify(child, "test_time_regression")["Regressor"] == client.last_operator.split(":")[1]
    pickle.loads(pickle.dumps(config))  # spawned workers receive the config with init_client
    pickle.loads(pickle.dumps(client))


def test_the_seed_comes_from_its_section_not_from_the_references():
    prompt = design_prompt("matrix_mixer", "Normalisation")["user"]
    seed, unit = parse_prompt(prompt)
    assert seed == framework_path("matrix_mixer").read_text().rstrip() + "\n" and unit == "Normalisation"
    openevolve_style = "# Current Program\n```python\n" + seed + "```\n\n# Task\nImprove it."
    assert parse_prompt(openevolve_style) == (seed, None)


def test_answers_are_deterministic_given_the_seed_and_the_call_counter():
    prompt = design_prompt("coefficient_dynamics", "Dynamics")

    def answers(random_seed):
        client = init_offline_client(oe.LLMModelConfig(name="x", random_seed=random_seed))
        return [ask(client, prompt) for _ in range(6)]

    first = answers(1)
    assert first == answers(1)
    assert len(set(first)) > 1  # the counter moves the choice
    assert first != answers(2)
    assert all(answer.startswith("Operator: Dynamics:") for answer in first)
    assert answers(None) == answers(0)


def test_a_missing_or_unknown_unit_mutates_a_random_one():
    client = OfflineMutationLLM()
    prompt = design_prompt("matrix_mixer", "Mixer")["user"]
    answer = asyncio.run(client.generate(prompt))
    assert "Note: unit 'Mixer' has no offline catalogue" in answer and extract_diffs(answer)
    without = prompt.replace("Unit to mutate: Mixer\n", "")
    units = {asyncio.run(client.generate(without)) and client.last_operator.split(":")[0] for _ in range(12)}
    assert len(units) > 1


def test_unusable_prompts_get_an_explanation_without_a_diff():
    client = OfflineMutationLLM()
    for prompt in ("Please improve the model.", "## Seed program\n```python\nprint('no markers')\n```\n"):
        answer = asyncio.run(client.generate(prompt))
        assert answer.startswith("Offline mutator:") and extract_diffs(answer) == []
        assert client.last_operator is None
