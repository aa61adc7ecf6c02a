"""Exploration probability over the run: constant, linear or cosine from ``start`` to ``end``.

``progress`` is the fraction of the attempt budget spent, so a resumed or extended run anneals on the
same clock as an uninterrupted one.
"""

from __future__ import annotations

import math

SCHEDULES = ("constant", "linear", "cosine")


def exploration_probability(schedule: str, start: float, end: float, progress: float) -> float:
    if schedule not in SCHEDULES:
        raise ValueError(f"unknown annealing schedule {schedule!r}; choose one of {SCHEDULES}")
    p = min(max(progress, 0.0), 1.0)
    if schedule == "constant":
        return start
    if schedule == "linear":
        return start + (end - start) * p
    return end + (start - end) * 0.5 * (1.0 + math.cos(math.pi * p))
