"""The settings of a design's valuation: weak priors, each stated with the measurement that replaces it."""

from __future__ import annotations

import math
from dataclasses import dataclass, fields
from typing import Any, Literal, Mapping

DataPolicy = Literal["fixed_steps", "tokens_per_param"]
Interval = Literal["gap", "measurement"]


@dataclass(frozen=True)
class ValueSettings:
    # Noise of one design-minus-baseline pair (nats). A weak scaled-inverse-chi2 prior: the pooled residuals of
    # the population and the design's own replace it as they accumulate. Real paired residuals: 0.0016-0.0025.
    pair_noise_sd: float = 0.003
    pair_noise_dof: float = 2.0  # the prior counts as this many residual degrees of freedom
    # The population's residuals count as at most this many dof in a design's noise prior, so a design's own
    # misfit (its residual SS) still widens its interval when the population is large.
    pooled_dof_cap: float = 10.0
    # Prior on the slope b of the gap per e-fold of N: its mean and sd are learned from the population's
    # slopes (empirical Bayes); this hyperprior counts as `slope_prior_weight` designs at mean 0, sd below.
    # Real design slopes spread about 0.0025 nats per e-fold.
    slope_prior_sd: float = 0.005
    slope_prior_weight: float = 1.0
    slope_sd_floor: float = 0.0005  # a population of identical slopes cannot make the slope known exactly
    target_efolds: float = 1.0  # default target: this many e-folds above the baseline's largest rung
    interval: Interval = "gap"  # "gap": the true gap at the target; "measurement": one measured pair there
    data_policy: DataPolicy = "fixed_steps"
    # The baseline law L = E + A N^-alpha for absolute losses: informative priors (log-normal), so a law with
    # no residual dof is never taken as exact. E as a fraction of the baseline's largest-rung loss.
    law_alpha: float = 0.3
    law_alpha_log_sd: float = 0.5
    law_e_fraction: float = 0.7
    law_e_log_sd: float = 0.4
    run_noise_sd: float = 0.005  # sd of ln loss of one run: the prior the baseline's seed spread replaces
    # Error of the law's form itself, per e-fold beyond the largest rung (sd of ln loss); 0 trusts the form.
    # On the real smoke baseline a law fitted on r0-r2 misses r3 (0.8 e-folds on) by 0.03 in ln loss: at fixed
    # steps the loss is no exact power law, and 0.03 covers that miss; exact synthetic laws need none.
    law_extrapolation_sd: float = 0.0

    def __post_init__(self) -> None:
        positive = ("pair_noise_sd", "pair_noise_dof", "pooled_dof_cap", "slope_prior_sd", "slope_prior_weight",
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
        if self.data_policy not in ("fixed_steps", "tokens_per_param"):
            raise ValueError(f"data_policy must be 'fixed_steps' or 'tokens_per_param', got {self.data_policy!r}")

    @classmethod
    def from_kwargs(cls, raw: Mapping[str, Any]) -> "ValueSettings":
        known = {f.name for f in fields(cls)}
        unknown = sorted(set(raw) - known)
        if unknown:
            raise ValueError(f"unknown valuation setting(s) {unknown}; known: {sorted(known)}")
        return cls(**raw)
