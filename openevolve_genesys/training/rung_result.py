"""What training one rung measured, as a typed value that needs no JAX to read.

The training loop produces it (training/loop.py re-exports it); the evaluator, the controller, the report and
validation read it. It crosses process boundaries only as JSON: the sandbox pipe, the fitness cache,
history.jsonl and summary.json hold ``to_dict()`` and are read back with ``from_dict``, which accepts records
written before a field existed, so older runs still resume and report.
"""

from __future__ import annotations

import dataclasses
import math
from dataclasses import dataclass, field
from typing import Any, Literal, Mapping, get_args

# Where a rung's result came from when it was not trained: the code hash (the parent answered without a job)
# or the functional hash (the child built the mixer and found its function cached). None: trained.
CacheHit = Literal["code", "functional"]
CACHE_HITS: tuple[str, ...] = get_args(CacheHit)

_REQUIRED = ("n_params", "final_eval_loss")


@dataclass(frozen=True)
class RungResult:
    rung: str
    d_model: int
    n_layers: int
    n_heads: int
    n_params: int  # non-embedding (Kaplan)
    total_params: int
    steps: int
    final_eval_loss: float
    best_eval_loss: float
    curve: list[dict[str, float]] = field(default_factory=list)  # {"step", "train_loss", "eval_loss"}
    tokens_per_second: float = 0.0
    compile_seconds: float = 0.0
    train_seconds: float = 0.0  # the chunks' and evaluations' wall time, compiles excluded
    eval_seconds: float = 0.0  # of train_seconds, the evaluations'
    # The process's CPU seconds (all threads) over the same chunks and evaluations, compiles excluded: unlike wall
    # time it hardly changes when other processes share the cores, so the step-time check compares it on a CPU.
    cpu_seconds: float = 0.0
    compiles: int = 0  # programs this rung compiled (0 when a trainer of its shape compiled them before)
    diverged: bool = False
    # Not measurements: how this evaluation got the result, and (a baseline's) the loss at every seed.
    cache_hit: CacheHit | None = None
    seed_losses: tuple[float, ...] = ()  # seed 0 first; empty: only this result's seed was trained

    def __post_init__(self) -> None:
        if self.cache_hit is not None and self.cache_hit not in CACHE_HITS:
            raise ValueError(f"RungResult.cache_hit must be one of {CACHE_HITS} or None, got {self.cache_hit!r}")

    @property
    def losses(self) -> tuple[float, ...]:
        """The held-out loss at every seed trained, seed 0 first: ``seed_losses``, else this result's own."""
        return self.seed_losses or (self.final_eval_loss,)

    def measurement(self) -> dict[str, Any]:
        """The measured fields only: what the fitness cache stores (where a result came from is not cached)."""
        data = self.to_dict()
        data.pop("cache_hit")
        data.pop("seed_losses", None)
        return data

    def to_dict(self) -> dict[str, Any]:
        """The JSON shape of a history line's rung: the measurement, ``cache_hit``, and ``seed_losses`` if any."""
        data = dataclasses.asdict(self)
        if self.seed_losses:
            data["seed_losses"] = list(self.seed_losses)
        else:
            del data["seed_losses"]
        return data

    @classmethod
    def from_dict(cls, raw: Mapping[str, Any], name: str | None = None) -> "RungResult":
        """The inverse of ``to_dict`` (and of ``measurement``). ``name`` is the rung's key in its record, used
        when ``raw`` names none; fields a record predates take their defaults, keys it has that this class
        lacks are ignored, and a loss JSON wrote as null (it has no NaN) reads back as NaN."""
        missing = [k for k in _REQUIRED if k not in raw]
        if missing or not (raw.get("rung") or name):
            what = missing or ["rung"]
            raise ValueError(f"a rung result needs {what}, got keys {sorted(raw)}: pass a RungResult.to_dict() "
                             "record (a history line's rungs, a fitness cache entry)")
        known = {f.name for f in dataclasses.fields(cls)}
        data = {k: v for k, v in raw.items() if k in known}
        final = _loss(raw["final_eval_loss"])
        data.update(rung=raw.get("rung") or name, final_eval_loss=final,
                    best_eval_loss=_loss(raw.get("best_eval_loss", final)),
                    seed_losses=tuple(_loss(v) for v in raw.get("seed_losses") or ()))
        for key in ("d_model", "n_layers", "n_heads", "total_params", "steps"):
            data.setdefault(key, 0)
        data["curve"] = [dict(point) for point in raw.get("curve") or ()]
        return cls(**data)


def rungs_to_dict(rungs: Mapping[str, RungResult]) -> dict[str, dict[str, Any]]:
    """A rung name -> RungResult mapping in its JSON shape (a history line's ``rungs``)."""
    return {name: result.to_dict() for name, result in rungs.items()}


def rungs_from_dict(raw: Mapping[str, Mapping[str, Any]] | None) -> dict[str, RungResult]:
    """The inverse of ``rungs_to_dict``; None (a line without rungs) is no rungs."""
    return {name: RungResult.from_dict(result, name) for name, result in (raw or {}).items()}


def _loss(value: Any) -> float:
    return math.nan if value is None else float(value)
