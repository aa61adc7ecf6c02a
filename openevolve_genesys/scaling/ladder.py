"""Validated measurements of one ladder: rung name -> (N, losses by seed), and the pairs of a design with its baseline.

Seed i of a design and seed i of the baseline share data order and initialisation, so ``baseline - design`` at
the same rung and seed cancels what the two runs share; that difference (nats, positive: the design is better)
is the observation every gap model here is fitted to.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from typing import Mapping, Sequence

import numpy as np

Ladder = Mapping[str, tuple[float, Sequence[float]]]  # rung name -> (n_params, [loss of seed 0, seed 1, ...])


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

    @property
    def top_log_n(self) -> float:
        return float(self.log_n.max())

    @property
    def sizes(self) -> int:
        return int(np.unique(self.log_n).size)


def pair(design: list[Rung], baseline: list[Rung], what: str = "design") -> Pairs:
    """Pair a design's rungs and seeds with the baseline's; a rung or seed the baseline lacks is an error."""
    by_name = {r.name: r for r in baseline}
    log_n, gap = [], []
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
    return Pairs(np.array(log_n), np.array(gap), tuple(r.name for r in design))


def residual_ss(pairs: Pairs) -> tuple[float, int]:
    """Least-squares residual sum of squares of ``gap = a + b ln N`` and its degrees of freedom (rows - rank):
    replicate seeds at one rung give dof without a second size."""
    design = np.stack([np.ones_like(pairs.log_n), pairs.log_n - pairs.log_n.mean()], axis=1)
    if pairs.sizes < 2:
        design = design[:, :1]
    coef = np.linalg.lstsq(design, pairs.gap, rcond=None)[0]
    resid = pairs.gap - design @ coef
    return float(resid @ resid), int(pairs.gap.size - design.shape[1])


def seed_spread(baseline: list[Rung]) -> tuple[float, int]:
    """Within-rung sum of squares of the baseline's seeds (nats^2) and its dof: the noise of a single run."""
    ss, dof = 0.0, 0
    for rung in baseline:
        values = np.array(rung.losses)
        ss += float(((values - values.mean()) ** 2).sum())
        dof += values.size - 1
    return ss, dof
