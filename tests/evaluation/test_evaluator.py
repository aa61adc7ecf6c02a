"""End to end: programs go through the sandbox, the ladder and the fit; the test process survives all of them."""

import os
from pathlib import Path

import pytest

from broken_programs import BROKEN, HAZARDS, TEMPLATE
from tiny_evaluators import tiny_evaluator
from openevolve_genesys.evaluation import evaluator as evaluator_module
from openevolve_genesys.evaluation.evaluator import INVALID_SCORE, ScalingLawEvaluator

TINY = {
    "vocab_size": 512,
    "rungs": [{"d_model": 16, "n_layers": 1, "n_heads": 2}, {"d_model": 24, "n_layers": 1, "n_heads": 2},
              {"d_model": 32, "n_layers": 1, "n_heads": 2}],
    "train": {"seq_len": 32, "batch_size": 8, "steps": 40, "eval_interval": 20, "chunk_steps": 20,
              "eval_tokens": 1024, "warmup_steps": 5, "learning_rate": 0.01},
}


@pytest.fixture(scope="module")
def evaluator(tmp_path_factory):
    return tiny_evaluator(tmp_path_factory.mktemp("fitness"), TINY)


def test_the_baseline_trains_every_rung_and_is_scored_against_itself(evaluator):
    result = evaluator.evaluate(TEMPLATE)
    assert result.outcome == "ok", result.artifacts
    assert set(result.rungs) == {"r0", "r1", "r2"}
    assert result.metrics["loss_r0"] > result.metrics["loss_r2"]  # loss falls with size
    assert result.metrics["forecast_low"] <= result.metrics["forecast"] <= result.metrics["forecast_high"]
    assert result.metrics["combined_score"] == pytest.approx(0.0, abs=1e-9)  # the gap to itself
    assert "r0 N=" in result.artifacts["learning_curves"]


def count_sandbox_runs(monkeypatch):
    calls = []
    original = evaluator_module.run_in_sandbox
    monkeypatch.setattr(evaluator_module, "run_in_sandbox", lambda *a, **k: calls.append(1) or original(*a, **k))
    return calls


def test_an_equivalent_rewrite_is_answered_by_the_cache_without_training(evaluator, monkeypatch):
    evaluator.evaluate(TEMPLATE)
    runs = count_sandbox_runs(monkeypatch)
    reformatted = TEMPLATE.replace("class Readout(nnx.Module):", "# a comment\nclass Readout(nnx.Module):  # tidy")
    same = evaluator.evaluate(reformatted)
    assert same.outcome == "ok" and same.metrics["cache_hit"] == "code" and runs == []

    renamed = TEMPLATE.replace("alpha", "weights")  # same function, other names: the functional hash decides
    hit = evaluator.evaluate(renamed)
    assert hit.outcome == "ok" and hit.metrics["cache_hit"] == "functional" and len(runs) == 1
    assert hit.artifacts["trained_rungs"] == []


def test_a_different_constant_misses_the_cache_and_trains(evaluator):
    evaluator.evaluate(TEMPLATE)
    changed = TEMPLATE.replace("math.sqrt(", "1.25 * math.sqrt(", 1)
    assert changed != TEMPLATE
    result = evaluator.evaluate(changed)
    assert result.outcome == "ok" and result.metrics["cache_hit"] is None
    assert result.artifacts["trained_rungs"] == ["r0", "r1", "r2"]


@pytest.mark.parametrize("kind", ["causality", "loss_exploded"])
def test_check_failures_reach_the_caller_as_invalid_with_their_kind(evaluator, kind):
    result = evaluator.evaluate({**BROKEN, **HAZARDS}[kind], rungs=["r0"])
    assert result.outcome == "invalid" and result.metrics["check"] == kind
    assert result.metrics["combined_score"] == INVALID_SCORE


