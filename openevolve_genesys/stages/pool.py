"""The frozen pool of a combination stage: the base run's best confidently valued designs and its baseline.

The pool is curated once, from the base run's ``history.jsonl`` folded through the run's own ledger (as
``openevolve validate`` reads a run), and frozen into ``RUN_DIR/stages/<name>/pool/``: one ``<key>.py``
per member and ``pool.json`` with each member's id, utility and confidence. A resumed stage reads the
frozen copy and never re-curates, so the base run may go on without changing a running stage.
"""

from __future__ import annotations

import dataclasses
import json
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from openevolve_genesys.config import RunConfig
from openevolve_genesys.controller.history import write_json_atomic
from openevolve_genesys.report.load import RunFolderError, read_history
from openevolve_genesys.strict import ConfigError
from openevolve_genesys.training.rung_result import RungResult, rungs_from_dict
from openevolve_genesys.validation.candidates import BASELINE_ID, read_run_config, replay

BASELINE_KEY = "base"  # the pool key of the base run's baseline; designs are m0, m1, ... by utility
POOL_FILE = "pool.json"


@dataclass(frozen=True)
class PoolMember:
    key: str  # its name in the combination template: m0 (best), m1, ..., or "base"
    design_id: str  # its id in the base run
    utility: float | None  # forecast loss gap to the base run's baseline (nats, positive = better)
    confidence: float
    learning_rate: float | None  # its tuned rate in the base run
    operator: str
    code: str

    def to_dict(self) -> dict[str, Any]:
        data = dataclasses.asdict(self)
        data.pop("code")
        return data


@dataclass(frozen=True)
class BaseRun:
    """What a stage needs from its base run: its config, its baseline's rungs and the curated pool."""

    path: Path
    config: RunConfig
    baseline_rungs: dict[str, RungResult]  # by rung name, from the base run's baseline line
    members: list[PoolMember]  # best first; the baseline last


def curate(run_dir: str | Path, *, size: int, min_confidence: float | None = None) -> BaseRun:
    """The top ``size`` designs by utility among those with confidence >= ``min_confidence`` (default: the
    base run's confidence threshold), functionally distinct, then the baseline."""
    folder = Path(run_dir)
    try:
        config = read_run_config(folder)
        events = read_history(folder / "history.jsonl")
        records = replay(events, config)
    except RunFolderError as err:
        raise ConfigError(f"the base run {folder} cannot be read: {err}") from None
    threshold = config.genesys.selector.confidence_threshold if min_confidence is None else min_confidence
    by_id = {e["id"]: e for e in events if e["type"] in ("baseline", "design") and e.get("code")}
    valued = [r for r in records.values() if r.id != BASELINE_ID and r.valid and r.utility is not None]
    confident = sorted((r for r in valued if r.confidence >= threshold), key=lambda r: (r.utility, r.confidence),
                       reverse=True)
    if not confident:
        raise ConfigError(f"the pool of {folder} is empty: none of its {len(valued)} valued designs has confidence "
                          f">= {threshold:g} (it grows as designs are verified at more rungs); continue the base run "
                          f"(`openevolve CONFIG --output {folder} --resume --iterations N`) or lower the stage's "
                          "min_confidence")
    members, seen = [], set()
    for record in confident:
        # Equal functional hashes are one function (a cache hit): one pool slot, not two.
        function = by_id[record.id].get("metrics", {}).get("functional_hash") or record.code_hash
        if function in seen:
            continue
        seen.add(function)
        members.append(_member(f"m{len(members)}", record, by_id[record.id]))
        if len(members) == size:
            break
    baseline_event = by_id[BASELINE_ID]
    members.append(_member(BASELINE_KEY, records[BASELINE_ID], baseline_event))
    return BaseRun(folder, config, rungs_from_dict(baseline_event["rungs"]), members)


def _member(key: str, record: Any, event: dict[str, Any]) -> PoolMember:
    return PoolMember(key=key, design_id=record.id, utility=record.utility, confidence=record.confidence,
                      learning_rate=record.learning_rate, operator=str(record.operator.get("operator") or ""),
                      code=event["code"])


def freeze(members: list[PoolMember], folder: Path) -> None:
    """Write the pool: each member's program as ``<key>.py`` and their data as ``pool.json``."""
    folder.mkdir(parents=True, exist_ok=True)
    for member in members:
        (folder / f"{member.key}.py").write_text(member.code)
    write_json_atomic(folder / POOL_FILE, {"members": [m.to_dict() for m in members]})


def load_frozen(folder: Path) -> list[PoolMember]:
    """The pool a stage froze when it started."""
    path = folder / POOL_FILE
    if not path.is_file():
        raise ConfigError(f"{path} is missing: the stage folder {folder.parent} is incomplete; delete it to start "
                          "the stage afresh from its base run")
    members = []
    for data in json.loads(path.read_text())["members"]:
        members.append(PoolMember(**data, code=(folder / f"{data['key']}.py").read_text()))
    return members
