"""Utility and confidence of a design from its verified rungs (the README's "Scaling laws" section).

Utility is the forecast loss gap to the baseline at the target scale, in nats (positive: the design is
forecast to beat the baseline there), from ``scaling.gap``: the baseline's fitted law is the family prior and
the design's rungs, paired with the baseline's, fit a log-linear correction to it.

Confidence is the share of the prior uncertainty the verifications have removed: one minus the forecast's
sd (of the log loss ratio at the target) over the sd a design would have from the smallest rung alone. A freshly designed
design has confidence ~0 and a design verified at every rung approaches the baseline's own; the number is
comparable across profiles and targets because it is a ratio.
"""

from __future__ import annotations

from dataclasses import dataclass

from openevolve_genesys.scaling.fit import PowerLawFit, fit_power_law
from openevolve_genesys.scaling.gap import forecast_gap
from openevolve_genesys.selection.records import DesignRecord, RungRecord


@dataclass(frozen=True)
class Valuer:
    """Values designs against one baseline. Build it again when the baseline changes."""

    baseline: dict[str, RungRecord]
    law: PowerLawFit | None  # None: the baseline has fewer than three sizes, nothing to extrapolate with
    target_n: float
    noise_sd: float
    slope_prior_sd: float
    one_rung_sd: float  # forecast sd of a design seen at the smallest rung only: all prior

    @classmethod
    def for_baseline(cls, baseline: DesignRecord, *, target_n: float = 0.0, noise_sd: float = 0.005,
                     slope_prior_sd: float = 0.02) -> "Valuer":
        if not baseline.rungs:
            raise ValueError("the baseline has no verified rung: evaluate it before valuing designs")
        rungs = sorted(baseline.rungs.values(), key=lambda r: r.n_params)
        n, loss = [r.n_params for r in rungs], [r.loss for r in rungs]
        target = target_n if target_n > 0 else 10.0 * max(n)  # the evaluator's default target
        law = fit_power_law(n, loss) if len(set(n)) >= 3 else None
        one_rung_sd = 0.0
        if law is not None:
            smallest = rungs[0]
            one_rung_sd = forecast_gap([smallest.n_params], [smallest.loss], [smallest.loss], law, target,
                                    noise_sd=noise_sd, slope_prior_sd=slope_prior_sd).log_ratio_sd
        return cls(dict(baseline.rungs), law, target, noise_sd, slope_prior_sd, one_rung_sd)

    def value(self, record: DesignRecord) -> None:
        """Set ``utility``, ``confidence`` and ``forecast`` on the record (in place)."""
        shared = sorted((r for r in record.rungs.values() if r.rung in self.baseline), key=lambda r: r.n_params)
        record.utility, record.confidence, record.forecast = None, 0.0, None
        if not shared:
            return
        if self.law is None:  # no law to carry the gap to the target: the measured gap, held with no confidence
            largest = shared[-1]
            record.utility = self.baseline[largest.rung].loss - largest.loss
            return
        gap = forecast_gap([r.n_params for r in shared], [r.loss for r in shared],
                           [self.baseline[r.rung].loss for r in shared], self.law, self.target_n,
                           baseline_n=[self.baseline[r.rung].n_params for r in shared],
                           noise_sd=self.noise_sd, slope_prior_sd=self.slope_prior_sd)
        record.utility = gap.mean
        record.confidence = min(1.0, max(0.0, 1.0 - gap.log_ratio_sd / self.one_rung_sd))
        record.forecast = gap.as_dict()
