"""What the selector knows about a design: its verification at each rung and the value derived from them.

Records are plain data, rebuilt from ``history.jsonl`` on resume and saved next to OpenEvolve's checkpoint,
so everything here round-trips through JSON.
"""

from __future__ import annotations

import dataclasses
from dataclasses import dataclass, field
from typing import Any

from openevolve_genesys.outcomes import Check, Outcome
from openevolve_genesys.training.rung_result import CacheHit


@dataclass
class RungRecord:
    """One verification: the design trained at one rung of the ladder."""

    rung: str
    n_params: int
    loss: float  # final held-out loss (at the run's training seed)
    seconds: float = 0.0
    cache_hit: CacheHit | None = None  # when the result came from the fitness cache
    # The losses at seeds 0..k-1, seed 0 first and equal to ``loss``: the baseline's (genesys.baseline_seeds), a
    # design's after seed verifications (selector.seed_verification_share); empty while a rung has one seed.
    seed_losses: tuple[float, ...] = ()

    def __post_init__(self) -> None:
        self.seed_losses = tuple(float(v) for v in self.seed_losses)  # JSON gives a list
        if self.seed_losses and self.seed_losses[0] != self.loss:
            raise ValueError(f"rung {self.rung}: seed_losses must start with seed 0's loss {self.loss}, got "
                             f"{self.seed_losses[0]}; list the losses by seed, the run's own seed first")

    @property
    def losses(self) -> tuple[float, ...]:
        """The loss at every seed trained, seed 0 first."""
        return self.seed_losses or (self.loss,)

    def add_seed_loss(self, seed: int, loss: float, partners: int) -> None:
        """Fold in the loss of seed ``seed``, which must be the next one (seeds 0..seed-1 first, so position i of
        ``losses`` is always seed i) and one of the ``partners`` seeds the baseline trained at this rung: seed i
        is valued only as a pair with the baseline's seed i."""
        if seed != len(self.losses):
            raise ValueError(f"rung {self.rung}: seed {seed}'s loss arrived after seeds 0..{len(self.losses) - 1}; "
                             f"seeds fold in order, so the next one is seed {len(self.losses)}")
        if seed >= partners:
            raise ValueError(f"rung {self.rung}: seed {seed} has no baseline partner (the baseline trained "
                             f"{partners} seed(s) here); raise genesys.baseline_seeds to verify at more seeds")
        self.seed_losses = (*self.losses, float(loss))


@dataclass
class DesignRecord:
    id: str
    parent_id: str | None
    code_hash: str
    iteration: int
    operator: dict[str, Any]  # unit, operator and model that produced the design
    outcome: Outcome  # the first evaluation's
    check: Check | None = None  # when the design was not ok
    rungs: dict[str, RungRecord] = field(default_factory=dict)
    failed_rungs: dict[str, Outcome] = field(default_factory=dict)  # rung -> outcome of a failed verification
    failed_seeds: dict[str, Outcome] = field(default_factory=dict)  # rung -> outcome of a failed seed verification
    feedback: str = ""
    # Tune mode: the rate every rung of this design trains at (None: the profile's) and the sweep that chose it.
    learning_rate: float | None = None
    tune: dict[str, Any] | None = None
    # Derived by valuation.value_design; None until the design has a verified rung.
    utility: float | None = None
    confidence: float = 0.0
    forecast: dict[str, Any] | None = None

    @property
    def valid(self) -> bool:
        return self.outcome == "ok" and bool(self.rungs)

    def to_dict(self) -> dict[str, Any]:
        return dataclasses.asdict(self)

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> "DesignRecord":
        data = dict(data)
        data["rungs"] = {name: RungRecord(**r) for name, r in data.get("rungs", {}).items()}
        return cls(**data)
