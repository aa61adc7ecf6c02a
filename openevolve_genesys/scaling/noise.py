"""Noise of a design-minus-baseline pair, measured: a scaled-inverse-chi2 posterior on its variance.

Three sources, weakest first: the stated prior (``pair_noise_sd`` worth ``pair_noise_dof`` dof); the baseline's
seed spread, which bounds it (a pair that shares its seed is no noisier than two independent runs,
sqrt(2) x the single-run sd); the pooled residuals of the population's fits (each design's residual SS about its
own line; from three designs on, the median design's, so that one unstable design does not widen every
interval). A design's own residuals then update that prior, so a design that misfits its line is wider.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import numpy as np
from scipy import stats

from openevolve_genesys.scaling.ladder import Pairs, residual_ss

_ROBUST_FROM = 3  # designs with residual dof from which the pooled noise is their median, not their sum


@dataclass(frozen=True)
class NoiseEstimate:
    """sd (nats) of one pair and the dof it rests on (the t-distribution's)."""

    sd: float
    dof: float

    def update(self, ss: float, dof: int) -> "NoiseEstimate":
        if dof <= 0:
            return self
        total = self.dof + dof
        return NoiseEstimate(math.sqrt((self.dof * self.sd**2 + ss) / total), total)


def pooled_noise(population: list[Pairs], prior_sd: float, prior_dof: float, run_spread: tuple[float, int],
                 cap: float) -> tuple[NoiseEstimate, NoiseEstimate]:
    """(the pooled estimate, the same capped at ``cap`` dof as a prior for one design)."""
    ss_run, dof_run = run_spread
    sd0 = prior_sd
    if dof_run > 0:  # a measured single-run spread bounds the paired noise from above
        sd0 = min(sd0, math.sqrt(2.0 * ss_run / dof_run))
    estimate = NoiseEstimate(sd0, prior_dof)
    fits = [fit for fit in map(residual_ss, population) if fit[1] > 0]
    if len(fits) >= _ROBUST_FROM:
        # One unstable design (a loss that rises with N) has a residual SS hundreds of times the others' and would
        # widen every design's interval: the pooled variance is the median design's, scaled to the mean of a
        # chi-square at the typical dof, carried by all the residual dof.
        dof = int(np.median([d for _, d in fits]))
        variance = float(np.median([ss / d for ss, d in fits])) / (stats.chi2.median(dof) / dof)
        total = sum(d for _, d in fits)
        estimate = estimate.update(variance * total, total)
    else:
        for ss, d in fits:
            estimate = estimate.update(ss, d)
    return estimate, NoiseEstimate(estimate.sd, min(estimate.dof, max(cap, prior_dof)))

