"""A ladder at tokens per parameter, end to end: each rung trains its own steps through the sandbox, the tune
sweep's trials train a fraction of the tune rung's steps, and the fitness cache answers by the resolved config."""

import pytest

from broken_programs import TEMPLATE
from tiny_evaluators import tiny_evaluator
from openevolve_genesys.evaluation.tuning import TuneSettings, trial_train
from openevolve_genesys.training.profiles import get_profile, rung_n_params, rung_train

# N = 3,312 and 7,272; 256 tokens per step: 3 tokens per parameter is 39 and 86 steps.
SCALED = {
    "vocab_size": 512,
    "rungs": [{"d_model": 16, "n_layers": 1, "n_heads": 2}, {"d_model": 24, "n_layers": 1, "n_heads": 2}],
    "train": {"seq_len": 32, "batch_size": 8, "steps": 1000, "tokens_per_param": 3, "eval_interval": 20,
              "chunk_steps": 20, "eval_tokens": 1024, "warmup_steps": 5, "learning_rate": 0.01},
}
STEPS = {"r0": 39, "r1": 86}


def test_the_tiny_ladders_steps_follow_the_formula():
    profile = get_profile("smoke", SCALED)
    assert {r.name: profile.rung_train(r.name).steps for r in profile.rungs} == STEPS
    assert [rung_n_params(r) for r in profile.rungs] == [3312, 7272]
    assert profile.rung_train("r0").warmup_steps == 3  # a tenth of 39 steps, below the profile's 5


def test_a_trial_trains_a_fraction_of_the_tune_rungs_steps_and_keeps_them():
    profile = get_profile("smoke", SCALED)
    changes = trial_train(profile, TuneSettings(enabled=True, steps_fraction=0.5))
    assert changes["steps"] == round(39 * 0.5) == changes["eval_interval"] and changes["tokens_per_param"] == 0
    trial = profile.override({"train": changes}).train
    assert rung_train(trial, profile.rung("r0")).steps == 20  # not resolved again to the rung's 39
    # At fixed steps the changes are as they always were (no new key in a recorded target).
    assert "tokens_per_param" not in trial_train(get_profile("smoke"), TuneSettings(enabled=True))


@pytest.fixture(scope="module")
def evaluator(tmp_path_factory):
    return tiny_evaluator(tmp_path_factory.mktemp("fitness"), SCALED)


def test_a_ladder_at_tokens_per_parameter_trains_end_to_end(evaluator):
    result = evaluator.evaluate(TEMPLATE, tune=TuneSettings(enabled=True, grid=(1.0, 2.0), steps_fraction=0.5))
    assert result.outcome == "ok", result.artifacts
    for name, steps in STEPS.items():
        rung = result.rungs[name]
        assert rung.steps == steps and rung.curve[-1]["step"] == steps  # the last evaluation at the last step
        assert [c["step"] for c in rung.curve][:-1] == list(range(20, steps, 20))
    assert [t.steps for t in result.tune.trials] == [20, 20]
    assert result.tune.target["train"]["tokens_per_param"] == 0
    assert result.metrics["combined_score"] == pytest.approx(0.0, abs=1e-9)  # the baseline against itself
    # The fitness cache holds each rung under its resolved config: asked again, no job runs.
    again = evaluator.evaluate(TEMPLATE, learning_rate=result.metrics["learning_rate"])
    assert again.metrics["cache_hit"] == "code" and {n: r.steps for n, r in again.rungs.items()} == STEPS
