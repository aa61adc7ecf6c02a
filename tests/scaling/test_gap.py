import math

import numpy as np
import pytest

from openevolve_genesys.scaling.fit import PowerLawFit
from openevolve_genesys.scaling.gap import forecast_gap

LAW = PowerLawFit(E=1.69, A=406.4, alpha=0.34, n_points=4, dof=1, converged=True, residual_scale=None)
N = np.array([2.5e4, 5.7e4, 1.5e5, 3.4e5])
TARGET = 3.4e6
BASE = LAW.predict(N)


def test_the_baseline_against_itself_has_no_gap():
    gap = forecast_gap(N, BASE, BASE, LAW, TARGET)
    assert gap.mean == pytest.approx(0.0, abs=1e-12)
    assert gap.low < 0 < gap.high
    assert gap.baseline_loss == pytest.approx(float(LAW.predict(TARGET)))


def test_a_constant_relative_improvement_is_carried_to_the_target():
    gap = forecast_gap(N, 0.98 * BASE, BASE, LAW, TARGET)
    truth = 0.02 * float(LAW.predict(TARGET))
    assert gap.mean == pytest.approx(truth, rel=1e-6)
    assert gap.low < truth < gap.high


def test_a_gap_that_widens_with_scale_is_extrapolated():
    slope = -0.01  # ln-loss gap per e-fold of N, within the prior
    design = BASE * np.exp(slope * np.log(N / N[0]))
    gap = forecast_gap(N, design, BASE, LAW, TARGET, noise_sd=1e-3)
    truth = float(LAW.predict(TARGET)) * (1 - math.exp(slope * math.log(TARGET / N[0])))
    assert gap.low < truth < gap.high
    assert gap.mean == pytest.approx(truth, rel=0.1)  # the slope prior shrinks it a little toward zero


def test_each_further_rung_narrows_the_forecast():
    design = 0.99 * BASE
    widths = [forecast_gap(N[:k], design[:k], BASE[:k], LAW, TARGET).width for k in range(1, 5)]
    assert all(a > b for a, b in zip(widths, widths[1:]))


def test_a_size_mismatch_is_corrected_along_the_baseline_law():
    # The same architecture with 5% more parameters is no better: only the law's own gain separates them.
    bigger = N * 1.05
    gap = forecast_gap(bigger, LAW.predict(bigger), BASE, LAW, TARGET, baseline_n=N)
    assert gap.mean == pytest.approx(0.0, abs=1e-9)


@pytest.mark.parametrize("losses", [[float("nan")], [-1.0]])
def test_bad_losses_are_refused(losses):
    with pytest.raises(ValueError, match="finite and positive"):
        forecast_gap(N[:1], losses, BASE[:1], LAW, TARGET)


def test_mismatched_lengths_are_refused():
    with pytest.raises(ValueError, match="one or more rungs"):
        forecast_gap(N, BASE[:2], BASE, LAW, TARGET)
