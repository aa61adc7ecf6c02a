"""Ladder profiles: the model sizes a design is trained at, and how each rung is trained.

A profile is plain data. YAML overrides go through ``LadderProfile.override``, which rejects
unknown keys by name (OpenEvolve 0.4.0 drops them silently; we do not).
"""

from __future__ import annotations

import dataclasses
import difflib
import math
from dataclasses import dataclass, field
from typing import Any, Mapping

from openevolve_genesys.scaling.policy import DataPolicy
from openevolve_genesys.strict import ConfigError, check_choice, reject_unknown


@dataclass(frozen=True)
class Rung:
    name: str
    d_model: int
    n_layers: int
    n_heads: int


@dataclass(frozen=True)
class TrainConfig:
    seq_len: int = 128
    batch_size: int = 64
    steps: int = 100_000  # optimizer steps per rung at fixed steps (ignored when tokens_per_param > 0)
    # >0: each rung trains ceil(tokens_per_param x N / (batch_size x seq_len)) steps, N its baseline's non-embedding
    # parameters, and warmup_steps is capped at a tenth of a rung's steps; 0: every rung trains `steps`
    tokens_per_param: float = 0.0
    learning_rate: float = 1e-3
    warmup_steps: int = 1000
    schedule: str = "constant"  # after warmup: "constant" or "cosine"
    min_lr_ratio: float = 0.1  # cosine floor, as a fraction of learning_rate
    # PyTorch's AdamW defaults, which the PyTorch prototype used.
    weight_decay: float = 0.01
    beta1: float = 0.9
    beta2: float = 0.999
    grad_clip: float = 1.0
    dropout: float = 0.1
    eval_interval: int = 5000
    eval_tokens: int = 262_144
    chunk_steps: int = 50  # optimizer steps per jitted dispatch (lax.scan)
    loss_chunk_tokens: int = 0  # >0: compute the tied head + cross-entropy in token chunks of this size
    compute_dtype: str = "auto"  # "auto": float32 on CPU, bfloat16 on GPU/TPU
    seed: int = 0
    # >0: a rung saves its training state every this many steps and a rung whose worker died resumes from its
    # last save (training/checkpoint.py); 0: no saves. A multiple of eval_interval changes no number recorded
    checkpoint_steps: int = 0

    def __post_init__(self) -> None:
        check_choice(self.schedule, ("constant", "cosine"), "train.schedule")
        check_choice(self.compute_dtype, ("auto", "float32", "bfloat16"), "train.compute_dtype")
        for name in ("seq_len", "batch_size", "steps", "eval_interval", "eval_tokens", "chunk_steps"):
            if getattr(self, name) <= 0:
                raise ValueError(f"train.{name} must be positive, got {getattr(self, name)}")
        ratio = self.tokens_per_param
        if isinstance(ratio, bool) or not isinstance(ratio, (int, float)) or not (math.isfinite(ratio) and ratio >= 0):
            raise ValueError(f"train.tokens_per_param must be a finite number >= 0 (0: every rung trains `steps`; "
                             f"e.g. 20 as in Chinchilla), got {ratio!r}")
        # 20 from a YAML and 20.0 from code must hash alike in the fitness cache key.
        object.__setattr__(self, "tokens_per_param", float(ratio))
        steps = self.checkpoint_steps
        if isinstance(steps, bool) or not isinstance(steps, int) or steps < 0:
            raise ValueError(f"train.checkpoint_steps must be a whole number >= 0 (0: no checkpoints), got {steps!r}")

    def identity(self) -> dict[str, Any]:
        """The fields a rung's result depends on, by name: what the fitness cache hashes. How often the state is
        saved is left out, so results trained with and without checkpoints answer for each other (and results
        cached before the setting existed keep their keys): the trained model and its eval losses are the same,
        only a curve's train_loss (its last chunk's mean) averages fewer steps where a save splits a chunk.
        ``tokens_per_param`` is left out at 0, so results cached before the setting existed keep their keys; a
        rung's steps are in the identity only once resolved (``rung_train``)."""
        return {f.name: getattr(self, f.name) for f in dataclasses.fields(self)
                if f.name not in _RUN_ONLY_FIELDS and not (f.name == "tokens_per_param" and not self.tokens_per_param)}


