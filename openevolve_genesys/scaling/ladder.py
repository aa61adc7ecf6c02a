"""Validated measurements of one ladder: rung name -> (N, losses by seed), and the pairs of a design with its baseline.

Seed i of a design and seed i of the baseline share data order and initialisation, so ``baseline - design`` at
the same rung and seed cancels what the two runs share; that difference (nats, positive: the design is better)
is the observation every gap model here is fitted to.

A pair also carries the depth (layers) of its rung when the ladder's shapes are known: a ladder that grows width
and depth in alternate steps (smoke: width, then depth and heads, then width) moves a design's gap differently
in each kind of step, so the gap models regress on ln N and ln depth together.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from typing import Mapping, Sequence

import numpy as np

Ladder = Mapping[str, tuple[float, Sequence[float]]]  # rung name -> (n_params, [loss of seed 0, seed 1, ...])
Depths = Mapping[str, float]  # rung name -> layers of the model at that rung


@dataclass(frozen=True)
class Rung:
    name: str
    n_params: float
    losses: tuple[float, ...]  # by seed


def parse_ladder(ladder: Ladder, what: str) -> list[Rung]:
    """Rungs sorted by N; raises a ValueError naming the rung and the fix for anything unusable."""
    if not isinstance(ladder, Mapping) or not ladder:
        raise ValueError(f"the {what} has no rung: pass {{rung name: (n_params, [loss of seed 0, ...])}} with one "
                         "or more verified rungs")
    rungs = []
    for name, entry in ladder.items():
        try:
            n_params, losses = entry
            losses = tuple(float(v) for v in losses)
            n_params = float(n_params)
        except (TypeError, ValueError):
            raise ValueError(f"{what} rung {name!r} must be (n_params, [loss of seed 0, ...]); got {entry!r}") from None
        if not (math.isfinite(n_params) and n_params > 0):
            raise ValueError(f"{what} rung {name!r} has n_params {n_params}: it must be a finite positive size")
        if not losses:
            raise ValueError(f"{what} rung {name!r} has no loss: give the loss of seed 0 at least")
        bad = [v for v in losses if not (math.isfinite(v) and v > 0)]
        if bad:
            raise ValueError(f"{what} rung {name!r} has a non-positive or non-finite loss {bad[0]}: drop diverged "
                             "or unfinished runs before valuing")
        rungs.append(Rung(str(name), n_params, losses))
    return sorted(rungs, key=lambda r: r.n_params)


@dataclass(frozen=True)
class Pairs:
    """Paired gaps of a design: one row per (rung, seed) the design and the baseline both have."""

    log_n: np.ndarray  # ln N of the baseline at the pair's rung
    gap: np.ndarray  # baseline loss - design loss (nats)
    rungs: tuple[str, ...]  # the design's rungs, by N
    log_depth: np.ndarray | None = None  # ln layers at the pair's rung; None: the ladder's shapes are not known

    @property
    def top_log_n(self) -> float:
        return float(self.log_n.max())

    @property
    def top_log_depth(self) -> float:
        return 0.0 if self.log_depth is None else float(self.log_depth[np.argmax(self.log_n)])

    def covariates(self) -> np.ndarray:
        """[pairs, 3]: 1, ln N and ln depth, the last two measured from the top rung (depth 0 when unknown)."""
        depth = np.zeros_like(self.log_n) if self.log_depth is None else self.log_depth - self.top_log_depth
        return np.stack([np.ones_like(self.log_n), self.log_n - self.top_log_n, depth], axis=1)

    @property
    def sizes(self) -> int:
        return int(np.unique(self.log_n).size)


def pair(design: list[Rung], baseline: list[Rung], what: str = "design", depths: Depths | None = None) -> Pairs:
    """Pair a design's rungs and seeds with the baseline's; a rung or seed the baseline lacks is an error, and so is
    a rung ``depths`` (when given) does not name."""
    by_name = {r.name: r for r in baseline}
    if depths is not None:
        missing = [r.name for r in design if r.name not in depths]
        bad = {k: v for k, v in depths.items() if not (isinstance(v, (int, float)) and math.isfinite(v) and v > 0)}
        if missing or bad:
            raise ValueError(f"depths must give the layers (a positive number) of every rung: missing {missing}, "
                             f"invalid {bad}; pass {{rung name: n_layers}} for all rungs, or none")
    log_n, gap, log_depth = [], [], []
    for rung in design:
        base = by_name.get(rung.name)
        if base is None:
            raise ValueError(f"the baseline has no rung {rung.name!r} that the {what} has: evaluate the baseline "
                             f"at every rung (it has {sorted(by_name)})")
        if len(rung.losses) > len(base.losses):
            raise ValueError(f"mismatched seeds at rung {rung.name!r}: the {what} has {len(rung.losses)} seed(s), "
                             f"the baseline {len(base.losses)}; seed i pairs with the baseline's seed i, so train "
                             "the baseline at as many seeds")
        for seed, loss in enumerate(rung.losses):
            log_n.append(math.log(base.n_params))
            gap.append(base.losses[seed] - loss)
            if depths is not None:
                log_depth.append(math.log(float(depths[rung.name])))
    return Pairs(np.array(log_n), np.array(gap), tuple(r.name for r in design),
                 np.array(log_depth) if depths is not None else None)


def least_squares(pairs: Pairs) -> tuple[np.ndarray, np.ndarray, float, int]:
    """Least squares of ``gap = a + b ln N + c ln depth`` on the columns the pairs identify (a depth column that is
    constant or moves with ln N is left out, its effect then part of b): (coefficients [3], their unscaled
    variances (X'X)^-1 diagonal [3], with NaN for a column left out; residual SS; residual dof)."""
    full = pairs.covariates()
    keep = [0]
    for column in (1, 2):
        trial = keep + [column]
        if np.linalg.matrix_rank(full[:, trial], tol=1e-9) == len(trial):
            keep = trial
    design = full[:, keep]
    coef = np.full(3, np.nan)
    unscaled = np.full(3, np.nan)
    fitted = np.linalg.lstsq(design, pairs.gap, rcond=None)[0]
    coef[keep] = fitted
    unscaled[keep] = np.diag(np.linalg.inv(design.T @ design))
    resid = pairs.gap - design @ fitted
    return coef, unscaled, float(resid @ resid), int(pairs.gap.size - len(keep))


def residual_ss(pairs: Pairs) -> tuple[float, int]:
    """Least-squares residual sum of squares of the gap's line (``least_squares``) and its degrees of freedom
    (rows - rank): replicate seeds at one rung give dof without a second size."""
    _, _, ss, dof = least_squares(pairs)
    return ss, dof


def seed_spread(baseline: list[Rung]) -> tuple[float, int]:
    """Within-rung sum of squares of the baseline's seeds (nats^2) and its dof: the noise of a single run."""
    ss, dof = 0.0, 0
    for rung in baseline:
        values = np.array(rung.losses)
        ss += float(((values - values.mean()) ** 2).sum())
        dof += values.size - 1
    return ss, dof
