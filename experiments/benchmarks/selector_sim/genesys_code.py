"""Method (c): a selector in the style of Genesys's released code (allenai/genesys, agents/roles/selector.py).

What it keeps of that code (written here from its description, not copied):

- rating: a design's metric averaged over the scales it was verified at with equal weights (here the
  loss, lower is better). Raw averages favour designs verified at larger rungs, as the original's do.
- confidence: the number of verified rungs.
- quadrants: the top 25% by rating and the top 25% by confidence (ties shuffled) set the cuts, at the
  midpoint between the last design in and the first design out; within a quadrant designs are ordered
  by the mean of their rating rank and confidence rank.
- design selection: the baseline while at most 10 designs are verified (warm-up), else the baseline
  with probability 0.05 (restart); otherwise good/high-confidence (exploit) or, with a constant
  probability 0.2, poor/high-confidence (explore), taking the quadrant's top design with probability
  ~0.95 (a background noise of 0.05 spread over the pool); uniform over all designs if both are empty.
- verification selection: good/low-confidence (exploit) or, with probability 0.2, poor/low-confidence,
  at the design's next rung, under the same successive-halving rung budgets as ours (ratio 3); if no
  quadrant design has an open rung, the best-rated design at the lowest open rung.
- reported: the best-rated design of the good/high-confidence quadrant, else the best-rated design.

Design attempts and verifications interleave by the same ``verify_share`` (0.5 of compute) as ours.
"""

from __future__ import annotations

import numpy as np

from openevolve_genesys.selection.budgets import rung_budgets
from selector_sim.trial import BASELINE, RunResult, Trial

QUANTILE = 0.25
EXPLORE = 0.2
NOISE = 0.05
RESTART = 0.05
WARMUP = 10
HALVING = 3.0
VERIFY_SHARE = 0.5


class _Quadrants:
    """Ratings, confidences and quadrant membership of the verified designs (the baseline is a seed only)."""

    def __init__(self, trial: Trial, rng: np.random.Generator):
        self.ids = np.array([d for d in trial.losses if d != BASELINE], dtype=np.int64)
        self.rating = np.array([np.mean(list(trial.losses[d].values())) for d in self.ids])
        self.confidence = np.array([len(trial.losses[d]) for d in self.ids], dtype=float)
        self.good = _upper(-self.rating, rng)
        self.high = _upper(self.confidence, rng)
        rating_rank = np.argsort(np.argsort(self.rating))  # 0 = best
        confidence_rank = _min_rank(-self.confidence)
        self.order_key = (rating_rank + confidence_rank) / 2.0

    def pool(self, good: bool, high: bool) -> np.ndarray:
        """Design ids of one quadrant, best (lowest mean rank) first."""
        members = np.flatnonzero((self.good == good) & (self.high == high))
        return self.ids[members[np.argsort(self.order_key[members], kind="stable")]]


def _upper(score: np.ndarray, rng: np.random.Generator) -> np.ndarray:
    """Genesys's split: the top ``round(n * QUANTILE)`` by score (ties in random order) set a cut at the
    midpoint to the next one; membership is score strictly above the cut."""
    n = score.size
    k = round(n * QUANTILE)
    if k == 0 or k == n:
        return np.zeros(n, dtype=bool)
    order = np.lexsort((rng.random(n), -score))
    cut = (score[order[k - 1]] + score[order[k]]) / 2.0
    return score > cut


def _min_rank(values: np.ndarray) -> np.ndarray:
    """Rank with ties sharing the lowest rank (pandas' method='min'), 0-based."""
    return np.searchsorted(np.sort(values), values, side="left")


def _top_with_noise(pool: np.ndarray, rng: np.random.Generator) -> int:
    weights = np.full(pool.size, NOISE / pool.size)
    weights[0] += 1.0
    return int(rng.choice(pool, p=weights / weights.sum()))


def _explore_or_exploit(exploit: np.ndarray, explore: np.ndarray, rng: np.random.Generator) -> int | None:
    if exploit.size == 0 and explore.size == 0:
        return None
    use_explore = exploit.size == 0 or (explore.size > 0 and rng.random() < EXPLORE)
    return _top_with_noise(explore if use_explore else exploit, rng)


def _select_seed(q: _Quadrants, rng: np.random.Generator) -> int:
    if q.ids.size <= WARMUP or rng.random() < RESTART:
        return BASELINE
    seed = _explore_or_exploit(q.pool(True, True), q.pool(False, True), rng)
    if seed is None:
        return int(rng.choice(np.append(q.ids, BASELINE)))
    return seed


def _select_verification(trial: Trial, q: _Quadrants, rng: np.random.Generator) -> tuple[int, int] | None:
    rungs = trial.landscape.rungs
    budgets = rung_budgets(list(rungs), q.ids.size, HALVING, 1)
    used = {r: sum(1 for d in q.ids if r in trial.losses[int(d)]) for r in range(len(rungs))}
    open_rung = {}
    for d in q.ids:
        r = trial.next_rung(int(d))
        if r is not None and used[r] < budgets[rungs[r]]:
            open_rung[int(d)] = r
    if not open_rung:
        return None
    exploit, explore = q.pool(True, False), q.pool(False, False)
    while True:
        pick = _explore_or_exploit(exploit, explore, rng)
        if pick is None:
            break
        if pick in open_rung:
            return pick, open_rung[pick]
        exploit, explore = exploit[exploit != pick], explore[explore != pick]
    lowest = min(open_rung.values())
    at_lowest = [d for d, r in open_rung.items() if r == lowest]
    return min(at_lowest, key=lambda d: _rating(trial, d)), lowest


def _rating(trial: Trial, design: int) -> float:
    return float(np.mean(list(trial.losses[design].values())))


def run(trial: Trial) -> RunResult:
    rng = np.random.default_rng(trial.rng.integers(2**63))
    while True:
        if trial.verification_due(VERIFY_SHARE):
            job = _select_verification(trial, _Quadrants(trial, rng), rng)
            if job is not None and trial.fits(job[1]):
                trial.verify(*job)
                continue
        if not trial.fits(0):
            break
        trial.attempt(_select_seed(_Quadrants(trial, rng), rng))
    q = _Quadrants(trial, rng)
    if q.ids.size == 0:
        return trial.result("genesys_code", BASELINE)
    confident = q.pool(True, True)
    candidates = confident if confident.size else q.ids
    return trial.result("genesys_code", int(min(candidates, key=lambda d: _rating(trial, int(d)))))
