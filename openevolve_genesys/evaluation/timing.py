"""Where an evaluation's seconds went: start-up, checks and hashing, data, compiles, training, evaluation.

The sandboxed job times its own phases (``Stopwatch``); the parent adds the start-up (interpreter, imports,
confinement: the job's wall time minus what the job itself measured) and the engine the wait for a slot.
Training, compile and evaluation seconds include a sweep's trials run in the same job.
"""

from __future__ import annotations

import time
from typing import Any, Mapping

# The phases in the order a job goes through them; "other" is whatever the phases did not cover.
PHASES = ("queue", "startup", "checks", "data", "compile", "train", "evaluation", "other")


class Stopwatch:
    """Phase seconds inside the job; ``rung`` adds a trained rung's compile, training and evaluation."""

    def __init__(self) -> None:
        self.start = self._mark = time.perf_counter()
        self.seconds: dict[str, float] = {}

    def lap(self, phase: str) -> None:
        """Charge the seconds since the last lap to ``phase``."""
        now = time.perf_counter()
        self.seconds[phase] = self.seconds.get(phase, 0.0) + now - self._mark
        self._mark = now

    def rung(self, result: Any) -> None:
        for phase, seconds in (("compile", result.compile_seconds), ("evaluation", result.eval_seconds),
                               ("train", result.train_seconds - result.eval_seconds)):
            self.seconds[phase] = self.seconds.get(phase, 0.0) + seconds
        self._mark = time.perf_counter()

    def to_dict(self) -> dict[str, float]:
        return {**{k: round(v, 3) for k, v in self.seconds.items()}, "job": round(time.perf_counter() - self.start, 3)}


def job_timing(child: Mapping[str, float], wall_seconds: float) -> dict[str, float]:
    """The job's phases plus its start-up and the unaccounted rest, which together add up to ``wall_seconds``."""
    job = float(child.get("job", 0.0))
    timing = {phase: float(child.get(phase, 0.0)) for phase in PHASES if phase not in ("queue", "startup", "other")}
    # The job's own first lap (backend up, profile built) is start-up too.
    timing["startup"] = (max(wall_seconds - job, 0.0) if job else wall_seconds) + float(child.get("startup", 0.0))
    timing["other"] = max(wall_seconds - sum(timing.values()), 0.0)
    return {phase: round(timing[phase], 3) for phase in PHASES if phase in timing}


def add_timing(total: dict[str, float], timing: Mapping[str, float]) -> dict[str, float]:
    """``total`` with ``timing`` summed in (a design's trials, a run's jobs)."""
    for phase, seconds in timing.items():
        total[phase] = round(total.get(phase, 0.0) + float(seconds), 3)
    return total
