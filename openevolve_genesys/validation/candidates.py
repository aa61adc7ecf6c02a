"""Which designs a validation retrains: the baseline and the top designs of a run, read from its folder.

``history.jsonl`` is the ground truth: it is folded through the run's own ledger (controller/ledger.py),
exactly as ``--resume`` rebuilds a run, so utility and confidence are what the run itself had, and a
folder whose checkpoint is missing or older than its history is still validated correctly. The code
and the learning rate of every design come from its design event.
"""

from __future__ import annotations

import dataclasses
import logging
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from openevolve_genesys.config import RunConfig, load_run_config
from openevolve_genesys.report.load import RunFolderError, read_history
from openevolve_genesys.selection.records import DesignRecord
from openevolve_genesys.strict import ConfigError

BASELINE_ID = "baseline"


@dataclass(frozen=True)
class Candidate:
    """A design to retrain, with what the run knew about it."""

    id: str
    code: str
    learning_rate: float | None  # the rate it trained at in the run; None: the profile's
    utility: float | None = None
    confidence: float = 0.0
    confident: bool = False  # confidence at or above the run's threshold
    rungs_verified: tuple[str, ...] = ()
    operator: str = ""
    tuned: bool = False  # the run swept its rate (tune mode), rather than training it at a given one

    @property
    def learning_rate_source(self) -> str:
        if self.tuned:
            return "tuned in the run"
        return "profile" if self.learning_rate is None else "as trained in the run, not tuned"

    def to_dict(self) -> dict[str, Any]:
        data = dataclasses.asdict(self)
        data.pop("code")
        data["rungs_verified"] = list(self.rungs_verified)
        return data


@dataclass(frozen=True)
class RunCandidates:
    config: RunConfig
    events: list[dict[str, Any]]
    baseline: Candidate
    designs: list[Candidate]  # best first
    valid_designs: int  # how many designs had a verified rung (the pool the top ones were taken from)


def read_run_config(run_dir: Path, config: str | Path | None = None) -> RunConfig:
    """The run's YAML: ``config`` when given, else the copy the run keeps in its folder."""
    path = Path(config) if config else run_dir / "config.yaml"
    if not path.is_file():
        raise RunFolderError(f"{path} is missing: the run copies its YAML there when it starts; pass the YAML it "
                             "was started with as --config CONFIG.yaml")
    try:
        return load_run_config(path, run_folder_copy=True)
    except (ConfigError, ValueError) as err:
        raise RunFolderError(f"the run config cannot be read: {err}") from None


def load_candidates(run_dir: str | Path, *, top: int = 3, config: str | Path | None = None) -> RunCandidates:
    """The baseline and the ``top`` best designs with at least one verified rung; confident designs (the
    run's confidence threshold) rank before the others, each group by utility."""
    if top < 1:
        raise ValueError(f"--top must be at least 1, got {top}")
    folder = Path(run_dir)
    if not folder.is_dir():
        raise RunFolderError(f"{folder} is not a folder; pass the run folder that `openevolve CONFIG.yaml --output "
                             "RUN_DIR` wrote (default runs/<config name>)")
    run_config = read_run_config(folder, config)
    events = read_history(folder / "history.jsonl")
    records = replay(events, run_config)
    codes = {e["id"]: e["code"] for e in events if e["type"] in ("baseline", "design") and e.get("code")}
    threshold = run_config.genesys.selector.confidence_threshold
    baseline = _candidate(records[BASELINE_ID], codes[BASELINE_ID], threshold)
    valid = [r for r in records.values() if r.id != BASELINE_ID and r.valid and r.utility is not None]
    if not valid:
        raise RunFolderError(f"{folder / 'history.jsonl'} has no design with a verified rung, so there is nothing to "
                             "validate; let the run go on (`openevolve CONFIG.yaml --output "
                             f"{folder} --resume --iterations N`) until a design passes its first rung")
    valid.sort(key=lambda r: (r.confidence >= threshold, r.utility, r.confidence), reverse=True)
    designs = [_candidate(r, codes[r.id], threshold) for r in valid[:top]]
    return RunCandidates(run_config, events, baseline, designs, len(valid))


def replay(events: list[dict[str, Any]], config: RunConfig) -> dict[str, DesignRecord]:
    """Design records as the run had them after its last event, valued with the run's own settings."""
    from openevolve_genesys.controller.accounting import Accounting
    from openevolve_genesys.controller.ledger import RunLedger
    from openevolve_genesys.selection.database import GenesysDatabase
    from openevolve_genesys.training.profiles import get_profile

    g = config.genesys
    # No db_path: the database must not load OpenEvolve's checkpoint, only what the history says.
    database_config = dataclasses.replace(config.openevolve.database, db_path=None)
    quiet = [logging.getLogger(name) for name in ("openevolve_genesys.controller.ledger", "openevolve.database")]
    levels = [logger.level for logger in quiet]
    for logger in quiet:  # the replay would log every attempt again
        logger.setLevel(logging.WARNING)
    try:
        profile = get_profile(g.evaluator.profile, g.evaluator.profile_overrides)
        database = GenesysDatabase(database_config, baseline_id=BASELINE_ID, target_n=g.evaluator.target_n,
                                   valuation=g.evaluator.valuation,
                                   confidence_threshold=g.selector.confidence_threshold,
                                   policy=profile.data_policy(), depths=profile.depths())
        ledger = RunLedger(database, Accounting(requeue_limit=g.run.requeue_limit), max_attempts=0)
        for number, event in enumerate(events, start=1):
            try:
                ledger.apply(event)
            except (KeyError, TypeError, ValueError) as err:
                raise RunFolderError(f"history event {number} ({event.get('type')} "
                                     f"{event.get('id') or event.get('design_id')}) is incomplete "
                                     f"({type(err).__name__}: {err}); is this history written by this version of "
                                     "openevolve-genesys?") from None
    finally:
        for logger, level in zip(quiet, levels):
            logger.setLevel(level)
    return database.records


def _candidate(record: DesignRecord, code: str, threshold: float) -> Candidate:
    return Candidate(id=record.id, code=code, learning_rate=record.learning_rate, utility=record.utility,
                     confidence=record.confidence, confident=record.confidence >= threshold,
                     rungs_verified=tuple(sorted(record.rungs, key=lambda n: record.rungs[n].n_params)),
                     operator=str(record.operator.get("operator") or ""),
                     tuned=bool((record.tune or {}).get("tuned")))
