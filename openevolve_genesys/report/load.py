"""Read a run folder into plain data: its history events, the latest checkpoint's design records, its
attempt accounting, and the quadrant thresholds the selector used.

Everything else of the report works on a :class:`RunData`, so the plots and the summary never touch the
folder layout. A folder that cannot be reported on raises :class:`RunFolderError`, whose message names the
missing or damaged file and how to get it.
"""

from __future__ import annotations

import json
import re
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from openevolve_genesys.selection.records import DesignRecord

RECORDS_FILE = "genesys_records.json"  # written next to each OpenEvolve checkpoint by GenesysDatabase.save
DEFAULT_UTILITY_QUANTILE = 0.5  # the selector's defaults: the median of valid utilities ...
DEFAULT_CONFIDENCE_THRESHOLD = 0.5  # ... and half of the one-rung uncertainty removed
_CHECKPOINT = re.compile(r"checkpoint_(\d+)$")


class RunFolderError(ValueError):
    """The folder is not a (complete) run folder; the message says which file and what to do."""


@dataclass(frozen=True)
class Thresholds:
    """Where the quadrant lines lie: the utility quantile, the confidence cut, and where they came from."""

    utility_quantile: float = DEFAULT_UTILITY_QUANTILE
    confidence_threshold: float = DEFAULT_CONFIDENCE_THRESHOLD
    source: str = "selector defaults (no run config found; pass --config CONFIG.yaml to use the run's)"


@dataclass
class RunData:
    path: Path
    events: list[dict[str, Any]]  # history.jsonl, in order
    records: dict[str, DesignRecord]  # the latest checkpoint's, by design id
    baseline_id: str
    checkpoint: Path
    summary: dict[str, Any]  # summary.json: attempt accounting per model
    state: dict[str, Any] = field(default_factory=dict)  # state.json (empty when absent)
    best_id: str | None = None
    thresholds: Thresholds = field(default_factory=Thresholds)

    @property
    def codes(self) -> dict[str, str]:
        """Source of every design that has one (baseline included), by id."""
        codes = {}
        for event in self.events:
            if event["type"] == "baseline":
                codes[event["id"]] = event["code"]
            elif event["type"] == "design" and event.get("code"):
                codes[event["id"]] = event["code"]
        return codes

    @property
    def designs(self) -> list[DesignRecord]:
        """Every design record except the baseline."""
        return [r for r in self.records.values() if r.id != self.baseline_id]

    def ranked(self, top: int | None = None) -> list[DesignRecord]:
        """Valid, valued designs (not the baseline), highest utility first."""
        valued = [r for r in self.designs if r.valid and r.utility is not None]
        valued.sort(key=lambda r: (r.utility, r.confidence), reverse=True)
        return valued if top is None else valued[:top]

    def lineage(self, design_id: str) -> list[DesignRecord]:
        """The seed chain from the baseline down to ``design_id`` (both ends included)."""
        chain, seen = [], set()
        current: str | None = design_id
        while current is not None and current in self.records and current not in seen:
            seen.add(current)
            chain.append(self.records[current])
            current = self.records[current].parent_id
        return chain[::-1]


def load_run(path: str | Path, config: str | Path | None = None) -> RunData:
    """Read ``path``; ``config`` (else ``path/config.yaml`` when present) supplies the quadrant thresholds."""
    folder = Path(path)
    if not folder.is_dir():
        raise RunFolderError(f"{folder} is not a folder; pass the run folder that `openevolve CONFIG.yaml --output "
                             "RUN_DIR` wrote (default runs/<config name>)")
    events = read_history(folder / "history.jsonl")
    checkpoint = latest_checkpoint(folder)
    baseline_id, records = read_records(checkpoint / RECORDS_FILE)
    summary = _read_json(folder / "summary.json", "the run writes it when it saves (at the end, at each "
                         "checkpoint and on Ctrl-C); resume the run with --resume to write it")
    state_path = folder / "state.json"
    state = _read_json(state_path, "it is rewritten after every job: resume the run with --resume") \
        if state_path.exists() else {}
    config_path = Path(config) if config else folder / "config.yaml"
    thresholds = read_thresholds(config_path) if (config or config_path.exists()) else Thresholds()
    best_id = _best_id(folder, records) or best_by_rule(records, thresholds.confidence_threshold)
    return RunData(folder, events, records, baseline_id, checkpoint, summary, state, best_id, thresholds)


