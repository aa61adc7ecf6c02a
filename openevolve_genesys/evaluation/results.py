"""What an evaluation returns: its outcome, metrics and rung results, and the learning-rate sweep run with it.

The outcome vocabulary (Outcome, Reason, Check) is openevolve_genesys/outcomes.py's; a rung result is
training/rung_result.py's RungResult (re-exported here).

Plain data shared by the evaluator, tune mode, the engines and the controller, kept apart from the code that
produces it so that each of those imports the results without importing the others."""

from __future__ import annotations

from dataclasses import asdict, dataclass, field
from typing import Any, Mapping

from openevolve_genesys.outcomes import Check, Outcome, Reason
from openevolve_genesys.training.rung_result import CacheHit, RungResult


@dataclass(frozen=True)
class TuneTrial:
    learning_rate: float
    loss: float | None  # final eval loss at the tune rung; None when the trial failed
    outcome: Outcome  # the trial's evaluation's
    seconds: float
    cache_hit: CacheHit | None  # when answered from the fitness cache
    steps: int = 0
    check: Check | None = None  # when the outcome is not ok
    # Trials trained side by side with it in one batched program, itself included (1: alone); its seconds are
    # then an equal share of the batch's.
    batch: int = 1

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)


@dataclass(frozen=True)
class TuneResult:
    best_learning_rate: float
    trials: tuple[TuneTrial, ...]
    seconds: float
    base_learning_rate: float = 0.0  # the profile's rate the grid multiplies
    tuned: bool = True  # False: best_learning_rate is the profile's rate because no trial could decide
    note: str = ""
    target: Mapping[str, Any] = field(default_factory=dict)  # the cheap target: rung and train changes

    @property
    def trained(self) -> int:
        """Trials that ran in the sandbox (what the tune budget is charged)."""
        return sum(t.cache_hit is None for t in self.trials)

    def to_dict(self) -> dict[str, Any]:
        return {"best_learning_rate": self.best_learning_rate, "base_learning_rate": self.base_learning_rate,
                "tuned": self.tuned, "note": self.note, "seconds": self.seconds,
                "trained": self.trained, "target": dict(self.target), "trials": [t.to_dict() for t in self.trials]}

    @classmethod
    def from_dict(cls, raw: Mapping[str, Any]) -> "TuneResult":
        """The inverse of ``to_dict``, for a run resumed from its history."""
        trials = tuple(TuneTrial(**t) for t in raw.get("trials", ()))
        return cls(raw["best_learning_rate"], trials, raw.get("seconds", 0.0), raw.get("base_learning_rate", 0.0),
                   raw.get("tuned", True), raw.get("note", ""), dict(raw.get("target", {})))


@dataclass
class Evaluation:
    outcome: Outcome
    metrics: dict[str, Any]  # what OpenEvolve and a history line see; a failure's ``check`` and ``reason`` too
    artifacts: dict[str, Any] = field(default_factory=dict)
    rungs: dict[str, RungResult] = field(default_factory=dict)  # by rung name (JSON: rung_result.rungs_to_dict)
    tune: TuneResult | None = None  # the learning-rate sweep run in the same job (``evaluate(tune=...)``)
    timing: dict[str, float] = field(default_factory=dict)  # where the job's seconds went (``job.Timing``)
    seeds: list["Evaluation"] = field(default_factory=list)  # ``evaluate(seeds=...)``: one per seed, of one job
    reason: Reason | None = None  # the sandbox's finer cause; None when no job ran (a cache answer, a fake)
