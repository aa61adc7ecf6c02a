"""Tune mode: settings, the sweep's choice and bookkeeping, and each side of a comparison at its own rate."""

import math

import pytest

from broken_programs import TEMPLATE
from tiny_evaluators import tiny_evaluator
from openevolve_genesys.evaluation import evaluator as evaluator_module
from openevolve_genesys.evaluation.checks import CheckSettings
from openevolve_genesys.evaluation.cache import CacheKey, config_hash
from openevolve_genesys.evaluation.evaluator import Evaluation, ScalingLawEvaluator
from openevolve_genesys.evaluation.settings import EvaluatorSettings
from openevolve_genesys.evaluation.tuning import (
    TuneBudget, TuneResult, TuneSettings, evaluate_tuned, trial_train, tune_learning_rate, tune_rung,
)
from openevolve_genesys.strict import ConfigError
from openevolve_genesys.training.profiles import get_profile
from openevolve_genesys.training.rung_result import rungs_from_dict

RATE = 0.01
TINY = {
    "vocab_size": 512,
    "rungs": [{"d_model": 16, "n_layers": 1, "n_heads": 2}],  # one rung: a baseline costs one sandbox run
    "train": {"seq_len": 32, "batch_size": 8, "steps": 40, "eval_interval": 20, "chunk_steps": 20,
              "eval_tokens": 1024, "warmup_steps": 5, "learning_rate": RATE},
}
# The absurd rate must lose on any machine: at 100x, 20 steps of this tiny model reached the unigram loss as 1x did
# (5.7752 against 5.7758 nats in one CI run), so which won was decided by rounding.
ABSURD = 10_000.0
CHEAP = TuneSettings(enabled=True, grid=(1.0, ABSURD), steps_fraction=0.5, eval_tokens_fraction=0.5)


@pytest.fixture(scope="module")
def evaluator(tmp_path_factory):
    # Speeds measured minutes apart on a shared 2-core machine vary more than 3x; the speeds passed on are
    # asserted below, the guard itself is tested in test_checks.
    return tiny_evaluator(tmp_path_factory.mktemp("fitness"), TINY, checks=CheckSettings(max_step_time_ratio=100.0))


def sandbox_calls(monkeypatch):
    calls = []
    original = evaluator_module.run_in_sandbox
    monkeypatch.setattr(evaluator_module, "run_in_sandbox",
                        lambda *a, **k: calls.append({**a[1], "env": k["env"]}) or original(*a, **k))
    return calls


# -- settings --------------------------------------------------------------------------------------

def test_tune_settings_are_read_strictly_and_validated():
    settings = EvaluatorSettings.from_dict({"tune": {"enabled": True, "grid": [0.5, 1, 4], "halving": True}})
    assert settings.tune.grid == (0.5, 1.0, 4.0) and settings.tune.enabled
    with pytest.raises(ConfigError, match="unknown key 'gird' in genesys.tune; did you mean 'grid'"):
        EvaluatorSettings.from_dict({"tune": {"gird": [1.0]}})
    for bad, words in [({"grid": []}, "non-empty"), ({"grid": [1.0, -2.0]}, "positive"),
                       ({"grid": [1.0, 1.0]}, "repeats"), ({"steps_fraction": 0.0}, r"\(0, 1\]"),
                       ({"budget": -1}, ">= 0")]:
        with pytest.raises(ConfigError, match=words):
            EvaluatorSettings.from_dict({"tune": bad})
    with pytest.raises(ConfigError, match=r"genesys.tune.rung \(profile smoke\) is 'r7', which is not one of r0"):
        ScalingLawEvaluator(EvaluatorSettings(profile="smoke", profile_overrides=TINY, tune=TuneSettings(rung="r7")))


def test_the_cheap_target_shortens_training_and_evaluates_once_at_the_end():
    profile = get_profile("smoke", TINY)
    assert trial_train(profile, TuneSettings()) == {"steps": 12, "warmup_steps": 2, "eval_interval": 12,
                                                    "eval_tokens": 256}
    assert trial_train(profile, TuneSettings(steps_fraction=0.5), fraction=0.5)["steps"] == 10
    assert TuneSettings(grid=(1, 2, 3, 4, 5, 6, 7, 8), halving=True).rounds() == [(0.25, 8), (0.5, 4), (1.0, 2)]
    backwards = get_profile("smoke", {"rungs": [{"name": "big", "d_model": 64, "n_layers": 3, "n_heads": 4},
                                                {"name": "small", "d_model": 32, "n_layers": 2, "n_heads": 2}]})
    assert tune_rung(backwards, TuneSettings()) == "small" and tune_rung(backwards, TuneSettings(rung="big")) == "big"


# -- the sweep's logic, on a fake evaluator (no training) --------------------------------------------

