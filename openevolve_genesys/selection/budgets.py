"""Per-rung verification budgets by successive halving.

Every valid design is verified at the smallest rung; rung i admits at most ``ceil(designs / eta^i)``
designs, never fewer than ``min_per_rung``, so each rung up costs about the same total compute when
rung sizes grow by eta (Jamieson & Talwalkar 2016; Li et al. 2018, Hyperband). The budget grows with
the population, so a long run keeps promoting.
"""

from __future__ import annotations

import math
from typing import Iterable, Sequence

from openevolve_genesys.selection.records import DesignRecord


def rung_budgets(rungs: Sequence[str], valid_designs: int, eta: float, min_per_rung: int) -> dict[str, int]:
    if eta <= 1:
        raise ValueError(f"the successive-halving ratio must exceed 1, got {eta}")
    return {rung: max(min_per_rung, math.ceil(valid_designs / eta ** i)) if i else valid_designs
            for i, rung in enumerate(rungs)}


def rung_usage(records: Iterable[DesignRecord], rungs: Sequence[str], baseline_id: str,
               busy: Iterable[tuple[str, str]] = ()) -> dict[str, int]:
    """Designs verified (or being verified, or failed) at each rung; the baseline is not charged."""
    used = {rung: 0 for rung in rungs}
    for record in records:
        if record.id == baseline_id:
            continue
        for rung in set(record.rungs) | set(record.failed_rungs):
            if rung in used:
                used[rung] += 1
    for design_id, rung in busy:
        if design_id != baseline_id and rung in used:
            used[rung] += 1
    return used
