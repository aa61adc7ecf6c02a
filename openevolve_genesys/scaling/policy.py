"""How much data each rung of a ladder trains on: the data policy a scaling law, and so a forecast, is a law at.

Two policies (``TrainConfig.tokens_per_param``): every rung trains the same number of steps (fixed data, so
tokens per parameter fall as N grows), or every rung trains a fixed number of tokens per parameter (data grows
with N, as in Chinchilla and Genesys). A forecast at a larger N means a different model under each: the same
data, or proportionally more. Plain data, so the valuation (``scaling.value``) can say which without knowing
about training.
"""

from __future__ import annotations

import math
from dataclasses import dataclass


@dataclass(frozen=True)
class DataPolicy:
    """``tokens_per_param`` > 0: every rung trains that many tokens per non-embedding parameter. 0: fixed steps,
    every rung ``steps`` steps of ``tokens_per_step`` tokens (0 when the ladder does not say: a forecast valued
    without a profile, e.g. on a synthetic ladder)."""

    tokens_per_param: float = 0.0
    steps: int = 0
    tokens_per_step: int = 0

    def __post_init__(self) -> None:
        value = self.tokens_per_param
        if isinstance(value, bool) or not isinstance(value, (int, float)) or not (math.isfinite(value) and value >= 0):
            raise ValueError(f"DataPolicy.tokens_per_param must be a finite number >= 0 (0: fixed steps), "
                             f"got {value!r}")
        for name in ("steps", "tokens_per_step"):
            count = getattr(self, name)
            if isinstance(count, bool) or not isinstance(count, int) or count < 0:
                raise ValueError(f"DataPolicy.{name} must be a whole number >= 0 (0: not stated), got {count!r}")

    @property
    def compute_scaled(self) -> bool:
        return self.tokens_per_param > 0

    def words(self) -> str:
        """The policy as the end of a forecast's sentence."""
        if self.compute_scaled:
            return (f"compute-scaled at {self.tokens_per_param:g} tokens per parameter (every rung, and the "
                    "target, trains that many tokens per non-embedding parameter: a compute-optimal-style law)")
        if self.steps:
            tokens = self.steps * self.tokens_per_step
            return (f"at fixed steps ({self.steps:,} steps, {tokens:,} tokens at every rung: a law at fixed data, "
                    "not compute-optimal scaling)")
        return "at the ladder's fixed number of training steps (a law at fixed data, not compute-optimal scaling)"


FIXED_STEPS = DataPolicy()  # fixed steps, counts not stated
