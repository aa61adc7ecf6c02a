"""Hand-made design records on a four-rung ladder whose baseline follows a known law."""

from __future__ import annotations

from openevolve_genesys.scaling.fit import PowerLawFit
from openevolve_genesys.selection.records import DesignRecord, RungRecord

RUNGS = ["r0", "r1", "r2", "r3"]
SIZES = {"r0": 25_000, "r1": 57_000, "r2": 150_000, "r3": 340_000}
LAW = PowerLawFit(E=4.7, A=232.0, alpha=0.5, n_points=4, dof=1, converged=True, residual_scale=None)


def baseline_loss(rung: str) -> float:
    return float(LAW.predict(SIZES[rung]))


def record(design_id: str, ratio: float = 1.0, rungs: int = 1, *, outcome: str = "ok",
           parent: str | None = "baseline") -> DesignRecord:
    """A design whose loss is ``ratio`` times the baseline's at each of its first ``rungs`` rungs."""
    verified = {r: RungRecord(r, SIZES[r], ratio * baseline_loss(r)) for r in RUNGS[:rungs]} if outcome == "ok" else {}
    return DesignRecord(id=design_id, parent_id=parent, code_hash=f"hash-{design_id}", iteration=1,
                        operator={"unit": "Readout", "operator": "Readout:test"}, outcome=outcome, rungs=verified)


def baseline() -> DesignRecord:
    return record("baseline", 1.0, rungs=4, parent=None)


def seeded_baseline(spread: float = 0.001) -> DesignRecord:
    """The hand baseline with two more seeds per rung, spread by +-``spread`` nats (0.001: a single-run sd whose
    pair bound, 0.0014, is below the pair-noise prior, so the seeds narrow the noise)."""
    base = baseline()
    for r in base.rungs.values():
        r.seed_losses = (r.loss, r.loss + spread, r.loss - spread)
    return base
