"""Forecast a design's loss gap to the baseline at a larger model size, from however many rungs it has.

A design is modelled as the baseline's scaling curve times a log-linear correction:

    ln L_design(N) = ln L_baseline(N) + a + b * ln N

so ``a`` is the design's level against the baseline and ``b`` how that gap changes with scale. Fitting a
free three-parameter law to each design instead extrapolates noise: on the smoke ladder a design that beat
the baseline by 0.001, 0.008, 0.032 and 0.074 nats at its four rungs was forecast 0.35 nats *worse* from its
first three (a law with zero degrees of freedom), and with a 1-nat-wide interval from all four.

The regression is Bayesian and conjugate: a flat prior on ``a``, a Normal(0, slope_prior_sd^2) prior on
``b`` (designs of one family scale alike until shown otherwise), and Gaussian noise on each paired
log-loss difference with sd ``sqrt(2) * noise_sd`` (design and baseline are each one noisy run). The
posterior predictive of ``a + b ln N_target`` is Normal and closed-form, so no bootstrap is needed: one rung
gives a forecast as wide as the slope prior allows, and every further rung narrows it. The gap is then
carried to nats through the baseline's own law at N_target.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from statistics import NormalDist
from typing import Sequence

import numpy as np

from openevolve_genesys.scaling.fit import NOISE_FLOOR, PowerLawFit

# Prior sd of the change of ln-loss gap per e-fold of N. Slopes of ln L against ln N of small LMs are around
# -0.05 to -0.1 (Kaplan et al. 2020: alpha_N = 0.076); 0.02 lets a design's exponent differ from the
# baseline's by tens of percent, as PRIOR_ALPHA_REL_SD does for the power-law forecasts.
SLOPE_PRIOR_SD = 0.02


@dataclass(frozen=True)
class GapForecast:
    """Forecast at ``n_target`` of ``baseline loss - design loss`` (nats; positive: the design is better)."""

    n_target: float
    mean: float
    low: float
    high: float
    level: float
    n_points: int
    design_loss: float  # the design's forecast loss at n_target
    baseline_loss: float
    log_ratio_sd: float  # posterior sd of ln(design loss / baseline loss) at n_target: the forecast's uncertainty

    @property
    def width(self) -> float:
        return self.high - self.low

    def as_dict(self) -> dict[str, float | int]:
        return {"n_target": float(self.n_target), "gap": self.mean, "low": self.low, "high": self.high,
                "level": self.level, "n_points": self.n_points, "design_loss": self.design_loss,
                "baseline_loss": self.baseline_loss, "log_ratio_sd": self.log_ratio_sd}


def forecast_gap(n_params: Sequence[float], losses: Sequence[float], baseline_losses: Sequence[float],
                 baseline_law: PowerLawFit, n_target: float, *, baseline_n: Sequence[float] | None = None,
                 noise_sd: float = NOISE_FLOOR, slope_prior_sd: float = SLOPE_PRIOR_SD,
                 level: float = 0.9) -> GapForecast:
    """``losses[i]`` is the design's loss at ``n_params[i]``; ``baseline_losses[i]`` the baseline's measured loss
    at the same rung, at size ``baseline_n[i]`` (default: the same N). Pairing by rung cancels what the rung
    shares (data order, step count); a small difference in N is corrected along the baseline's law."""
    n = np.asarray(n_params, dtype=float)
    loss = np.asarray(losses, dtype=float)
    base = np.asarray(baseline_losses, dtype=float)
    base_n = n if baseline_n is None else np.asarray(baseline_n, dtype=float)
    if not (n.size >= 1 and n.shape == loss.shape == base.shape == base_n.shape):
        raise ValueError(f"need one or more rungs with a design loss, a baseline loss and N each; got "
                         f"{n.size} sizes, {loss.size} losses, {base.size} baseline losses")
    if not (np.all(np.isfinite(loss)) and np.all(loss > 0) and np.all(base > 0) and np.all(n > 0)):
        raise ValueError(f"losses and sizes must be finite and positive; got losses {loss.tolist()}")
    if not (noise_sd > 0 and slope_prior_sd > 0 and 0 < level < 1 and n_target > 0):
        raise ValueError("noise_sd, slope_prior_sd and n_target must be positive and level in (0, 1)")
    baseline_at_n = np.log(base) + np.log(baseline_law.predict(n)) - np.log(baseline_law.predict(base_n))
    y = np.log(loss) - baseline_at_n
    mean, var = _predict(np.log(n), y, math.log(n_target), math.sqrt(2.0) * noise_sd, slope_prior_sd)
    z = NormalDist().inv_cdf(0.5 + level / 2)
    target_loss = float(baseline_law.predict(n_target))
    gap = lambda log_ratio: target_loss * (1.0 - math.exp(log_ratio))  # noqa: E731
    sd = math.sqrt(var)
    return GapForecast(float(n_target), gap(mean), gap(mean + z * sd), gap(mean - z * sd), level, int(n.size),
                       target_loss * math.exp(mean), target_loss, sd)


def _predict(x: np.ndarray, y: np.ndarray, x_target: float, sigma: float, slope_sd: float) -> tuple[float, float]:
    """Posterior predictive mean and variance of a + b * x_target (flat prior on a, N(0, slope_sd^2) on b)."""
    centre = float(x.mean())  # centring only conditions the 2x2 solve; the prediction does not depend on it
    design = np.stack([np.ones_like(x), x - centre], axis=1)
    precision = design.T @ design / sigma**2 + np.diag([0.0, 1.0 / slope_sd**2])
    covariance = np.linalg.inv(precision)
    coef = covariance @ design.T @ y / sigma**2
    at = np.array([1.0, x_target - centre])
    return float(at @ coef), float(at @ covariance @ at)
