"""Method (b): OpenEvolve 0.4.0's own ProgramDatabase choosing parents; fitness at the smallest rung only.

Each iteration does what ``ProcessParallelController`` does with one worker: the parent comes from
``sample_from_island`` on the islands in turn (the call 0.4.0's controller makes; ``sample()`` runs the
same exploration / exploitation / weighted strategy), the child goes back with ``add(child, iteration,
target_island=island)``, then ``increment_island_generation`` and migration when due. Programs carry
their real source text, so MAP-Elites' complexity and diversity features see what they would in a run.
``combined_score`` is -loss at the smallest rung; an invalid child scores -1000, the ``INVALID_SCORE``
our evaluator gives OpenEvolve. The database settings are OpenEvolve's defaults (5 islands, population
1000, archive 100, exploration 0.2, exploitation 0.7). Nothing is verified above the smallest rung, so
all compute goes to design attempts; the reported design is ``get_best_program()``. Runs of this method
are reproducible only in distribution: migrants get ``uuid4`` ids and islands are sets of id strings.
"""

from __future__ import annotations

import logging

from openevolve.config import DatabaseConfig
from openevolve.database import Program, ProgramDatabase

from selector_sim.trial import BASELINE, RunResult, Trial

DESIGN = "design"  # metadata key of the design number; migrants are copies under new uuids, so ids will not do
INVALID_SCORE = -1000.0  # openevolve_genesys.evaluation.evaluator.INVALID_SCORE (not imported: it loads JAX)


def run(trial: Trial, config: DatabaseConfig | None = None) -> RunResult:
    land = trial.landscape
    logging.getLogger("openevolve").setLevel(logging.WARNING)  # its database logs every add at INFO
    # The database seeds Python's global random module with this; the mutation operator uses trial.rng.
    db = ProgramDatabase(config or DatabaseConfig(random_seed=int(trial.rng.integers(2**31))))
    db.add(Program(id=str(BASELINE), code=land.source(BASELINE), metrics=_metrics(-trial.losses[BASELINE][0]),
                   metadata={DESIGN: BASELINE}), iteration=0)
    iteration = 0
    while trial.fits(0):
        iteration += 1
        island = (iteration - 1) % len(db.islands)
        parent, _ = db.sample_from_island(island, num_inspirations=0)
        child, status = trial.attempt(parent.metadata[DESIGN])
        if status != "duplicate":
            score = -trial.losses[child][0] if status == "new" else INVALID_SCORE
            db.add(Program(id=str(child), code=land.source(child), parent_id=parent.id,
                           generation=parent.generation + 1, iteration_found=iteration, metrics=_metrics(score),
                           metadata={DESIGN: child}),
                   iteration=iteration, target_island=island)
        db.increment_island_generation(island_idx=island)
        if db.should_migrate():
            db.migrate_programs()
    best = db.get_best_program()
    return trial.result("openevolve", best.metadata[DESIGN] if best is not None else BASELINE)


def _metrics(score: float) -> dict[str, float]:
    return {"combined_score": float(score)}
