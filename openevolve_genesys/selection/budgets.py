"""Per-rung verification budgets by successive halving.

Every valid design is verified at the smallest rung; rung i admits at most ``ceil(designs / eta^i)``
designs, never fewer than ``min_per_rung``, so each rung up costs about the same total compute when
rung sizes grow by eta (Jamieson & Talwalkar 2016; Li et al. 2018, Hyperband). The budget grows with
the population, so a long run keeps promoting.
"""

from __future__ import annotations

import math
from typing import Collection, Iterable, Mapping, Sequence

from openevolve_genesys.selection.records import DesignRecord


def rung_budgets(rungs: Sequence[str], valid_designs: int, eta: float, min_per_rung: int) -> dict[str, int]:
    if eta <= 1:
        raise ValueError(f"the successive-halving ratio must exceed 1, got {eta}")
    return {rung: max(min_per_rung, math.ceil(valid_designs / eta ** i)) if i else valid_designs
            for i, rung in enumerate(rungs)}


def rung_usage(records: Iterable[DesignRecord], rungs: Sequence[str], baseline_id: str,
               busy: Iterable[tuple[str, str]] = ()) -> dict[str, int]:
    """Designs verified (or being verified, or failed) at each rung; the baseline is not charged. A design counts
    once per rung: a seed verification in flight at a rung it has takes no promotion away."""
    pairs = {(record.id, rung) for record in records if record.id != baseline_id
             for rung in set(record.rungs) | set(record.failed_rungs)}
    pairs |= {(design_id, rung) for design_id, rung in busy if design_id != baseline_id}
    used = {rung: 0 for rung in rungs}
    for _, rung in pairs:
        if rung in used:
            used[rung] += 1
    return used


def seed_room(records: Mapping[str, DesignRecord], rungs: Sequence[str], baseline_id: str, share: float,
              busy: Collection[tuple[str, str]] = (), steps: Mapping[str, int] | None = None) -> int:
    """How many more seed verifications at the top rung fit in ``share`` of verification's compute.

    Verification's compute is that of the rungs above the first (a design attempt pays the first) and of the
    seed runs, jobs in flight included. A run costs in proportion to its rung's N (the baseline's) times the
    steps it trains (``steps`` by rung; None: every rung the same, as at fixed steps), so at tokens per
    parameter a rung costs in proportion to N^2; small rungs' fixed overheads make this undercount them, erring
    towards fewer seed runs. ``seeds + m <= share * (promotions + seeds + m)`` in top-rung runs, solved for m."""
    baseline = records.get(baseline_id)
    if share <= 0 or baseline is None or any(r not in baseline.rungs for r in rungs):
        return 0
    if steps is not None and any(r not in steps for r in rungs):
        raise ValueError(f"steps must give every rung's steps; missing {[r for r in rungs if r not in steps]}")

    def compute(r: str) -> float:
        return baseline.rungs[r].n_params * (steps[r] if steps is not None else 1)

    size = {r: compute(r) / compute(rungs[-1]) for r in rungs}  # in top-rung runs
    used = rung_usage(records.values(), rungs, baseline_id, busy)
    promotions = sum(used[r] * size[r] for r in rungs[1:])
    seeds = 0.0
    for record in records.values():
        if record.id == baseline_id:
            continue
        # Seeds beyond the first, failed ones, and those in flight (busy at a rung the design already has).
        runs = {n: len(v.losses) - 1 + ((record.id, n) in busy) for n, v in record.rungs.items()}
        for n in record.failed_seeds:
            runs[n] = runs.get(n, 0) + 1
        seeds += sum(k * size.get(n, 1.0) for n, k in runs.items())
    return max(0, math.floor((share * (promotions + seeds) - seeds) / (1 - share) + 1e-9))
