"""Seed verifications through the ledger: a ``verify`` line with a seed folds its loss into the rung's
``seed_losses`` in seed order, the live run and ``--resume`` fold the same lines alike, and a seed the baseline
never trained, or one out of order, is refused."""

import json

import pytest
from openevolve.config import DatabaseConfig

from openevolve_genesys.controller.accounting import Accounting
from openevolve_genesys.controller.ledger import BASELINE_ID, RunLedger, SeedVerifications
from openevolve_genesys.selection.database import GenesysDatabase

BASELINE_LOSSES = {"r0": [5.0, 5.01, 4.99], "r1": [4.6, 4.61, 4.59]}
SIZES = {"r0": 1000, "r1": 3000}


def baseline_event() -> dict:
    rungs = {name: {"n_params": SIZES[name], "final_eval_loss": losses[0], "seed_losses": losses}
             for name, losses in BASELINE_LOSSES.items()}
    return {"type": "baseline", "id": BASELINE_ID, "code": "x = 1\n", "rungs": rungs, "metrics": {}}


def design_event() -> dict:
    return {"type": "design", "attempt": 1, "id": "child", "seed_id": BASELINE_ID, "unit": "Score",
            "operator": "Score:scaled", "model": "m", "quadrant": None, "class": "ok", "failure": None,
            "message": "", "code": "x = 2\n", "notes": [], "seconds": 1.0, "tokens": 9, "learning_rate": None,
            "tune": None, "outcome": "ok", "metrics": {}, "artifacts": {}, "requeues": 0, "requeued": False,
            "quarantined": False, "rungs": {"r0": {"n_params": SIZES["r0"], "final_eval_loss": 4.95},
                                            "r1": {"n_params": SIZES["r1"], "final_eval_loss": 4.55}}}


def seed_event(seed: int, loss: float | None, *, outcome: str = "ok", requeued: bool = False) -> dict:
    rungs = {"r1": {"n_params": SIZES["r1"], "final_eval_loss": loss}} if outcome == "ok" else {}
    return {"type": "verify", "design_id": "child", "rung": "r1", "seed": seed, "outcome": outcome,
            "class": "ok" if outcome == "ok" else ("stalled" if requeued else "invalid"), "rungs": rungs,
            "metrics": {}, "seconds": 2.0, "requeued": requeued, "quarantined": False}


def replay(events: list[dict]) -> RunLedger:
    ledger = RunLedger(GenesysDatabase(DatabaseConfig()), Accounting(), max_attempts=5)
    for event in events:
        ledger.apply(event)
    return ledger


def test_seed_verifications_fold_in_seed_order_and_replay_alike():
    alone = replay([baseline_event(), design_event()]).database.records["child"]
    events = [baseline_event(), design_event(), seed_event(1, 4.57, outcome="crashed", requeued=True),
              seed_event(1, 4.57), seed_event(2, 4.54)]
    ledger = replay(events)
    child = ledger.database.records["child"]
    assert child.rungs["r1"].losses == (4.55, 4.57, 4.54)  # a re-queued try is no result
    assert child.rungs["r0"].losses == (4.95,)
    assert child.forecast["n_pairs"] == alone.forecast["n_pairs"] + 2  # the valuation pairs every seed
    assert ledger.seed_verifications == SeedVerifications(runs=2, ok=2, seconds=4.0)
    assert ledger.verify_seconds == 4.0
    resumed = replay(json.loads(json.dumps(events)))  # --resume folds the same lines, read back from JSON
    assert ({k: r.to_dict() for k, r in resumed.database.records.items()}
            == {k: r.to_dict() for k, r in ledger.database.records.items()})
    assert SeedVerifications.of(events) == ledger.seed_verifications  # the report's fold of the history


def test_a_failed_seed_verification_is_recorded_and_keeps_the_rung():
    ledger = replay([baseline_event(), design_event(), seed_event(1, None, outcome="timeout")])
    child = ledger.database.records["child"]
    assert child.failed_seeds == {"r1": "timeout"} and child.failed_rungs == {}
    assert child.rungs["r1"].losses == (4.55,) and child.valid
    assert ledger.seed_verifications == SeedVerifications(runs=1, ok=0, seconds=2.0)


def test_a_seed_without_a_baseline_partner_or_out_of_order_is_refused():
    ledger = replay([baseline_event(), design_event()])
    with pytest.raises(ValueError, match="seed 2's loss arrived after seeds 0..0; seeds fold in order"):
        ledger.apply(seed_event(2, 4.54))
    ledger.apply(seed_event(1, 4.57))
    ledger.apply(seed_event(2, 4.54))
    with pytest.raises(ValueError, match="seed 3 has no baseline partner .*trained 3 seed.*baseline_seeds"):
        ledger.apply(seed_event(3, 4.56))
    unverified = {**seed_event(1, 4.57), "rung": "r2", "rungs": {"r2": {"n_params": 9000, "final_eval_loss": 4.3}}}
    with pytest.raises(ValueError, match="has no result at r2"):
        ledger.apply(unverified)
