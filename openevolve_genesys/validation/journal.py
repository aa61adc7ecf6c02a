"""The validation's write-ahead log: one JSON line per finished (design, seed, rung) training.

A line is fsynced before the next training starts, so an interrupted validation loses at most the
trainings in flight (the seeds of one design and rung, which train together); a rerun reads the journal and
trains only what is missing. Lines are keyed by the
setup fingerprint (framework, profile, profile overrides, data) as well, so a rerun with another
``--profile`` never mistakes an old rung for a new one.
"""

from __future__ import annotations

import json
import os
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any, Iterator

from openevolve_genesys.outcomes import AttemptClass
from openevolve_genesys.training.rung_result import CacheHit

JOURNAL_FILE = "journal.jsonl"


@dataclass(frozen=True)
class TrainingResult:
    """One rung of one design trained at one seed."""

    setup: str  # fingerprint of what the loss depends on besides design, rate, seed and rung
    design_id: str
    learning_rate: float
    seed: int
    rung: str
    outcome: AttemptClass  # only ok and invalid (the design's fault, deterministic) are journaled
    loss: float | None = None  # final held-out loss
    n_params: int | None = None
    cache_hit: CacheHit | None = None  # the fitness cache answered
    seconds: float = 0.0
    message: str = ""

    @property
    def key(self) -> tuple[str, str, float, int, str]:
        return (self.setup, self.design_id, self.learning_rate, self.seed, self.rung)

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)


class Journal:
    def __init__(self, path: str | os.PathLike):
        self.path = Path(path)

    def append(self, result: TrainingResult) -> None:
        self.path.parent.mkdir(parents=True, exist_ok=True)
        line = json.dumps(result.to_dict(), allow_nan=False) + "\n"
        with open(self.path, "a", encoding="utf-8") as f:
            f.write(line)
            f.flush()
            os.fsync(f.fileno())

    def results(self) -> Iterator[TrainingResult]:
        """Every complete line; a line torn by a crash mid-write (always the last) is skipped, and so is a
        line of an older format, which then simply trains again."""
        if not self.path.exists():
            return
        with open(self.path, encoding="utf-8") as f:
            for line in f:
                try:
                    yield TrainingResult(**json.loads(line))
                except (json.JSONDecodeError, TypeError):
                    continue

    def done(self) -> dict[tuple[str, str, float, int, str], TrainingResult]:
        """Finished trainings by key; a later line for the same key wins."""
        return {result.key: result for result in self.results()}
