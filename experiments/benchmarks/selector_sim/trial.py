"""One method's run on a landscape: the compute ledger and the two actions every method shares.

The rules are the same for all four methods, so they differ only in what they choose:

- The baseline is trained at every rung before the run, for free (every method needs it as a reference).
- A design attempt mutates a seed with ``Landscape.mutate`` and trains the child at the smallest rung:
  1 unit of compute. An invalid child costs the same and yields nothing; so does a child that is already
  in the population (the fitness cache would answer it, so it adds no information, but the attempt was
  spent).
- A verification trains a known valid design at one more rung: ``N_rung / N_r0`` units.
- A job runs only if it fits in what is left of the budget; the run ends when nothing fits.
"""

from __future__ import annotations

from dataclasses import dataclass, field

import numpy as np

from selector_sim.landscape import Landscape

BASELINE = 0


@dataclass
class RunResult:
    method: str
    budget: float
    seed: int
    reported: int  # the design the method would hand over as its best
    regret: float  # target-N true loss of ``reported`` minus the space's best (nats)
    oracle_regret: float  # the same for the best design the method generated (what a perfect pick would give)
    spent: float
    design_spent: float
    verify_spent: float
    attempts: int
    duplicates: int  # attempts whose child was already known (spent, no information)
    designs: int  # valid, distinct designs generated
    verifications: int
    rungs_of_reported: int

    def row(self) -> dict:
        return dict(self.__dict__)


@dataclass
class Trial:
    landscape: Landscape
    budget: float
    seed: int
    losses: dict[int, dict[int, float]] = field(default_factory=dict)  # design -> rung index -> observed loss
    invalid: set[int] = field(default_factory=set)
    design_spent: float = 0.0
    verify_spent: float = 0.0
    attempts: int = 0
    duplicates: int = 0
    verifications: int = 0

    def __post_init__(self) -> None:
        if self.budget <= 0:
            raise ValueError(f"the compute budget must be positive, got {self.budget}")
        # Method-specific random streams derive from this one; the landscape's own noise does not.
        self.rng = np.random.default_rng([self.seed, 0x7E1A1])
        self.losses[BASELINE] = {r: self.landscape.observe(BASELINE, r) for r in range(len(self.landscape.rungs))}

    # -- the ledger ------------------------------------------------------------------------------
    @property
    def spent(self) -> float:
        return self.design_spent + self.verify_spent

    @property
    def progress(self) -> float:
        return min(1.0, self.spent / self.budget)

    def fits(self, rung: int) -> bool:
        return self.spent + self.landscape.costs[rung] <= self.budget + 1e-9

    def verification_due(self, share: float) -> bool:
        """controller/run.py's interleaving: verify while verification has had at most ``share`` of compute."""
        total = self.spent
        return total == 0 or self.verify_spent <= share * total

    # -- the two actions -------------------------------------------------------------------------
    def attempt(self, seed_design: int, unit: int | None = None) -> tuple[int, str]:
        """Mutate ``seed_design`` (at ``unit``, else a random unit) and train the child at the smallest rung.

        Returns (child, status) with status "new", "invalid" or "duplicate"."""
        if not self.fits(0):
            raise RuntimeError("no budget left for a design attempt; check fits(0) first")
        child = self.landscape.mutate(seed_design, self.rng, unit)
        self.design_spent += self.landscape.costs[0]
        self.attempts += 1
        if child in self.losses or child in self.invalid:
            self.duplicates += 1
            return child, "duplicate"
        if not self.landscape.valid[child]:
            self.invalid.add(child)
            return child, "invalid"
        self.losses[child] = {0: self.landscape.observe(child, 0)}
        return child, "new"

    def verify(self, design: int, rung: int) -> float:
        if design not in self.losses or rung in self.losses[design]:
            raise ValueError(f"design {design} is unknown or already verified at rung {rung}")
        if not self.fits(rung):
            raise RuntimeError(f"rung {rung} does not fit in the remaining budget; check fits() first")
        self.verify_spent += self.landscape.costs[rung]
        self.verifications += 1
        loss = self.landscape.observe(design, rung)
        self.losses[design][rung] = loss
        return loss

    def next_rung(self, design: int) -> int | None:
        """The lowest rung the design has not been trained at (rungs are verified bottom-up)."""
        known = self.losses[design]
        return next((r for r in range(len(self.landscape.rungs)) if r not in known), None)

    # -- the outcome -----------------------------------------------------------------------------
    def result(self, method: str, reported: int) -> RunResult:
        generated = np.fromiter(self.losses, dtype=np.int64)
        oracle = int(generated[np.argmin(self.landscape.target_loss[generated])])
        return RunResult(method, self.budget, self.seed, reported, self.landscape.regret(reported),
                         self.landscape.regret(oracle), self.spent, self.design_spent, self.verify_spent,
                         self.attempts, self.duplicates, len(self.losses) - 1, self.verifications,
                         len(self.losses[reported]))