# TrainConfig fields that decide how a rung is run, never what it computes.
_RUN_ONLY_FIELDS = frozenset({"checkpoint_steps"})

# At tokens per parameter a small rung may train fewer steps than the profile's warmup: warmup is capped at this
# share of a rung's steps, so every rung trains most of its steps past warmup (smoke warms up 10% of its steps).
MAX_WARMUP_FRACTION = 0.1


def rung_n_params(rung: Rung) -> int:
    """The baseline model's non-embedding parameter count N at ``rung``, as ``training.model.count_parameters``
    counts it, without building the model: per block two LayerNorms (4d), the fused QKV and output projections
    (4d^2 + 4d) and the 4x FFN (8d^2 + 5d), then the final LayerNorm (2d). The vocabulary does not enter: the
    head is tied to the embedding and positions are not parameters."""
    d = rung.d_model
    return rung.n_layers * (12 * d * d + 13 * d) + 2 * d


def rung_train(train: TrainConfig, rung: Rung) -> TrainConfig:
    """The TrainConfig ``rung`` trains with: ``train`` itself at fixed steps; at ``tokens_per_param`` > 0 its steps
    are ceil(tokens_per_param x N / tokens per step) and its warmup at most MAX_WARMUP_FRACTION of them.

    N is the baseline's count at the rung (``rung_n_params``), not the design's own: every design then trains the
    same steps on the same batches as the baseline it is paired with, so their gap compares architectures at equal
    data (designs stay within ``checks.param_tolerance`` of the baseline's N), and the steps are known before any
    evolved code runs. The one place a rung's step count is decided: the fitness cache key, the checkpoints, the
    curves and the history all see what it returns. Resolving twice gives the same config."""
    if not train.tokens_per_param:
        return train
    steps = math.ceil(train.tokens_per_param * rung_n_params(rung) / (train.batch_size * train.seq_len))
    warmup = min(train.warmup_steps, math.floor(MAX_WARMUP_FRACTION * steps))
    return dataclasses.replace(train, steps=steps, warmup_steps=warmup)


@dataclass(frozen=True)
class LadderProfile:
    name: str
    vocab_size: int
    rungs: tuple[Rung, ...]
    train: TrainConfig = field(default_factory=TrainConfig)

    def rung(self, name: str) -> Rung:
        for rung in self.rungs:
            if rung.name == name:
                return rung
        raise KeyError(f"profile {self.name!r} has no rung {name!r}; rungs: {[r.name for r in self.rungs]}")

    def rung_train(self, name: str) -> TrainConfig:
        """The profile's TrainConfig as rung ``name`` trains it (``rung_train``)."""
        return rung_train(self.train, self.rung(name))

    def data_policy(self) -> DataPolicy:
        """How much data the rungs train on, as the valuation names it in every forecast."""
        train = self.train
        if train.tokens_per_param:
            return DataPolicy(tokens_per_param=float(train.tokens_per_param))
        return DataPolicy(steps=int(train.steps), tokens_per_step=int(train.batch_size * train.seq_len))

    def depths(self) -> dict[str, int]:
        """The layers of every rung: the valuation regresses a gap on depth beside N."""
        return {r.name: r.n_layers for r in self.rungs}

    def max_train_tokens(self) -> int:
        """The training tokens of the longest rung (what the corpus must hold for no batch to repeat)."""
        return max(rung_train(self.train, r).steps for r in self.rungs) * self.train.batch_size * self.train.seq_len

    def override(self, overrides: Mapping[str, Any], where: str = "profile") -> "LadderProfile":
        """A copy with YAML overrides applied: ``vocab_size``, ``rungs`` (list of dicts), ``train`` (dict)."""
        allowed = {"vocab_size", "rungs", "train"}
        reject_unknown(overrides, allowed, where)
        changes: dict[str, Any] = {}
        if "vocab_size" in overrides:
            changes["vocab_size"] = int(overrides["vocab_size"])
        if "rungs" in overrides:
            changes["rungs"] = tuple(_rung_from(r, i, where) for i, r in enumerate(overrides["rungs"]))
        if "train" in overrides:
            train = overrides["train"]
            reject_unknown(train, {f.name for f in dataclasses.fields(TrainConfig)}, f"{where}.train")
            try:
                changes["train"] = dataclasses.replace(self.train, **train)
            except ValueError as err:  # its messages start with "train.<key>"
                raise ConfigError(f"{where}.{err}") from None
        return dataclasses.replace(self, **changes)


