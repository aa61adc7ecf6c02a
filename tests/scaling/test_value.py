import math
import sys
from pathlib import Path

import numpy as np
import pytest

from openevolve_genesys.scaling import ValueSettings, value_design

sys.path.insert(0, str(Path(__file__).resolve().parents[2] / "experiments" / "benchmarks"))
import value_calibration  # noqa: E402

N = [25472.0, 56640.0, 150080.0, 335712.0]
SMOKE = [6.040310382843018, 5.586746692657471, 5.3558526039123535, 5.056497573852539]  # a real smoke baseline


def law(n):
    return 4.697 + 232.4 * np.asarray(n, dtype=float) ** -0.508


def ladder(losses, k=4, sizes=N):
    return {f"r{i}": (sizes[i], [float(losses[i])]) for i in range(k)}


BASE = ladder(law(N))


def test_the_baseline_against_itself_has_no_gap_and_is_confident():
    v = value_design(BASE, BASE)
    assert v.utility == pytest.approx(0.0, abs=1e-12) and v.low < 0 < v.high
    assert v.p_better == pytest.approx(0.5, abs=1e-9) and v.confidence > 0.9
    assert v.n_target == pytest.approx(math.e * N[-1]) and v.extrapolation == pytest.approx(1.0)
    assert "fixed data" in v.forecasts


def test_a_constant_gap_is_carried_to_the_target_and_further_rungs_narrow_it():
    values = [value_design(ladder(law(N) - 0.05, k), BASE) for k in range(1, 5)]
    assert all(v.low < 0.05 < v.high for v in values)
    # One rung says nothing about how the gap bends beyond it: the prior's tail keeps p_better a little lower.
    assert values[0].p_better > 0.98 and all(v.p_better > 0.99 for v in values[1:])
    widths = [v.high - v.low for v in values]
    assert widths[-1] < widths[0]
    assert [v.extrapolation for v in values] == pytest.approx([1 + math.log(N[-1] / n) for n in N])


def test_seeded_coverage_on_synthetic_ladders_is_within_the_band():
    """Designs exchangeable with a run's population (value_calibration's "random" designs, "mixed"
    population, smoke law, real-sized pair noise): 80% intervals cover the true target gap in 70-90% of
    60 replicates x 4 rung counts. Across seeds 0-4 the pooled coverage was 0.79-0.86."""
    rng = np.random.default_rng(0)
    covered = [row["low"] <= row["truth"] <= row["high"]
               for _ in range(60) for row in value_calibration.replicate("smoke", "quiet", "mixed", rng)["random"]]
    assert 0.7 <= np.mean(covered) <= 0.9


def test_a_law_with_zero_residual_dof_is_never_exact():
    """Three rungs and three parameters: the law's priors and noise keep its forecast uncertain, and with the
    law's own extrapolation error stated the interval covers the held-out measured r3 of a real baseline."""
    three = {f"r{i}": (N[i], [SMOKE[i]]) for i in range(3)}
    v = value_design(three, three, target_n=N[3], law_extrapolation_sd=0.0)
    assert v.baseline_loss_sd > 0.01 and v.loss_high - v.loss_low > 0.02
    wide = value_design(three, three, target_n=N[3])  # the default states the law's own extrapolation error
    assert wide.loss_low <= SMOKE[3] <= wide.loss_high and wide.baseline_loss_sd > v.baseline_loss_sd
    exact = ladder(law(N), 3)
    assert value_design(exact, exact).baseline_loss_sd > 0.0


def test_quiet_and_noisy_designs_with_the_same_rungs_differ_in_confidence():
    quiet = ladder(law(N) - 0.02)
    noisy = ladder(law(N) - 0.02 + 0.01 * np.array([1, -1, 1, -1]))
    vq, vn = value_design(quiet, BASE), value_design(noisy, BASE)
    assert vq.confidence > vn.confidence + 0.1
    assert vn.high - vn.low > 2 * (vq.high - vq.low) and vn.noise_sd > vq.noise_sd


def test_the_population_sets_the_slope_prior():
    """Ten designs whose gap grows 0.01 per e-fold: a new design seen at r0 alone is forecast to grow too."""
    slope = 0.01 * (np.log(N) - math.log(N[0]))
    population = [ladder(law(N) - slope - 0.001 * k) for k in range(10)]
    alone = value_design(ladder(law(N), 1), BASE)
    learned = value_design(ladder(law(N), 1), BASE, population=population)
    truth = 0.01 * (1 + math.log(N[-1] / N[0]))
    assert abs(alone.utility) < 1e-9 and learned.utility == pytest.approx(truth, rel=0.2)
    assert learned.slope_prior_mean == pytest.approx(0.01, rel=0.2)


def test_seeds_pair_with_the_baselines_seeds():
    base = {r: (n, [loss, loss + 0.03, loss - 0.03]) for r, (n, [loss]) in BASE.items()}
    design = {r: (n, [loss - 0.01, loss + 0.02]) for r, (n, [loss]) in BASE.items()}
    v = value_design(design, base)
    assert v.measured_gap == pytest.approx(0.01) and v.n_pairs == 8


