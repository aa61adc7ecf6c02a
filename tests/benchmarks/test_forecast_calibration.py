"""The forecast-calibration benchmark's pure code on synthetic ladders: hold-out split, predictors, metrics."""

import math
import sys
from pathlib import Path

import numpy as np
import pytest

BENCHMARKS = Path(__file__).resolve().parents[2] / "experiments" / "benchmarks"
sys.path.insert(0, str(BENCHMARKS))

from calibration_metrics import (LEVELS, ONE_SD, Ladder, Prediction, abs_z_quantile, as_gap,  # noqa: E402
                                 baseline_law, coverage, gap_predictions, holdout_split, log_linear_prediction,
                                 measured_gap, paired_residual_sd, power_law_prediction, spearman, summarise,
                                 third_rung_gap, third_rung_prediction)

N = (25_472.0, 56_640.0, 150_080.0, 335_712.0)


def law(n, e=3.0, a=40.0, alpha=0.2):
    return [e + a * x ** -alpha for x in n]


def test_the_split_holds_out_the_largest_n_whatever_the_order():
    ladder = Ladder.of([N[2], N[0], N[3], N[1]], [5.3, 6.0, 5.0, 5.6])
    held_in, n_out, loss_out = holdout_split(ladder)
    assert held_in.n == N[:3] and held_in.loss == (6.0, 5.6, 5.3)
    assert (n_out, loss_out) == (N[3], 5.0)
    with pytest.raises(ValueError, match="two or more rungs"):
        holdout_split(Ladder.of([N[0]], [6.0]))
    with pytest.raises(ValueError, match="one loss per size"):
        Ladder.of(N, [6.0])


def test_predictors_never_see_the_held_out_loss():
    truth = law(N)
    for poisoned in (1.0, 100.0):  # whatever the largest rung measured, forecasts are the same
        design = Ladder.of(N, truth[:3] + [poisoned])
        base = Ladder.of(N, [x * 1.01 for x in truth[:3]] + [poisoned])
        fitted = baseline_law(base)
        loss, gap = gap_predictions(design, base)
        assert math.isclose(loss.mean, truth[3], rel_tol=0.02)
        assert math.isclose(third_rung_prediction(design).mean, truth[2])
        assert math.isclose(power_law_prediction(design).mean, truth[3], rel_tol=1e-3)
        assert math.isclose(log_linear_prediction(design).mean, log_linear_prediction(Ladder.of(N, truth)).mean)
        assert math.isclose(third_rung_gap(design, base, fitted).mean, truth[2] * 0.01, rel_tol=1e-6)


def test_a_design_one_percent_better_everywhere_is_forecast_one_percent_better():
    base = Ladder.of(N, law(N))
    design = Ladder.of(N, [0.99 * x for x in law(N)])
    fitted = baseline_law(base)
    loss, gap = gap_predictions(design, base)
    anchor = gap.anchor  # the valuation's baseline law (with priors) at the held-out N
    assert math.isclose(anchor, float(fitted.predict(N[3])), rel_tol=0.01)
    # The measured gap persists (a flat gap has no slope evidence): about 1% of the loss one rung up.
    assert math.isclose(loss.mean, anchor - 0.01 * law(N)[2], rel_tol=1e-3)
    assert math.isclose(gap.mean, anchor - loss.mean, rel_tol=1e-9)
    assert math.isclose(measured_gap(design, base, fitted), 0.01 * law(N)[3], rel_tol=1e-9)
    for level in LEVELS:  # the loss interval: the gap interval flipped around the law's loss, widened by the law's sd
        low, high = loss.intervals[level]
        assert low < anchor - gap.intervals[level][1] < anchor - gap.intervals[level][0] < high
        assert low < loss.mean < high
    wide, narrow = loss.intervals[0.95], loss.intervals[ONE_SD]
    assert wide[0] < narrow[0] and narrow[1] < wide[1]
    assert math.isclose(math.log(narrow[1] / narrow[0]) / 2, loss.log_sd, rel_tol=1e-6)  # +-1 sd in ln loss


def test_as_gap_flips_intervals_around_the_anchor():
    gap = as_gap(Prediction(5.0, {0.95: (4.8, 5.3)}), anchor=5.1)
    assert math.isclose(gap.mean, 0.1) and np.allclose(gap.intervals[0.95], (-0.2, 0.3))
    assert gap.as_loss(gap.mean) == pytest.approx(5.0)


