"""The trained parameters of the run's best designs, kept in ``<run folder>/params/<design id>/<rung>/``.

A design's id is given when its result is recorded, after its child trained it, and whether it is among the
best is known only then. So every evaluation of a design (never a tune trial or a baseline seed) asks its child
to save the final model of each rung it trains into a folder of its own under ``params/.staging/``; when the
result is recorded the rungs move to the design's folder if it may be among the best, and every folder of a
design that may not is deleted. "May be": the top ``keep`` by the run's ranking (the order ``best_design``
crowns by: confidently valued designs first, each group by utility), or the top ``keep`` by utility alone, since
a design seen once is not yet confident but may become so when verified; so at most twice ``keep`` designs
hold folders during a run, and at its end only the top ``keep`` by the ranking do.

A design that falls out and comes back later keeps only the rungs trained since.
"""

from __future__ import annotations

import logging
import shutil
import uuid
from pathlib import Path
from typing import Any, Iterable, Mapping, Sequence

from openevolve_genesys.engine.base import Engine
from openevolve_genesys.evaluation.results import Evaluation
from openevolve_genesys.selection.records import DesignRecord
from openevolve_genesys.training.checkpoint import MODEL_FILE

log = logging.getLogger(__name__)

PARAMS_FOLDER = "params"
STAGING = ".staging"
_STAGED = "params_staged"  # the artifacts key an evaluation's staging folder travels under, to the record


def ranked(records: Iterable[DesignRecord], confidence_threshold: float, baseline_id: str) -> list[str]:
    """Design ids, best first, by the run's ranking: the confidently valued by (utility, confidence), then the
    rest likewise; the baseline and designs without a value are left out."""
    valued = [r for r in records if r.valid and r.utility is not None and r.id != baseline_id]
    key = lambda r: (r.utility, r.confidence)  # noqa: E731
    confident = sorted((r for r in valued if r.confidence >= confidence_threshold), key=key, reverse=True)
    rest = sorted((r for r in valued if r.confidence < confidence_threshold), key=key, reverse=True)
    return [r.id for r in confident + rest]


class KeptParams:
    def __init__(self, run_dir: str | Path, keep: int, baseline_source: str):
        self.keep = keep
        self.root = Path(run_dir).absolute() / PARAMS_FOLDER
        self.staging = self.root / STAGING
        self.baseline_source = baseline_source
        # Left by a run cut short: no evaluation of this run is in flight yet.
        shutil.rmtree(self.staging, ignore_errors=True)

    def engine(self, engine: Engine) -> Engine:
        """``engine``, its design evaluations keeping their models; itself when nothing is kept."""
        return _KeepingEngine(engine, self) if self.keep > 0 else engine

    def staged(self, source: str, options: Mapping[str, Any]) -> Path | None:
        """A new staging folder for one evaluation of ``source``; None for one whose models are never kept."""
        if source == self.baseline_source or options.get("trial") is not None or options.get("seeds") is not None:
            return None
        folder = self.staging / uuid.uuid4().hex
        folder.mkdir(parents=True)
        return folder

    def record(self, design_id: str, evaluation: Evaluation | None, records: Mapping[str, DesignRecord],
               confidence_threshold: float, baseline_id: str) -> None:
        """After ``design_id``'s result is recorded (and valued): move its staged rungs into its folder if it may
        be among the best, then delete the folders of the designs that may not."""
        if self.keep <= 0:
            return
        staged = evaluation.artifacts.pop(_STAGED, None) if evaluation is not None else None
        candidates = self._candidates(records, confidence_threshold, baseline_id)
        if staged is not None:
            staged = Path(staged)
            if design_id in candidates:
                for rung in sorted(p for p in staged.iterdir() if (p / MODEL_FILE).is_file()):
                    target = self.root / design_id / rung.name
                    shutil.rmtree(target, ignore_errors=True)  # a rung trained again replaces the older model
                    target.parent.mkdir(parents=True, exist_ok=True)
                    rung.rename(target)
            shutil.rmtree(staged, ignore_errors=True)
        self._prune(candidates)

    def finish(self, records: Mapping[str, DesignRecord], confidence_threshold: float, baseline_id: str) -> None:
        """At the end of the run: only the top ``keep`` designs by the ranking keep their folders."""
        if self.keep <= 0:
            return
        top = ranked(records.values(), confidence_threshold, baseline_id)[:self.keep]
        self._prune(set(top))
        shutil.rmtree(self.staging, ignore_errors=True)
        kept = sorted(p.name for p in self.root.iterdir() if p.is_dir()) if self.root.is_dir() else []
        if kept:
            log.info("trained parameters of %d design(s) kept in %s (training.checkpoint.load_params reads a "
                     "rung's folder)", len(kept), self.root)

    def _candidates(self, records: Mapping[str, DesignRecord], confidence_threshold: float,
                    baseline_id: str) -> set[str]:
        order = ranked(records.values(), confidence_threshold, baseline_id)
        by_utility = ranked(records.values(), float("-inf"), baseline_id)  # everyone "confident": utility alone
        return set(order[:self.keep]) | set(by_utility[:self.keep])

    def _prune(self, keep: set[str]) -> None:
        if not self.root.is_dir():
            return
        for folder in self.root.iterdir():
            if folder.is_dir() and folder.name != STAGING and folder.name not in keep:
                shutil.rmtree(folder, ignore_errors=True)


class _KeepingEngine:
    """An engine whose design evaluations keep their trained models in a staging folder of ``KeptParams``."""

    def __init__(self, engine: Engine, kept: KeptParams):
        self._engine = engine
        self._kept = kept
        self.slots = engine.slots

    def evaluate(self, source: str, rungs: Sequence[str], **options: Any) -> Evaluation:
        staged = self._kept.staged(source, options)
        if staged is None:
            return self._engine.evaluate(source, rungs, **options)
        try:
            evaluation = self._engine.evaluate(source, rungs, params_dir=str(staged), **options)
        except BaseException:
            shutil.rmtree(staged, ignore_errors=True)
            raise
        if evaluation.outcome == "ok" and any((p / MODEL_FILE).is_file() for p in staged.iterdir()):
            evaluation.artifacts[_STAGED] = str(staged)
        else:  # failed, or every rung answered from the fitness cache: nothing trained to keep
            shutil.rmtree(staged, ignore_errors=True)
        return evaluation

    def shutdown(self) -> None:
        self._engine.shutdown()
