"""The run's write-ahead log: one JSON line per design, verification and failed attempt.

Every finished job is appended and fsynced before the controller acts on it, so after ``kill -9`` a
resumed run replays the log and loses no finished evaluation; checkpoints only make the replay shorter
for OpenEvolve's own tools.
"""

from __future__ import annotations

import json
import math
import os
from pathlib import Path
from typing import Any, Iterator


class RunLog:
    def __init__(self, path: str | os.PathLike):
        self.path = Path(path)
        self.path.parent.mkdir(parents=True, exist_ok=True)

    def append(self, event: dict[str, Any]) -> None:
        line = json.dumps(clean(event), default=_jsonable, allow_nan=False) + "\n"
        with open(self.path, "a", encoding="utf-8") as f:
            f.write(line)
            f.flush()
            os.fsync(f.fileno())

    def events(self) -> Iterator[dict[str, Any]]:
        """Every complete event; a line torn by a crash mid-write is the last one and is skipped."""
        if not self.path.exists():
            return
        with open(self.path, encoding="utf-8") as f:
            for line in f:
                try:
                    yield json.loads(line)
                except json.JSONDecodeError:
                    continue


def write_json_atomic(path: str | os.PathLike, data: Any) -> None:
    path = Path(path)
    tmp = path.with_name(f".{path.name}.{os.getpid()}.tmp")
    tmp.write_text(json.dumps(clean(data), indent=1, default=_jsonable, allow_nan=False))
    os.replace(tmp, path)


def clean(value: Any) -> Any:
    """JSON-safe copy: non-finite floats become None (JSON has no NaN or infinity)."""
    if isinstance(value, float):
        return value if math.isfinite(value) else None
    if isinstance(value, dict):
        return {str(k): clean(v) for k, v in value.items()}
    if isinstance(value, (list, tuple)):
        return [clean(v) for v in value]
    if hasattr(value, "to_dict"):
        return clean(value.to_dict())
    return value


def _jsonable(value: Any) -> Any:
    return str(value)
