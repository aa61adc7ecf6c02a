import dataclasses
import multiprocessing as mp
import pickle
import random

import pytest

from openevolve_genesys.evaluation.program import FRAMEWORKS, block_classes, framework_path
from openevolve_genesys.mutations import propose
from openevolve_genesys.prompts.sampler import PromptRequest, PromptSampler, ReferenceDesign


def request_for(framework: str) -> PromptRequest:
    seed = framework_path(framework).read_text()
    units = [u for u in block_classes(seed) if u != "Mixer"]
    other = propose(seed, framework, unit=units[-1], rng=random.Random(1)).child_source
    return PromptRequest(
        framework=framework, seed_code=seed, seed_curve="eval loss by rung: r0 (N=25,472): 6.0403", unit=units[0],
        attempt=3, instruction="prefer gates that scale", library_refs=("linear_attention",),
        references=(ReferenceDesign("ref-123", f"{units[-1]}:swap", "eval loss by rung: r0: 6.01", other),),
        feedback="check causality failed: output 3 moved when input 7 changed")


@pytest.mark.parametrize("framework", FRAMEWORKS)
def test_the_prompt_holds_seed_unit_references_instruction_feedback_and_rules(framework):
    request = request_for(framework)
    prompt = PromptSampler().build(request)
    user, system = prompt["user"], prompt["system"]
    assert request.seed_code.rstrip() in user
    assert f"Unit to mutate: {request.unit}" in user
    assert "ref-123" in user and "eval loss by rung: r0: 6.01" in user
    assert "Katharopoulos" in user  # the library entry's text
    assert "prefer gates that scale" in user and "check causality failed" in user
    assert "r0 (N=25,472): 6.0403" in user
    for heading in ("May evolve:", "Must preserve:", "Cannot modify:"):
        assert heading in system


def test_references_show_only_the_classes_that_differ_from_the_seed():
    request = request_for("coefficient_dynamics")
    references = PromptSampler().build(request)["user"].split("## References", 1)[1].split("## Feedback")[0]
    changed = request.references[0].operator.split(":")[0]
    assert f"class {changed}" in references
    assert f"class {request.unit}(" not in references


def test_user_templates_override_the_built_in_ones(tmp_path):
    (tmp_path / "design.txt").write_text("MY TEMPLATE unit=$unit")
    prompt = PromptSampler(templates_dir=str(tmp_path)).build(request_for("matrix_mixer"))
    assert prompt["user"].startswith("MY TEMPLATE unit=")
    assert "May evolve:" in prompt["system"]  # system.txt not overridden: the built-in one


def test_a_missing_reference_library_is_a_clear_error(tmp_path):
    with pytest.raises(FileNotFoundError, match="genesys.reference_library"):
        PromptSampler(library_path=str(tmp_path / "missing.yaml"))


def _build_in_child(sampler: PromptSampler, request: PromptRequest, queue) -> None:
    queue.put(sampler.build(request))


@pytest.mark.parametrize("method", ["spawn", "fork"])
def test_the_sampler_builds_the_same_prompt_in_spawned_and_forked_workers(method, tmp_path):
    (tmp_path / "system.txt").write_text("custom system $framework_rules")
    sampler, request = PromptSampler(templates_dir=str(tmp_path)), request_for("test_time_regression")
    pickle.loads(pickle.dumps(sampler))  # spawn pickles it
    context = mp.get_context(method)
    queue = context.Queue()
    child = context.Process(target=_build_in_child, args=(sampler, request, queue))
    child.start()
    prompt = queue.get(timeout=120)
    child.join(timeout=60)
    assert prompt == sampler.build(request)
    assert prompt["system"].startswith("custom system")


def test_the_prompt_says_whether_the_learning_rate_will_be_tuned():
    request = request_for("matrix_mixer")
    plain = PromptSampler().build(request)["user"].splitlines()[0]
    tuned = PromptSampler().build(dataclasses.replace(request, tuned=True))["user"].splitlines()[0]
    assert "mode: submit" in plain and "profile's learning rate" in plain and "tuned" not in plain
    assert "mode: submit" in tuned and "tuned automatically" in tuned and "not charged" in tuned


def test_the_answer_format_follows_the_mode():
    request = request_for("coefficient_dynamics")
    diff_prompt = PromptSampler().build(request)["user"]
    rewrite_prompt = PromptSampler().build(dataclasses.replace(request, rewrite=True))["user"]
    assert "<<<<<<< SEARCH" in diff_prompt and "whole updated program" not in diff_prompt
    assert "<<<<<<< SEARCH" not in rewrite_prompt and "whole updated program in one ```python fence" in rewrite_prompt
    assert "# EVOLVE-BLOCK-START" in rewrite_prompt.split("## Answer format")[1]
    assert f"change only the class `{request.unit}`" in rewrite_prompt
