"""Noise of a design-minus-baseline pair, measured: a scaled-inverse-chi2 posterior on its variance.

Three sources, weakest first: the stated prior (``pair_noise_sd`` worth ``pair_noise_dof`` dof); the baseline's
seed spread, which bounds it (a pair that shares its seed is no noisier than two independent runs,
sqrt(2) x the single-run sd); the pooled residuals of the population's fits (each design's residual SS about its
own line; from three designs on, the median design's, so that one unstable design does not widen every
interval). A design's own residuals then update that prior, so a design that misfits its line is wider.
"""

from __future__ import annotations

import dataclasses
import math
from dataclasses import dataclass
from typing import Any

import numpy as np
from scipy import stats

from openevolve_genesys.scaling.ladder import Pairs, Rung, residual_ss, seed_spread

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


@dataclass(frozen=True)
class SeedNoise:
    """What the baseline's seeds measure: their sd at each rung, and pooled over rungs the sd of a single run."""

    seeds: int  # the fewest seeds any rung has (1: no spread measured)
    rung_sd: dict[str, float]  # sample sd of the seeds' losses, by rung (rungs with two or more seeds)
    single_run_sd: float | None  # sqrt(within-rung SS / dof): the noise of one training run
    dof: int

    @property
    def pair_bound(self) -> float | None:
        """The pair noise this bounds: a design-minus-baseline pair is no noisier than two independent runs."""
        return None if self.single_run_sd is None else math.sqrt(2.0) * self.single_run_sd

    def as_dict(self) -> dict[str, Any]:
        return {**dataclasses.asdict(self), "pair_noise_bound": self.pair_bound}


def seed_noise(rungs: list[Rung]) -> SeedNoise:
    """The seed spread of the baseline's rungs (``parse_ladder``'s)."""
    ss, dof = seed_spread(rungs)
    rung_sd = {r.name: float(np.std(r.losses, ddof=1)) for r in rungs if len(r.losses) >= 2}
    return SeedNoise(min(len(r.losses) for r in rungs), rung_sd, math.sqrt(ss / dof) if dof else None, dof)


def pooled_noise(population: list[Pairs], prior_sd: float, prior_dof: float, seeds: SeedNoise,
                 cap: float) -> tuple[NoiseEstimate, NoiseEstimate]:
    """(the pooled estimate, the same capped at ``cap`` dof as a prior for one design)."""
    sd0 = prior_sd
    if seeds.pair_bound is not None:  # a measured single-run spread bounds the paired noise from above
        sd0 = min(sd0, seeds.pair_bound)
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