class FakeEvaluator:
    """Loss is lowest at 2x the profile's rate and falls with steps; some rates can be made to fail."""

    def __init__(self, fail: dict[float, tuple[str, str]] | None = None):
        self.profile = get_profile("smoke", TINY)
        self.fail, self.calls = fail or {}, []

    def evaluate(self, source, rungs, **options):
        lr, steps = options["learning_rate"], options["trial"]["steps"]
        self.calls.append((round(lr / RATE, 6), steps))
        if round(lr / RATE, 6) in self.fail:
            outcome, check = self.fail[round(lr / RATE, 6)]
            return Evaluation(outcome, {"outcome": outcome, "check": check})
        loss = 3.0 + math.log(lr / (2 * RATE)) ** 2 + 10.0 / steps
        return Evaluation("ok", {"outcome": "ok", "cache_hit": None}, {},
                          rungs_from_dict({rungs[0]: {"n_params": 1, "final_eval_loss": loss}}))


def test_successive_halving_keeps_the_better_half_and_trains_it_longer():
    fake = FakeEvaluator()
    result = tune_learning_rate(fake, "src", TuneSettings(grid=(0.25, 0.5, 1.0, 2.0, 6.0), halving=True))
    assert result.best_learning_rate == pytest.approx(2 * RATE) and result.tuned and "wider" not in result.note
    assert sorted(c for c in fake.calls if c[1] == 12) == [(1.0, 12), (2.0, 12)]  # the last round: the two best
    assert [steps for _, steps in fake.calls] == [3] * 5 + [6] * 3 + [12] * 2
    assert len(fake.calls) == TuneSettings(grid=(1, 2, 3, 4, 5), halving=True).max_trials() == 10
    assert TuneResult.from_dict(result.to_dict()) == result


def test_a_winner_at_the_edge_of_the_grid_is_flagged():
    result = tune_learning_rate(FakeEvaluator(), "src", TuneSettings(grid=(0.25, 0.5, 1.0)))
    assert result.best_learning_rate == pytest.approx(RATE) and "highest rate won" in result.note


def test_a_failure_another_rate_would_not_fix_stops_the_sweep_and_all_failures_fall_back():
    fake = FakeEvaluator(fail={0.5: ("invalid", "causality")})
    stopped = tune_learning_rate(fake, "src", TuneSettings(grid=(0.5, 1.0, 2.0)))
    assert len(fake.calls) == 1 and not stopped.tuned and stopped.best_learning_rate == RATE
    assert "causality" in stopped.note

    fake = FakeEvaluator(fail={1.0: ("invalid", "loss_not_falling"), 100.0: ("invalid", "loss_exploded")})
    failed = tune_learning_rate(fake, "src", TuneSettings(grid=(1.0, 100.0)))
    assert len(fake.calls) == 2 and not failed.tuned and failed.best_learning_rate == RATE
    assert "every trial failed (loss_exploded, loss_not_falling)" in failed.note


def test_the_tune_budget_refuses_a_sweep_that_could_overrun_it():
    budget, fake = TuneBudget(limit=4), FakeEvaluator()
    assert tune_learning_rate(fake, "a", TuneSettings(grid=(1.0, 2.0, 4.0)), budget=budget).tuned
    refused = tune_learning_rate(fake, "b", TuneSettings(grid=(1.0, 2.0)), budget=budget)
    assert not refused.tuned and refused.trials == () and "budget spent (3 of 4" in refused.note
    assert budget.state_dict()["trained"] == 3 and budget.refused == 1 and len(fake.calls) == 3
    # Compared with a tuned baseline, an untuned design trains at the baseline's rate, not the profile's.
    fair = tune_learning_rate(fake, "c", TuneSettings(grid=(1.0, 2.0)), budget=budget, baseline_learning_rate=2 * RATE)
    assert not fair.tuned and fair.best_learning_rate == 2 * RATE and "the baseline's rate is used" in fair.note


# -- real sweeps and comparisons, through the sandbox ------------------------------------------------

def test_an_absurd_rate_is_not_chosen_and_a_repeated_sweep_is_answered_by_the_cache(evaluator, monkeypatch):
    first = tune_learning_rate(evaluator, TEMPLATE, CHEAP)
    assert first.tuned and first.best_learning_rate == RATE, first.to_dict()
    absurd = [t for t in first.trials if t.learning_rate == ABSURD * RATE][0]
    ok = next(t for t in first.trials if t.learning_rate == RATE)
    assert absurd.outcome != "ok" or absurd.loss > ok.loss
    assert all(t.steps == 20 for t in first.trials) and first.target["rung"] == "r0"

    calls = sandbox_calls(monkeypatch)
    again = tune_learning_rate(evaluator, TEMPLATE, CHEAP)
    assert again.best_learning_rate == RATE
    assert all(t.cache_hit for t in again.trials if t.outcome == "ok")
    assert len(calls) == sum(t.outcome != "ok" for t in again.trials)  # failures are never cached


