import types

import pytest

from openevolve_genesys.evaluation.evaluator import ScalingLawEvaluator
from openevolve_genesys.evaluation.settings import EvaluatorSettings
from openevolve_genesys.selection.valuation import Valuer
from openevolve_genesys.training.profiles import get_profile
from openevolve_genesys.training.rung_result import rungs_from_dict
from hand_records import SIZES, baseline, record, seeded_baseline

SMOKE = get_profile("smoke")  # hand_records names its rungs as the smoke ladder does


def test_the_baseline_has_zero_utility_and_high_confidence():
    valuer = Valuer.for_baseline(baseline())
    base = baseline()
    valuer.value(base)
    assert base.utility == pytest.approx(0.0, abs=1e-9)
    assert base.confidence > 0.8


def test_a_better_design_has_positive_utility_and_confidence_grows_with_rungs():
    valuer = Valuer.for_baseline(baseline())
    values = []
    for rungs in range(1, 5):
        design = record("d", 0.98, rungs)
        valuer.value(design)
        values.append((design.utility, design.confidence, design.forecast["p_better"]))
    assert all(u > 0 and p > 0.99 for u, _, p in values)
    confidences = [c for _, c, _ in values]
    # the smallest rung alone: all prior (its one pair barely moves the noise posterior off its prior weights)
    assert confidences[0] == pytest.approx(0.0, abs=1e-3)
    assert confidences == sorted(confidences) and confidences[-1] > 0.8


def test_a_worse_design_has_negative_utility():
    valuer = Valuer.for_baseline(baseline())
    design = record("d", 1.03, 2)
    valuer.value(design)
    assert design.utility < 0
    assert design.forecast["low"] < design.utility < design.forecast["high"]


def test_a_failed_design_has_no_value():
    valuer = Valuer.for_baseline(baseline())
    design = record("d", outcome="invalid")
    valuer.value(design)
    assert design.utility is None and design.confidence == 0.0


def test_a_baseline_without_rungs_is_refused():
    with pytest.raises(ValueError, match="no verified rung"):
        Valuer.for_baseline(record("baseline", outcome="crashed"))


def test_the_population_moves_a_one_rung_forecast():
    valuer = Valuer.for_baseline(baseline())
    alone, informed = record("d", 0.98, 1), record("d", 0.98, 1)
    valuer.value(alone)
    valuer.value(informed, [record(f"p{i}", 0.96 + 0.002 * i, 4) for i in range(6)])
    assert informed.utility != pytest.approx(alone.utility, abs=1e-6)


def as_rungs(design):
    """A design record's rungs as an evaluation holds them (with each rung's seed losses, a baseline's)."""
    return rungs_from_dict({name: {"rung": name, "n_params": r.n_params, "final_eval_loss": r.loss,
                                   "seed_losses": list(r.seed_losses)} for name, r in design.rungs.items()})


@pytest.mark.parametrize("rungs", [1, 2, 4])
def test_the_evaluator_and_the_selector_report_the_same_utility(rungs):
    """One scoring function: OpenEvolve's combined_score and the selector's utility agree on the same records
    (the selector with no population, which the evaluator never has)."""
    base, design = baseline(), record("d", 0.985, rungs)
    Valuer.for_baseline(base, depths=SMOKE.depths()).value(design)
    scorer = types.SimpleNamespace(settings=EvaluatorSettings(), profile=SMOKE)  # what _score reads
    metrics = ScalingLawEvaluator._score(scorer, as_rungs(design), as_rungs(base))
    assert metrics["combined_score"] == pytest.approx(design.utility, rel=1e-12)
    assert metrics["confidence"] == pytest.approx(design.confidence, rel=1e-12)
    assert metrics["forecast_low"] < metrics["forecast"] < metrics["forecast_high"]
    assert metrics["target_n"] == pytest.approx(2.718281828 * SIZES["r3"], rel=1e-6)


@pytest.mark.parametrize("rungs", [1, 2, 4])
def test_the_evaluator_and_the_selector_agree_with_baseline_seeds(rungs):
    base, design = seeded_baseline(), record("d", 0.985, rungs)
    Valuer.for_baseline(base, depths=SMOKE.depths()).value(design)
    scorer = types.SimpleNamespace(settings=EvaluatorSettings(), profile=SMOKE)
    baseline_rungs = as_rungs(base)
    assert all(r.seed_losses == base.rungs[name].losses for name, r in baseline_rungs.items())
    metrics = ScalingLawEvaluator._score(scorer, as_rungs(design), baseline_rungs)
    assert metrics["combined_score"] == pytest.approx(design.utility, rel=1e-12)
    assert metrics["confidence"] == pytest.approx(design.confidence, rel=1e-12)
    unseeded = record("d", 0.985, rungs)
    Valuer.for_baseline(baseline(), depths=SMOKE.depths()).value(unseeded)
    assert design.forecast["noise_sd"] < unseeded.forecast["noise_sd"]  # the measured seed spread bounds the noise


def test_seed_losses_must_start_with_the_runs_own_loss():
    from openevolve_genesys.selection.records import RungRecord

    with pytest.raises(ValueError, match="seed_losses must start with seed 0"):
        RungRecord("r0", 100, 3.0, seed_losses=(3.1, 3.0))
    assert RungRecord("r0", 100, 3.0).losses == (3.0,)
    assert RungRecord("r0", 100, 3.0, seed_losses=[3.0, 3.2]).losses == (3.0, 3.2)


def test_the_seed_spread_per_rung_and_the_single_run_noise():
    from openevolve_genesys.selection.valuation import baseline_seed_noise

    seeds = baseline_seed_noise(seeded_baseline(0.01))
    assert seeds.seeds == 3 and seeds.dof == 8
    assert all(sd == pytest.approx(0.01, rel=1e-9) for sd in seeds.rung_sd.values())
    assert seeds.single_run_sd == pytest.approx(0.01, rel=1e-9)
    assert seeds.pair_bound == pytest.approx(0.01 * 2 ** 0.5, rel=1e-9)
    one = baseline_seed_noise(baseline())
    assert one.seeds == 1 and one.rung_sd == {} and one.single_run_sd is None and one.pair_bound is None


def test_a_seed_verification_narrows_the_designs_interval_and_raises_its_confidence():
    """A second seed at the top rung is a second pair there (seed 1 with the baseline's seed 1): the gap at the
    top rung rests on two measurements, so the forecast is surer, and the pair noise gains a dof."""
    base, one, two = seeded_baseline(), record("d", 0.985, 4), record("d", 0.985, 4)
    top = two.rungs["r3"]
    top.add_seed_loss(1, 0.985 * base.rungs["r3"].losses[1] + 0.0005, partners=3)  # the same gap, a little noise
    population = [record(f"p{i}", 0.97 + 0.003 * i, 4) for i in range(4)]
    valuer = Valuer.for_baseline(base)
    valuer.value(one, population)
    valuer.value(two, population)
    assert two.forecast["n_pairs"] == one.forecast["n_pairs"] + 1
    assert two.forecast["noise_dof"] == one.forecast["noise_dof"] + 1
    assert two.forecast["high"] - two.forecast["low"] < one.forecast["high"] - one.forecast["low"]
    assert two.confidence > one.confidence
