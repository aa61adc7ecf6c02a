"""The four quadrants of utility x confidence (Genesys's selector design).

High/high seeds mutation (design exploit); high utility with low confidence is verified at the next rung
(verify exploit); low utility with high confidence is mutated with lower priority (design explore); low/low
is verified with lower priority (verify explore). "High utility" is relative to the population: at or
above a quantile of the valid designs' utilities, so the split stays meaningful whether every design beats
the baseline or none does.
"""

from __future__ import annotations

from enum import Enum
from typing import Iterable, Literal, get_args

import numpy as np

from openevolve_genesys.selection.records import DesignRecord


class Quadrant(str, Enum):
    DESIGN_EXPLOIT = "design_exploit"
    VERIFY_EXPLOIT = "verify_exploit"
    DESIGN_EXPLORE = "design_explore"
    VERIFY_EXPLORE = "verify_explore"


RankBy = Literal["mean", "p_better", "lower"]
RANK_BY: tuple[str, ...] = get_args(RankBy)


def rank_value(record: DesignRecord, rank_by: RankBy = "mean") -> float | None:
    """What "high utility" means: the forecast gap's mean, the probability it is positive, or its interval's
    lower end (a design verified at few rungs has a wide interval, so "lower" and "p_better" favour evidence)."""
    if record.utility is None:
        return None
    if rank_by == "mean" or record.forecast is None:
        return record.utility
    return float(record.forecast["p_better"] if rank_by == "p_better" else record.forecast["low"])


def utility_threshold(records: Iterable[DesignRecord], quantile: float, rank_by: RankBy = "mean") -> float:
    values = [rank_value(r, rank_by) for r in records if r.valid and r.utility is not None]
    return float(np.quantile(values, quantile)) if values else 0.0


def quadrant(record: DesignRecord, utility_cut: float, confidence_cut: float, rank_by: RankBy = "mean") -> Quadrant:
    value = rank_value(record, rank_by)
    high_utility = value is not None and value >= utility_cut
    high_confidence = record.confidence >= confidence_cut
    if high_utility:
        return Quadrant.DESIGN_EXPLOIT if high_confidence else Quadrant.VERIFY_EXPLOIT
    return Quadrant.DESIGN_EXPLORE if high_confidence else Quadrant.VERIFY_EXPLORE


def split(records: Iterable[DesignRecord], utility_cut: float, confidence_cut: float,
          rank_by: RankBy = "mean") -> dict[Quadrant, list[DesignRecord]]:
    """Valid designs by quadrant (every quadrant present, possibly empty)."""
    groups: dict[Quadrant, list[DesignRecord]] = {q: [] for q in Quadrant}
    for record in records:
        if record.valid:
            groups[quadrant(record, utility_cut, confidence_cut, rank_by)].append(record)
    return groups