def test_a_design_rate_is_cached_apart_and_compared_with_the_baseline_at_its_own_rate(evaluator, monkeypatch):
    at_default = evaluator.evaluate(TEMPLATE, ["r0"], learning_rate=RATE)
    assert at_default.metrics["combined_score"] == pytest.approx(0.0, abs=1e-9)  # the baseline against itself
    faster = evaluator.evaluate(TEMPLATE, ["r0"], learning_rate=2 * RATE)
    assert faster.outcome == "ok" and faster.metrics["cache_hit"] is None  # not the default rate's entry
    assert faster.metrics["learning_rate"] == 2 * RATE and faster.metrics["baseline_learning_rate"] == RATE
    fhash, fingerprint = faster.metrics["functional_hash"], evaluator.data_fingerprint()
    entries = {lr: evaluator.cache.get(CacheKey(fhash, "smoke", "r0", fingerprint,
                                                config_hash(evaluator.train_config(lr).identity())))
               for lr in (RATE, 2 * RATE)}
    assert entries[RATE]["final_eval_loss"] != entries[2 * RATE]["final_eval_loss"]
    assert faster.rungs["r0"].final_eval_loss == entries[2 * RATE]["final_eval_loss"]

    # The baseline tuned to 2x: a design at 1x is compared with it, not with the baseline at 1x.
    evaluator.set_baseline_learning_rate(2 * RATE)
    try:
        calls = sandbox_calls(monkeypatch)
        design = TEMPLATE.replace("math.sqrt(", "1.25 * math.sqrt(", 1)
        result = evaluator.evaluate(design, ["r0"], learning_rate=RATE, env={"GENESYS_SLOT": "7"})
        baseline = evaluator.baseline()
    finally:
        evaluator.set_baseline_learning_rate(None)
    assert result.outcome == "ok", (result.metrics, result.artifacts["message"])
    assert result.metrics["learning_rate"] == RATE and result.metrics["baseline_learning_rate"] == 2 * RATE
    assert baseline.metrics["learning_rate"] == 2 * RATE
    assert baseline.rungs["r0"].final_eval_loss == entries[2 * RATE]["final_eval_loss"]
    # One rung is no slope evidence: the utility is the measured gap (persistence), up to the level prior's pull.
    assert result.metrics["combined_score"] == pytest.approx(
        baseline.rungs["r0"].final_eval_loss - result.rungs["r0"].final_eval_loss, rel=1e-3)
    assert calls[-1]["baseline_tokens_per_second"] == {n: r.tokens_per_second for n, r in baseline.rungs.items()}
    assert calls[-1]["profile_overrides"]["train"]["learning_rate"] == RATE
    assert calls[-1]["env"]["GENESYS_SLOT"] == "7"  # an engine slot's pinning reaches the child


def test_a_sweep_in_the_design_job_costs_one_start_up_and_one_compile_per_shape(evaluator, monkeypatch):
    design = TEMPLATE.replace("math.sqrt(", "1.5 * math.sqrt(", 1)  # trained nowhere else in this module
    budget = TuneBudget()
    calls = sandbox_calls(monkeypatch)
    together = evaluate_tuned(evaluator, evaluator.profile, design, ["r0"], CHEAP, budget=budget)
    assert together.outcome == "ok", together.artifacts["message"]
    assert len(calls) == 1 + (evaluator.known_baseline() is None)  # the sweep and the rung: one job
    tune = together.tune
    assert tune.tuned and tune.best_learning_rate == RATE and len(tune.trials) == 2 and budget.trained == 2
    assert together.metrics["learning_rate"] == RATE and together.rungs["r0"].cache_hit is None
    # On a CPU (tune.batched: auto) the trials train one after another: trials of 20 steps and the rung of 40
    # share one 20-step chunk program, and the trials' shorter evaluation slice the rung's one-batch evaluation
    # program. (The batched grid: test_job_grid.py.)
    assert [t.batch for t in tune.trials] == [1, 1]
    assert together.artifacts["compiles"] == 2
    timing = together.timing
    assert timing["train"] > 0 and timing["compile"] > 0 and timing["startup"] > 0
    assert sum(timing.values()) == pytest.approx(together.artifacts["seconds"], rel=0.03)

    # One trial per job files its results under the same keys: its trained trials are answered by the cache.
    apart = tune_learning_rate(evaluator, design, CHEAP)
    assert apart.best_learning_rate == tune.best_learning_rate
    for a, b in zip(apart.trials, tune.trials):
        assert a.outcome == b.outcome and (a.outcome != "ok" or (a.cache_hit and a.loss == b.loss))