@pytest.mark.parametrize("hazard, outcome, words", [
    ("exception", "invalid", "boom at long sequences"),
    ("sys_exit", "invalid", "exit"),
    ("os_exit", "invalid", "exit"),
    ("infinite_loop", "timeout", "heartbeat"),
    ("huge_allocation", "crashed", "memory"),
    ("fork", "invalid", "forked a sleeper"),
    ("write_outside", "invalid", "genesys_escape_test"),
    ("network", "invalid", "203.0.113.1"),
])
def test_sandbox_hazards_get_their_outcome_and_the_test_process_survives(evaluator, hazard, outcome, words):
    result = evaluator.evaluate(HAZARDS[hazard], rungs=["r0"])
    assert result.outcome == outcome, result.artifacts["message"]
    assert words in result.artifacts["message"]
    assert not Path("/tmp/genesys_escape_test.txt").exists()
    assert os.getpid() > 0  # still here


def test_baseline_seeds_differ_are_cached_apart_and_seed_0_is_the_single_seed_run(evaluator):
    from openevolve_genesys.evaluation.cache import config_hash
    from openevolve_genesys.evaluation.evaluator import with_seed_losses

    first = evaluator.evaluate(TEMPLATE, ["r0"])
    seeds = [evaluator.evaluate(TEMPLATE, ["r0"], trial={"seed": s}) for s in (1, 2)]
    losses = [first.rungs["r0"].final_eval_loss] + [e.rungs["r0"].final_eval_loss for e in seeds]
    assert all(e.outcome == "ok" for e in seeds) and len(set(losses)) == 3
    again = evaluator.evaluate(TEMPLATE, ["r0"], trial={"seed": 0})  # seed 0 is the single-seed run, from the cache
    assert again.rungs["r0"].final_eval_loss == losses[0] and again.metrics["cache_hit"] == "code"
    keys = {config_hash(evaluator.train_config(trial={"seed": s}).identity()) for s in (0, 1, 2)}
    assert len(keys) == 3 and config_hash(evaluator.train_config().identity()) in keys
    merged = with_seed_losses(first, seeds)
    assert merged.rungs["r0"].seed_losses == tuple(losses)
    assert merged.timing["train"] == pytest.approx(sum(e.timing["train"] for e in [first, *seeds]), abs=0.01)


def test_baseline_seeds_in_one_job_train_as_one_job_each_would_and_are_cached_per_seed(evaluator, monkeypatch,
                                                                                       tmp_path):
    import dataclasses

    runs = count_sandbox_runs(monkeypatch)
    together = evaluator.evaluate(TEMPLATE, ["r0"], seeds=[3, 4])
    assert together.outcome == "ok", together.artifacts
    assert len(runs) == 1 and together.artifacts["trained_rungs"] == ["r0"]
    assert len(together.seeds) == 2 and all(e.metrics["trial"] and e.outcome == "ok" for e in together.seeds)
    losses = [e.rungs["r0"].final_eval_loss for e in together.seeds]
    assert losses[0] != losses[1] and together.rungs == together.seeds[0].rungs
    # The seeds' timings add up to the one job's, as with_seed_losses sums them.
    assert sum(e.timing["train"] for e in together.seeds) == pytest.approx(together.timing["train"], abs=0.01)

    # One job per seed, in a fresh fitness cache: the same losses.
    alone = ScalingLawEvaluator(dataclasses.replace(evaluator.settings, cache_path=str(tmp_path / "alone.sqlite")))
    for seed, loss in zip((3, 4), losses):
        single = alone.evaluate(TEMPLATE, ["r0"], trial={"seed": seed})
        assert single.rungs["r0"].final_eval_loss == pytest.approx(loss, rel=1e-5)

    # Each seed is its own cache entry, under the key a job of its own would have used.
    del runs[:]
    cached = evaluator.evaluate(TEMPLATE, ["r0"], trial={"seed": 4})
    assert cached.metrics["cache_hit"] == "code" and cached.rungs["r0"].final_eval_loss == losses[1]
    again = evaluator.evaluate(TEMPLATE, ["r0"], seeds=[3, 4])
    assert runs == [] and [e.rungs["r0"].final_eval_loss for e in again.seeds] == losses
    with pytest.raises(ValueError, match="seeds"):
        evaluator.evaluate(TEMPLATE, ["r0"], seeds=[3], trial={"seed": 3})
    with pytest.raises(ValueError, match="non-empty"):
        evaluator.evaluate(TEMPLATE, ["r0"], seeds=[])