@pytest.mark.parametrize("design, baseline, message", [
    ({}, BASE, "design has no rung"),
    (ladder(law(N)), ladder(law(N), 2), "baseline has no rung 'r2'"),
    ({"r0": (N[0], [0.0])}, BASE, "non-positive or non-finite loss"),
    ({"r0": (N[0], [float("nan")])}, BASE, "non-positive or non-finite loss"),
    ({"r0": (-1.0, [5.0])}, BASE, "n_params"),
    ({"r0": (N[0], [])}, BASE, "no loss"),
    ({"r0": (N[0], [6.0, 6.1])}, BASE, "mismatched seeds at rung 'r0'"),
    ({"r0": 6.0}, BASE, r"must be \(n_params"),
])
def test_bad_input_names_what_is_missing(design, baseline, message):
    with pytest.raises(ValueError, match=message):
        value_design(design, baseline)


def test_bad_settings_are_named():
    with pytest.raises(ValueError, match="unknown valuation setting"):
        value_design(BASE, BASE, noise_sd=0.005)
    with pytest.raises(ValueError, match="pair_noise_sd"):
        ValueSettings(pair_noise_sd=0.0)
    with pytest.raises(ValueError, match="target_n"):
        value_design(BASE, BASE, target_n=-1.0)
    with pytest.raises(ValueError, match="level"):
        value_design(BASE, BASE, level=1.2)


def test_the_forecast_names_the_data_policy():
    from openevolve_genesys.scaling import DataPolicy

    scaled = value_design(BASE, BASE, policy=DataPolicy(tokens_per_param=20))
    assert "compute-scaled at 20 tokens per parameter" in scaled.forecasts and "fixed" not in scaled.forecasts
    assert "1.00 e-folds of N beyond" in scaled.forecasts
    fixed = value_design(BASE, BASE, policy=DataPolicy(steps=300, tokens_per_step=1024))
    assert "at fixed steps (300 steps, 307,200 tokens at every rung" in fixed.forecasts
    # The policy names what is forecast; the numbers are the same.
    assert (scaled.utility, scaled.low, scaled.high) == (fixed.utility, fixed.low, fixed.high)
    with pytest.raises(TypeError, match="DataPolicy"):
        value_design(BASE, BASE, policy={"tokens_per_param": 20})
    with pytest.raises(ValueError, match="tokens_per_param"):
        DataPolicy(tokens_per_param=-1.0)


DEPTHS = {"r0": 2, "r1": 2, "r2": 3, "r3": 3}  # the smoke ladder: width, depth (and heads), width


def test_a_gap_that_moves_with_depth_is_forecast_by_the_depth_term():
    """A population whose gaps gain 0.03 nats in the depth step (r1 to r2) and give back 0.015 in each width step,
    as gated readouts do on the real smoke ladder: a new design of that kind, seen at r0-r2, is forecast at r3 (a
    width step) from its own width step, while on N alone the zigzag reads as a bend and the forecast stays near
    the r2 gap (persistence), 0.015 too high."""
    rng = np.random.default_rng(0)
    step = np.array([0.0, -0.015, 0.015, 0.0])

    def design(level):
        return ladder(law(N) - level - step + rng.normal(0, 0.001, 4))

    population = [design(0.01 * k) for k in range(-4, 5)]
    new = {k: v for k, v in design(0.02).items() if k != "r3"}
    truth = 0.02
    with_depth = value_design(new, BASE, population=population, target_n=N[3], depths=DEPTHS, target_depth=3)
    n_only = value_design(new, BASE, population=population, target_n=N[3])
    assert abs(with_depth.utility - truth) < 0.005 < abs(n_only.utility - truth)
    assert with_depth.low <= truth <= with_depth.high
    width_slope = -0.015 / math.log(N[1] / N[0])  # per e-fold of N; the depth step also adds N
    depth_slope = (0.03 - width_slope * math.log(N[2] / N[1])) / math.log(1.5)
    assert with_depth.depth_prior_mean == pytest.approx(depth_slope, rel=0.25)
    assert with_depth.confidence > n_only.confidence
    assert with_depth.depth_efolds == 0.0 and n_only.depth_efolds == 0.0 and n_only.depth_slope == 0.0


def test_the_default_target_continues_the_ladders_depth_trend():
    v = value_design(ladder(law(N) - 0.01), BASE, depths=DEPTHS)
    x, y = np.log(N), np.log([2, 2, 3, 3])
    assert v.depth_efolds == pytest.approx(np.polyfit(x, y, 1)[0] * 1.0)  # one e-fold of N above r3
    assert "e-folds of N and" in v.forecasts and "of depth beyond" in v.forecasts
    # a design seen at r0 alone is further from the target in depth too, and less certain for it
    low = value_design(ladder(law(N) - 0.01, 1), BASE, depths=DEPTHS)
    assert low.depth_efolds == pytest.approx(v.depth_efolds + math.log(1.5))
    assert low.high - low.low > (value_design(ladder(law(N) - 0.01, 1), BASE).high
                                 - value_design(ladder(law(N) - 0.01, 1), BASE).low)


@pytest.mark.parametrize("kwargs, message", [
    (dict(depths={"r0": 2, "r1": 2, "r2": 3}), r"missing \['r3'\]"),
    (dict(depths={**DEPTHS, "r1": 0}), "invalid {'r1': 0}"),
    (dict(target_depth=4), "target_depth needs depths"),
    (dict(depths=DEPTHS, target_depth=-1), "target_depth must be a positive number"),
])
def test_bad_depths_are_named(kwargs, message):
    with pytest.raises(ValueError, match=message):
        value_design(BASE, BASE, **kwargs)
