"""The prior on how a design's gap changes with scale, learned from the run's designs (empirical Bayes).

Each population design seen at two or more sizes gives least-squares slopes (``ladder.least_squares``): ``b_k``
in nats per e-fold of N and, where its rungs change depth apart from N, ``c_k`` per e-fold of depth, each with
its sampling variance ``v_k``. For each slope, the prior mean shrinks the designs' mean toward 0 (by its standard
error, and by ``weight`` pseudo-designs); the prior variance is the spread of slopes beyond what sampling noise
explains, pooled with the hyperprior's ``sd^2`` at the same weight, plus the uncertainty of the mean itself
(including the baseline's noise, which every population slope shares). With no population it is the hyperprior.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from openevolve_genesys.scaling.ladder import Pairs, least_squares


@dataclass(frozen=True)
class SlopePrior:
    mean: float
    sd: float
    designs: int  # population designs it learned from


def slope_priors(population: list[Pairs], noise_sd: float, hyper_sd: float, depth_hyper_sd: float, weight: float,
                 floor: float) -> tuple[SlopePrior, SlopePrior]:
    """(the prior on the slope per e-fold of N, the prior on the slope per e-fold of depth)."""
    estimates: tuple[list[float], list[float]] = ([], [])
    variances: tuple[list[float], list[float]] = ([], [])
    for pairs in population:
        if pairs.sizes < 2:
            continue
        coef, unscaled, _, _ = least_squares(pairs)
        for i, column in enumerate((1, 2)):
            if np.isfinite(coef[column]):
                estimates[i].append(float(coef[column]))
                variances[i].append(noise_sd**2 * float(unscaled[column]))
    return (_shrunk(estimates[0], variances[0], hyper_sd, weight, floor),
            _shrunk(estimates[1], variances[1], depth_hyper_sd, weight, floor))


def _shrunk(slopes: list[float], variances: list[float], hyper_sd: float, weight: float, floor: float) -> SlopePrior:
    k = len(slopes)
    if k == 0:
        return SlopePrior(0.0, max(hyper_sd, floor), 0)
    b, v = np.array(slopes), np.array(variances)
    raw = float(b.mean())
    excess = max(0.0, float(((b - raw) ** 2).sum() - v.sum()))
    # A mean slope within its own standard error of zero is shrunk to zero (positive-part James-Stein): a noisy
    # mean of heterogeneous slopes, extrapolated, costs flat designs more than it gives the rest.
    se2 = (excess / max(k - 1, 1) + float(v.mean())) / k
    mean = raw * max(0.0, 1.0 - se2 / raw**2) * k / (k + weight) if raw != 0 else 0.0
    spread = (weight * hyper_sd**2 + excess) / (weight + k)
    # The population's pairs share one baseline draw: its half of each slope's sampling variance (design and
    # baseline runs are about equally noisy) is common to every design, so it does not average out over k.
    mean_var = (spread + float(v.mean()) / 2) / (weight + k) + float(v.mean()) / 2
    return SlopePrior(mean, float(np.sqrt(max(spread, floor**2) + mean_var)), k)
