"""Utility and confidence of a design from its verified rungs, through the one scoring function
``scaling.value_design`` (the evaluator's ``combined_score`` calls it too).

A record's rungs and the baseline's become ladders (rung -> (N, [loss by seed]): every seed trained, the
baseline's and, after seed verifications, a design's); the population is the run's other verified designs (two or
more rungs), from which the gap's slope prior and the pair noise are learned.
"""

from __future__ import annotations

import dataclasses
from dataclasses import dataclass, field
from typing import Iterable, Mapping

from openevolve_genesys.scaling.ladder import parse_ladder
from openevolve_genesys.scaling.noise import SeedNoise, seed_noise
from openevolve_genesys.scaling.policy import FIXED_STEPS, DataPolicy
from openevolve_genesys.scaling.settings import ValueSettings
from openevolve_genesys.scaling.value import value_design
from openevolve_genesys.selection.records import DesignRecord


def ladder(record: DesignRecord) -> dict[str, tuple[float, list[float]]]:
    return {name: (float(r.n_params), list(r.losses)) for name, r in record.rungs.items()}


def baseline_seed_noise(baseline: DesignRecord) -> SeedNoise:
    """The baseline's seed spread by rung and the single-run noise it implies (summary.json, the report)."""
    return seed_noise(parse_ladder(ladder(baseline), "baseline"))


@dataclass(frozen=True)
class Valuer:
    """Values designs against one baseline. Build it again when the baseline changes."""

    baseline: DesignRecord
    target_n: float = 0.0  # 0: the valuation's default (one e-fold above the largest rung)
    settings: ValueSettings = field(default_factory=ValueSettings)
    policy: DataPolicy = FIXED_STEPS  # the ladder's data policy (LadderProfile.data_policy), named in every forecast
    depths: Mapping[str, int] | None = None  # layers by rung (LadderProfile.depths); None: regress on N alone

    @classmethod
    def for_baseline(cls, baseline: DesignRecord, *, target_n: float = 0.0,
                     settings: ValueSettings = ValueSettings(), policy: DataPolicy = FIXED_STEPS,
                     depths: Mapping[str, int] | None = None) -> "Valuer":
        if not baseline.rungs:
            raise ValueError("the baseline has no verified rung: evaluate it before valuing designs")
        return cls(baseline, target_n, settings, policy, depths)

    def value(self, record: DesignRecord, population: Iterable[DesignRecord] = ()) -> None:
        """Set ``utility``, ``confidence`` and ``forecast`` on the record (in place); ``population``: the run's
        other designs (those verified at two or more rungs inform the prior)."""
        record.utility, record.confidence, record.forecast = None, 0.0, None
        shared = {name: r for name, r in record.rungs.items() if name in self.baseline.rungs}
        if not record.valid or not shared:
            return
        others = [ladder(p) for p in population
                  if p.id not in (record.id, self.baseline.id) and p.valid and len(p.rungs) >= 2]
        design = dataclasses.replace(record, rungs=shared)
        v = value_design(ladder(design), ladder(self.baseline), population=others,
                         target_n=self.target_n if self.target_n > 0 else None, policy=self.policy,
                         depths=self._depths(),
                         **dataclasses.asdict(self.settings))
        record.utility, record.confidence, record.forecast = v.utility, v.confidence, v.as_dict()

    def _depths(self) -> Mapping[str, int] | None:
        # A baseline recorded under other rung names than the profile's (an old run) is valued on N alone.
        if self.depths is None or not set(self.baseline.rungs) <= set(self.depths):
            return None
        return self.depths
