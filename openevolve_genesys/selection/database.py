"""The Genesys database: OpenEvolve's ProgramDatabase holding our design records beside its programs.

It subclasses ProgramDatabase so OpenEvolve's checkpoint layout and tools (visualizer, best program,
``checkpoint_N/programs/*.json``) keep working, but it does not use OpenEvolve's MAP-Elites grid, islands
or parent sampling: the GenesysSelector chooses seeds, and no design is ever evicted (a seed or a
reference may be any design). Program metrics carry ``combined_score`` = utility for OpenEvolve's tools.
"""

from __future__ import annotations

import json
import os
from pathlib import Path
from typing import Mapping

from openevolve.config import DatabaseConfig
from openevolve.database import Program, ProgramDatabase

from openevolve_genesys.scaling.policy import FIXED_STEPS, DataPolicy
from openevolve_genesys.scaling.settings import ValueSettings
from openevolve_genesys.selection.records import DesignRecord
from openevolve_genesys.selection.valuation import Valuer, baseline_seed_noise

RECORDS_FILE = "genesys_records.json"


class GenesysDatabase(ProgramDatabase):
    def __init__(self, config: DatabaseConfig, *, baseline_id: str = "baseline", target_n: float = 0.0,
                 valuation: ValueSettings = ValueSettings(), confidence_threshold: float = 0.5,
                 policy: DataPolicy = FIXED_STEPS, depths: Mapping[str, int] | None = None):
        # Set before ProgramDatabase.__init__, which loads config.db_path (and so our records) if it exists.
        self.baseline_id = baseline_id
        self.records: dict[str, DesignRecord] = {}
        # The ladder's data policy (LadderProfile.data_policy): every valuation's forecast names it; its rungs'
        # depths (LadderProfile.depths) let the valuation tell a width step from a depth step.
        self._valuation = {"target_n": target_n, "settings": valuation, "policy": policy, "depths": depths}
        self._valuer: Valuer | None = None
        self.confidence_threshold = confidence_threshold
        super().__init__(config)

    def add_design(self, program: Program, record: DesignRecord) -> None:
        self.programs[program.id] = program
        self.islands[0].add(program.id)
        self.last_iteration = max(self.last_iteration, program.iteration_found)
        self.update_record(record)

    def update_record(self, record: DesignRecord) -> None:
        """Store the record and value it; a change to the baseline revalues every design. Others keep the
        value they had (their population prior moves a little with each design; revaluing all on every
        update would cost the square of the run's size)."""
        self.records[record.id] = record
        if record.id == self.baseline_id:
            self._valuer = Valuer.for_baseline(record, **self._valuation)
            for other in self.records.values():
                self._value(other)
        else:
            self._value(record)
        self.best_program_id = getattr(self.best_design(), "id", None)

    def _value(self, record: DesignRecord) -> None:
        if self._valuer is None:
            return
        self._valuer.value(record, self.records.values())
        program = self.programs.get(record.id)
        if program is not None:
            program.metrics.update(combined_score=record.utility, confidence=record.confidence,
                                   rungs_verified=len(record.rungs))

    def best_design(self) -> DesignRecord | None:
        """Highest utility among the confidently valued designs (the baseline is one), else among all valued.

        A design seen at one rung is forecast mostly from the prior; crowning it on that would report noise."""
        valued = [r for r in self.records.values() if r.valid and r.utility is not None]
        confident = [r for r in valued if r.confidence >= self.confidence_threshold]
        return max(confident or valued, key=lambda r: (r.utility, r.confidence), default=None)

    def valuation_summary(self) -> dict | None:
        """What the run's valuations rest on, for summary.json: the target, what is forecast, and the noise and
        slope prior measured from the population (read off the best design's valuation; shared by all), beside
        the baseline's seed spread (``baseline_seeds``), which bounds that noise."""
        best = self.best_design()
        forecast = best.forecast if best is not None else None
        if not forecast:
            return None
        keys = ("n_target", "forecasts", "noise_sd", "noise_dof", "slope_prior_mean", "slope_prior_sd",
                "depth_prior_mean", "depth_prior_sd", "level")
        summary = {k: forecast.get(k) for k in keys}
        baseline = self.records.get(self.baseline_id)
        if baseline is not None and baseline.rungs:
            summary["baseline_seeds"] = baseline_seed_noise(baseline).as_dict()
        return summary

    def save(self, path: str | None = None, iteration: int = 0) -> None:
        """OpenEvolve's checkpoint, then the records beside it (atomically), then the best program."""
        super().save(path, iteration)
        target = Path(path or self.config.db_path)
        payload = {"baseline_id": self.baseline_id, "records": [r.to_dict() for r in self.records.values()]}
        tmp = target / f".{RECORDS_FILE}.{os.getpid()}.tmp"
        tmp.write_text(json.dumps(payload, indent=1, allow_nan=False, default=_json_default))
        os.replace(tmp, target / RECORDS_FILE)

    def load(self, path: str) -> None:
        super().load(path)
        records_path = Path(path) / RECORDS_FILE
        if not records_path.exists():
            return
        payload = json.loads(records_path.read_text())
        records = [DesignRecord.from_dict(r) for r in payload["records"]]
        # Baseline first, so the others are valued against it.
        for record in sorted(records, key=lambda r: r.id != payload["baseline_id"]):
            self.update_record(record)


def _json_default(value: object) -> object:
    return str(value)
