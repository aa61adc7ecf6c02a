"""Method (d): random search. The seed is a uniformly random valid design (the baseline included); a
verification is a uniformly random (design, next rung) pair; both interleave by the same
``verify_share`` as ours, with no rung budgets. Reported: the lowest observed loss at the largest rung
any design other than the baseline reached (the baseline competes there too): the naive "best at the
biggest scale we trained" rule.
"""

from __future__ import annotations

import numpy as np

from selector_sim.trial import BASELINE, RunResult, Trial

VERIFY_SHARE = 0.5


def run(trial: Trial) -> RunResult:
    rng = np.random.default_rng(trial.rng.integers(2**63))
    while True:
        if trial.verification_due(VERIFY_SHARE):
            open_jobs = [(d, r) for d in trial.losses if (r := trial.next_rung(d)) is not None]
            if open_jobs:
                design, rung = open_jobs[int(rng.integers(len(open_jobs)))]
                if trial.fits(rung):
                    trial.verify(design, rung)
                    continue
        if not trial.fits(0):
            break
        designs = list(trial.losses)
        trial.attempt(designs[int(rng.integers(len(designs)))])
    return trial.result("random", reported(trial))


def reported(trial: Trial) -> int:
    others = [d for d in trial.losses if d != BASELINE]
    if not others:
        return BASELINE
    top = max(max(trial.losses[d]) for d in others)
    at_top = [d for d in trial.losses if top in trial.losses[d]]
    return min(at_top, key=lambda d: trial.losses[d][top])
