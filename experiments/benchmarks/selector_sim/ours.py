"""Method (a): our GenesysSelector and Valuer, through GenesysDatabase, driven as controller/run.py drives them.

``_next_job`` of the live run, with one worker: verification is considered while verification has had
at most ``verify_share`` of the compute seconds; ``select_verification`` picks (design, next rung) under
the successive-halving budgets, and when it returns None (or the job does not fit) a design attempt is
made from ``select_design``'s seed at its unit. The annealing clock is the share of the compute budget
spent (the live run's is the share of attempts, which a compute budget does not fix in advance).
Settings are ``SelectorSettings()``'s and ``ValueSettings()``'s defaults, which the shipped configs use: the
valuation measures the landscape's noise from the baseline and the population as a live run does. The
reported design is ``GenesysDatabase.best_design()``.
"""

from __future__ import annotations

import random

from openevolve.config import DatabaseConfig
from openevolve.database import Program

from openevolve_genesys.selection.database import GenesysDatabase
from openevolve_genesys.selection.records import DesignRecord, RungRecord
from openevolve_genesys.selection.selector import GenesysSelector, SelectorSettings
from selector_sim.trial import BASELINE, RunResult, Trial

BASELINE_ID = "baseline"


def ranked_by(rank_by: str):
    """Method (a) with ``selector.rank_by`` set to ``rank_by``, reported under ``ours_<rank_by>``."""
    return lambda trial: run(trial, SelectorSettings(rank_by=rank_by), name=f"ours_{rank_by}")


def run(trial: Trial, settings: SelectorSettings | None = None, name: str = "ours") -> RunResult:
    land = trial.landscape
    settings = settings or SelectorSettings()
    db, selector = start(trial, settings)
    while True:
        if verify_if_due(trial, selector, db, settings.verify_share):
            continue
        if not trial.fits(0):
            break
        pick = selector.select_design(db.records, BASELINE_ID, trial.progress)
        seed = _design(pick.seed_id)
        child, status = trial.attempt(seed, land.units.index(pick.unit))
        if status == "duplicate":
            continue
        record = design_record(trial, child, pick.seed_id, "ok" if status == "new" else "invalid")
        db.add_design(Program(id=record.id, code=land.source(child), parent_id=pick.seed_id,
                              iteration_found=trial.attempts), record)

    best = db.best_design()
    return trial.result(name, _design(best.id) if best is not None else BASELINE)


def start(trial: Trial, settings: SelectorSettings) -> tuple[GenesysDatabase, GenesysSelector]:
    """The database holding the baseline, and the selector, as a live run builds them."""
    land = trial.landscape
    db = GenesysDatabase(DatabaseConfig(random_seed=trial.seed), baseline_id=BASELINE_ID, target_n=land.target_n,
                         confidence_threshold=settings.confidence_threshold)
    selector = GenesysSelector(settings, list(land.rungs), list(land.units),
                               rng=random.Random(int(trial.rng.integers(2**31))))
    db.add_design(Program(id=BASELINE_ID, code=land.source(BASELINE)), design_record(trial, BASELINE, None, "ok"))
    return db, selector


def verify_if_due(trial: Trial, selector: GenesysSelector, db: GenesysDatabase, verify_share: float) -> bool:
    """One verification, when verification is under its compute share and the job fits; True if one ran."""
    if not trial.verification_due(verify_share):
        return False
    choice = selector.select_verification(db.records, BASELINE_ID, trial.progress)
    rung = trial.landscape.rungs.index(choice.rung) if choice is not None else None
    if choice is None or not trial.fits(rung):
        return False
    design = _design(choice.design_id)
    trial.verify(design, rung)
    record = db.records[choice.design_id]
    record.rungs[choice.rung] = _rung(trial, design, rung)
    db.update_record(record)
    return True


def _design(design_id: str) -> int:
    return BASELINE if design_id == BASELINE_ID else int(design_id)


def _rung(trial: Trial, design: int, rung: int) -> RungRecord:
    land = trial.landscape
    return RungRecord(rung=land.rungs[rung], n_params=int(land.rung_n[rung]), loss=trial.losses[design][rung],
                      seconds=float(land.costs[rung]))


def design_record(trial: Trial, design: int, parent: str | None, outcome: str) -> DesignRecord:
    rungs = {trial.landscape.rungs[r]: _rung(trial, design, r) for r in trial.losses.get(design, {})}
    design_id = BASELINE_ID if design == BASELINE else str(design)
    unit = "" if parent is None else "mutation"
    return DesignRecord(id=design_id, parent_id=parent, code_hash=design_id, iteration=trial.attempts,
                        operator={"unit": unit, "operator": unit, "model": "simulated"}, outcome=outcome,
                        rungs=rungs if outcome == "ok" else {})
