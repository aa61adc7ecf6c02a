"""The settings of a design's valuation: weak priors, each stated with the measurement that replaces it."""

from __future__ import annotations

import math
from dataclasses import dataclass, fields
from typing import Any, Literal, Mapping

Interval = Literal["gap", "measurement"]


@dataclass(frozen=True)
class ValueSettings:
    # Priors are weak: each is replaced by the run's measurements as they accumulate (real paired residuals of
    # design-minus-baseline at a shared seed: 0.0016-0.0025 nats; real design slopes spread ~0.0025 per e-fold).
    pair_noise_sd: float = 0.003  # prior sd (nats) of one design-minus-baseline pair at a shared seed
    pair_noise_dof: float = 2.0  # weight of that prior, in residual degrees of freedom
    pooled_dof_cap: float = 10.0  # the population's residuals count as at most this many dof, so a design's own misfit still widens it
    slope_prior_sd: float = 0.005  # hyperprior sd of the gap's slope per e-fold of N (the population's slopes then set it)
    depth_prior_sd: float = 0.05  # hyperprior sd of the gap's slope per e-fold of depth at the same N (used with depths)
    slope_prior_weight: float = 1.0  # the hyperprior (mean 0) counts as this many designs among the population's slopes
    slope_sd_floor: float = 0.0005  # smallest slope prior sd: identical slopes in the population do not make a slope known
    target_efolds: float = 1.0  # default target size: this many e-folds of N above the baseline's largest rung
    interval: Interval = "gap"  # gap: interval of the true gap at the target; measurement: of one measured pair there
    law_alpha: float = 0.3  # prior median of alpha in the baseline law L = E + A N^-alpha (absolute losses only)
    law_alpha_log_sd: float = 0.5  # prior sd of ln alpha
    law_e_fraction: float = 0.7  # prior median of E as a fraction of the baseline's largest-rung loss
    law_e_log_sd: float = 0.4  # prior sd of ln E
    run_noise_sd: float = 0.005  # prior sd of ln loss of one run, replaced by the baseline's seed spread
    # Error of the law's form, per e-fold beyond the largest rung (sd of ln loss). On the real smoke baselines a law
    # fitted on r0-r2 misses r3 (0.8 e-folds on) by 0.03 in ln loss: at fixed steps loss is no exact power law.
    # With 0.03 the 80% absolute-loss intervals of 24 real smoke designs held 92% of their r3 losses (0 held 4%).
    law_extrapolation_sd: float = 0.03  # sd of ln loss per e-fold beyond the ladder for the law's form (0 trusts it)

    def __post_init__(self) -> None:
        positive = ("pair_noise_sd", "pair_noise_dof", "pooled_dof_cap", "slope_prior_sd", "depth_prior_sd",
                    "slope_prior_weight",
                    "slope_sd_floor", "target_efolds", "law_alpha", "law_alpha_log_sd", "law_e_fraction",
                    "law_e_log_sd", "run_noise_sd")
        for name in positive:
            value = getattr(self, name)
            if isinstance(value, bool) or not isinstance(value, (int, float)) or not (math.isfinite(value)
                                                                                      and value > 0):
                raise ValueError(f"valuation setting {name} must be a finite positive number, got {value!r}")
        if not (isinstance(self.law_extrapolation_sd, (int, float)) and 0 <= self.law_extrapolation_sd < math.inf):
            raise ValueError(f"law_extrapolation_sd must be a finite number >= 0, got {self.law_extrapolation_sd!r}")
        if not self.law_e_fraction < 1:
            raise ValueError(f"law_e_fraction must be below 1 (E is below every loss), got {self.law_e_fraction}")
        if self.interval not in ("gap", "measurement"):
            raise ValueError(f"interval must be 'gap' or 'measurement', got {self.interval!r}")

    @classmethod
    def from_kwargs(cls, raw: Mapping[str, Any]) -> "ValueSettings":
        known = {f.name for f in fields(cls)}
        unknown = sorted(set(raw) - known)
        if unknown:
            raise ValueError(f"unknown valuation setting(s) {unknown}; known: {sorted(known)}")
        return cls(**raw)