def _rung_from(spec: Mapping[str, Any], index: int, where: str = "profile") -> Rung:
    fields = [f.name for f in dataclasses.fields(Rung)]
    reject_unknown(spec, set(fields), f"{where}.rungs[{index}]")
    missing = [f for f in fields if f != "name" and f not in spec]
    if missing:
        raise ValueError(f"{where}.rungs[{index}] is missing {missing}")
    return Rung(name=str(spec.get("name", f"r{index}")), d_model=int(spec["d_model"]),
                n_layers=int(spec["n_layers"]), n_heads=int(spec["n_heads"]))


def _ladder(dims: list[tuple[int, int, int]]) -> tuple[Rung, ...]:
    return tuple(Rung(f"r{i}", d, layers, heads) for i, (d, layers, heads) in enumerate(dims))


PROFILES: dict[str, LadderProfile] = {
    # The PyTorch prototype's exact ladder and training recipe.
    "seed": LadderProfile(
        name="seed",
        vocab_size=16384,
        rungs=_ladder([(96, 4, 4), (128, 4, 4), (128, 6, 4), (192, 6, 6)]),
        # The fused chunked head (loss.py): 256-1024-token chunks were equally fast on CPU and faster than the
        # unchunked head (experiments/benchmarks/README.md, "Training speed").
        # A rung is 100k steps, hours on one GPU: a lost worker resumes from the last 5000-step save.
        train=TrainConfig(loss_chunk_tokens=512, checkpoint_steps=5000),
    ),
    # The same shape of ladder scaled down so four rungs train in about a minute on 2 CPU cores.
    "smoke": LadderProfile(
        name="smoke",
        vocab_size=2048,
        rungs=_ladder([(32, 2, 2), (48, 2, 2), (64, 3, 4), (96, 3, 4)]),
        train=TrainConfig(seq_len=64, batch_size=16, steps=300, learning_rate=3e-3, warmup_steps=30,
                          schedule="cosine", eval_interval=100, eval_tokens=16_384, chunk_steps=50),
    ),
    # Genesys (Cheng et al. 2025, arXiv 2506.20249): 14M/31M/70M/125M/350M, for clusters. Each rung trains 20 tokens
    # per parameter, as Genesys and Chinchilla do (steps=20000 is only what tokens_per_param: 0 would train).
    "genesys": LadderProfile(
        name="genesys",
        vocab_size=50257,  # GPT-2 BPE size; the issue names rungs by the Genesys paper, README gives our N
        rungs=(
            Rung("14M", 128, 6, 2), Rung("31M", 256, 6, 4), Rung("70M", 512, 6, 8),
            Rung("125M", 768, 12, 12), Rung("350M", 1024, 24, 16),
        ),
        train=TrainConfig(seq_len=512, batch_size=64, steps=20_000, tokens_per_param=20, learning_rate=6e-4,
                          warmup_steps=1000, schedule="cosine", eval_interval=1000, eval_tokens=1_048_576,
                          chunk_steps=20, checkpoint_steps=2000),
    ),
}


def get_profile(name: str, overrides: Mapping[str, Any] | None = None) -> LadderProfile:
    if name not in PROFILES:
        near = difflib.get_close_matches(name, PROFILES, n=1)
        hint = f" (did you mean {near[0]!r}?)" if near else ""
        raise KeyError(f"unknown ladder profile {name!r}{hint}; profiles: {sorted(PROFILES)}")
    profile = PROFILES[name]
    return profile.override(overrides) if overrides else profile
