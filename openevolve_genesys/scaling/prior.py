"""The prior on how a design's gap changes with scale, learned from the run's designs (empirical Bayes).

Each population design seen at two or more sizes gives a least-squares slope ``b_k`` (nats per e-fold of N)
with sampling variance ``v_k``. The prior mean shrinks their mean toward 0 with ``weight`` pseudo-designs; the
prior variance is the spread of slopes beyond what sampling noise explains, pooled with the hyperprior's
``sd^2`` at the same weight, plus the uncertainty of the mean itself. With no population it is the hyperprior.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from openevolve_genesys.scaling.ladder import Pairs


@dataclass(frozen=True)
class SlopePrior:
    mean: float
    sd: float
    designs: int  # population designs it learned from


def slope_prior(population: list[Pairs], noise_sd: float, hyper_sd: float, weight: float,
                floor: float) -> SlopePrior:
    slopes, variances = [], []
    for pairs in population:
        if pairs.sizes < 2:
            continue
        x = pairs.log_n - pairs.log_n.mean()
        sxx = float(x @ x)
        slopes.append(float(x @ pairs.gap) / sxx)
        variances.append(noise_sd**2 / sxx)
    k = len(slopes)
    if k == 0:
        return SlopePrior(0.0, max(hyper_sd, floor), 0)
    b, v = np.array(slopes), np.array(variances)
    mean = float(b.sum() / (k + weight))
    excess = max(0.0, float(((b - mean) ** 2).sum() - v.sum()))
    spread = (weight * hyper_sd**2 + excess) / (weight + k)
    mean_var = (spread + float(v.mean())) / (weight + k)
    return SlopePrior(mean, float(np.sqrt(max(spread, floor**2) + mean_var)), k)