def test_log_linear_interval_uses_student_t_at_one_degree_of_freedom():
    noisy = Ladder.of(N, [6.0, 5.55, 5.35, 5.0])
    prediction = log_linear_prediction(noisy)
    low, high = prediction.intervals[0.95]
    low68, high68 = prediction.intervals[ONE_SD]
    # t_{0.975, 1} / t_{0.841, 1} = 12.706 / 1.837: the ratio of the half-widths
    assert (high - prediction.mean) / (high68 - prediction.mean) == pytest.approx(12.706 / 1.837, rel=1e-3)
    assert math.isclose(prediction.mean - low, high - prediction.mean)


def test_coverage_counts_inclusive_bounds_and_refuses_unpaired_input():
    assert coverage([1.0, 2.0, 3.0, 4.0], [(0.0, 1.0), (2.5, 3.0), (3.0, 3.0), (5.0, 6.0)]) == 0.5
    assert coverage([], []) is None
    with pytest.raises(ValueError, match="one interval per measured"):
        coverage([1.0], [])


def test_spearman_is_rank_based_and_undefined_for_constant_or_tiny_input():
    rho, p = spearman([1, 2, 3, 4, 5], [10, 20, 30, 40, 500])  # monotone, not linear
    assert rho == pytest.approx(1.0)
    assert p == pytest.approx(2 / 120)  # exact: 2 of the 5! pairings are as extreme (two-sided)
    assert spearman([1, 2, 3, 4], [4, 3, 2, 1])[0] == pytest.approx(-1.0)
    assert spearman([1, 2], [1, 2]) == (None, None)
    assert spearman([1, 1, 1], [1, 2, 3]) == (None, None)
    with pytest.raises(ValueError, match="pair up"):
        spearman([1, 2, 3], [1, 2])


def test_calibrated_normal_forecasts_cover_at_their_levels():
    rng = np.random.default_rng(0)
    sd = 0.01
    forecast = np.full(20_000, 5.0)
    measured = forecast * np.exp(sd * rng.standard_normal(forecast.size))
    predictions = [Prediction(5.0, {lv: (5.0 * math.exp(-z * sd), 5.0 * math.exp(z * sd))
                                    for lv, z in ((ONE_SD, 1.0), (0.95, 1.959964))}, sd)] * forecast.size
    s = summarise(predictions, list(measured))
    assert s["coverage_0.68"] == pytest.approx(ONE_SD, abs=0.01)
    assert s["coverage_0.95"] == pytest.approx(0.95, abs=0.005)
    assert s["abs_z_q68"] == pytest.approx(1.0, abs=0.03)
    assert s["spearman"] is None  # a constant forecast ranks nothing
    # an sd stated three times too small: coverage collapses and |z| says by how much
    assert abs_z_quantile(list(forecast), list(measured), [sd / 3] * forecast.size) == pytest.approx(3.0, abs=0.1)


def test_summary_scores_only_stated_intervals_and_drops_errors_for_ranking_predictors():
    predictions = [Prediction(1.0, {ONE_SD: (0.9, 1.1), 0.95: (0.8, 1.2)}, 0.05), Prediction(2.0),
                   Prediction(3.0, {ONE_SD: (2.0, 2.1), 0.95: (1.0, 3.5)}, 0.05)]
    s = summarise(predictions, [1.0, 2.5, 3.0])
    assert s["n"] == 3 and s["n_intervals"] == 2
    assert s["coverage_0.68"] == 0.5 and s["coverage_0.95"] == 1.0
    assert s["mae"] == pytest.approx(0.5 / 3) and s["bias"] == pytest.approx(-0.5 / 3)
    ranking = summarise(predictions, [1.0, 2.5, 3.0], ranking_only=True)
    assert ranking["mae"] is None and ranking["spearman"] == pytest.approx(1.0)


def test_paired_residual_sd_is_zero_for_exact_log_linear_gaps_and_sees_noise():
    base = Ladder.of(N, law(N))
    fitted = baseline_law(base)
    tilted = Ladder.of(N, [x * math.exp(0.01 + 0.003 * math.log(n)) for x, n in zip(law(N), N)])
    assert paired_residual_sd([tilted], base, fitted) == pytest.approx(0.0, abs=1e-9)
    rng = np.random.default_rng(1)
    noisy = [Ladder.of(N, [x * math.exp(0.02 * e) for x, e in zip(law(N), rng.standard_normal(4))])
             for _ in range(400)]
    assert paired_residual_sd(noisy, base, fitted) == pytest.approx(0.02, rel=0.1)
    assert paired_residual_sd([Ladder.of(N[:2], law(N)[:2])], Ladder.of(N[:2], law(N)[:2]), fitted) is None