def read_history(path: Path) -> list[dict[str, Any]]:
    """Events of ``history.jsonl``. A torn last line (a crash mid-write) is dropped, as a resume drops it;
    a damaged line anywhere else is an error, since the report would silently miss an evaluation."""
    if not path.is_file():
        raise RunFolderError(f"{path} is missing: this is not a run folder, or the run stopped before the "
                             "baseline was trained; start it with `openevolve CONFIG.yaml --output "
                             f"{path.parent}`")
    lines = path.read_text(encoding="utf-8").splitlines()
    events = []
    for number, line in enumerate(lines, start=1):
        if not line.strip():
            continue
        try:
            event = json.loads(line)
        except json.JSONDecodeError as err:
            if number == len(lines):
                continue
            raise RunFolderError(f"{path} line {number} is not JSON ({err.msg}); the log is damaged: restore "
                                 "it from a backup or delete that line (its evaluation is then lost)") from None
        if not isinstance(event, dict) or event.get("type") not in ("baseline", "design", "verify"):
            raise RunFolderError(f"{path} line {number} is not a run event (type baseline, design or verify); "
                                 "is this file really an openevolve-genesys history?")
        events.append(event)
    if not any(e["type"] == "baseline" for e in events):
        raise RunFolderError(f"{path} has no baseline event: the run stopped before the baseline was trained; "
                             f"start it again with `openevolve CONFIG.yaml --output {path.parent} --resume`")
    return events


def latest_checkpoint(folder: Path) -> Path:
    """The checkpoint with the most attempts that holds our records."""
    found = []
    for child in (folder / "checkpoints").glob("checkpoint_*"):
        match = _CHECKPOINT.search(child.name)
        if match and (child / RECORDS_FILE).is_file():
            found.append((int(match.group(1)), child))
    if not found:
        raise RunFolderError(f"{folder / 'checkpoints'} holds no checkpoint_N/{RECORDS_FILE}: the run saves one at "
                             "the end, every checkpoint_interval attempts and on Ctrl-C; let it reach one, or "
                             "resume it with `openevolve CONFIG.yaml --output RUN_DIR --resume` to write one")
    return max(found)[1]


def read_records(path: Path) -> tuple[str, dict[str, DesignRecord]]:
    data = _read_json(path, "it is rewritten at the next checkpoint: resume the run with --resume")
    try:
        records = [DesignRecord.from_dict(r) for r in data["records"]]
        baseline_id = data["baseline_id"]
    except (KeyError, TypeError) as err:
        raise RunFolderError(f"{path} is not a records file ({type(err).__name__}: {err}); it is rewritten at the "
                             "next checkpoint: resume the run with --resume") from None
    by_id = {r.id: r for r in records}
    if baseline_id not in by_id:
        raise RunFolderError(f"{path} has no record of the baseline {baseline_id!r}; it is rewritten at the next "
                             "checkpoint: resume the run with --resume")
    return baseline_id, by_id


def read_thresholds(config_path: Path) -> Thresholds:
    """The selector's quadrant settings from the run YAML (validated as a run would validate it)."""
    from openevolve_genesys.config import load_run_config
    from openevolve_genesys.strict import ConfigError

    if not config_path.is_file():
        raise RunFolderError(f"config {config_path} does not exist; pass the YAML the run was started with")
    try:
        selector = load_run_config(config_path, run_folder_copy=True).genesys.selector
    except (ConfigError, ValueError) as err:
        raise RunFolderError(f"config {config_path} cannot be read: {err}") from None
    return Thresholds(selector.utility_quantile, selector.confidence_threshold, f"run config {config_path}")


def best_by_rule(records: dict[str, DesignRecord], confidence_threshold: float) -> str | None:
    """The run's rule (GenesysDatabase.best_design) for folders without best_program_info.json: the highest
    utility among confidently valued designs, else among all valued ones."""
    valued = [r for r in records.values() if r.valid and r.utility is not None]
    confident = [r for r in valued if r.confidence >= confidence_threshold]
    best = max(confident or valued, key=lambda r: (r.utility, r.confidence), default=None)
    return best.id if best else None


def _best_id(folder: Path, records: dict[str, DesignRecord]) -> str | None:
    """The run's own choice (best_program_info.json) when it names a known design."""
    info_path = folder / "best_program_info.json"
    if info_path.exists():
        info = _read_json(info_path, "it is rewritten when the run saves: resume the run with --resume")
        if isinstance(info, dict) and info.get("id") in records:
            return info["id"]
    return None


def _read_json(path: Path, fix: str) -> Any:
    if not path.is_file():
        raise RunFolderError(f"{path} is missing; {fix}")
    try:
        return json.loads(path.read_text(encoding="utf-8"))
    except json.JSONDecodeError as err:
        raise RunFolderError(f"{path} is not valid JSON ({err.msg} at line {err.lineno}); {fix}") from None
