"""The four quadrants of utility x confidence (Genesys's selector design).

High/high seeds mutation (design exploit); high utility with low confidence is verified at the next rung
(verify exploit); low utility with high confidence is mutated with lower priority (design explore); low/low
is verified with lower priority (verify explore). "High utility" is relative to the population: at or
above a quantile of the valid designs' utilities, so the split stays meaningful whether every design beats
the baseline or none does.
"""

from __future__ import annotations

from enum import Enum
from typing import Iterable

import numpy as np

from openevolve_genesys.selection.records import DesignRecord


class Quadrant(str, Enum):
    DESIGN_EXPLOIT = "design_exploit"
    VERIFY_EXPLOIT = "verify_exploit"
    DESIGN_EXPLORE = "design_explore"
    VERIFY_EXPLORE = "verify_explore"


def utility_threshold(records: Iterable[DesignRecord], quantile: float) -> float:
    utilities = [r.utility for r in records if r.valid and r.utility is not None]
    return float(np.quantile(utilities, quantile)) if utilities else 0.0


def quadrant(record: DesignRecord, utility_cut: float, confidence_cut: float) -> Quadrant:
    high_utility = record.utility is not None and record.utility >= utility_cut
    high_confidence = record.confidence >= confidence_cut
    if high_utility:
        return Quadrant.DESIGN_EXPLOIT if high_confidence else Quadrant.VERIFY_EXPLOIT
    return Quadrant.DESIGN_EXPLORE if high_confidence else Quadrant.VERIFY_EXPLORE


def split(records: Iterable[DesignRecord], utility_cut: float,
          confidence_cut: float) -> dict[Quadrant, list[DesignRecord]]:
    """Valid designs by quadrant (every quadrant present, possibly empty)."""
    groups: dict[Quadrant, list[DesignRecord]] = {q: [] for q in Quadrant}
    for record in records:
        if record.valid:
            groups[quadrant(record, utility_cut, confidence_cut)].append(record)
    return groups
