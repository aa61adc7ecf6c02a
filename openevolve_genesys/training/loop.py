"""Train one rung: split the NNX model once, then run jitted chunks of K optimizer steps.

Read it top to bottom: optimizer -> loss -> one step -> a chunk of steps (lax.scan, donated
buffers, compiled ahead of time so compile seconds are measured apart) -> evaluation -> the loop
over chunks that records the learning curve and reports progress once per chunk.
"""

from __future__ import annotations

import dataclasses
import math
import time
from dataclasses import dataclass, field
from functools import partial
from typing import Any, Callable

import jax
import jax.numpy as jnp
import numpy as np
import optax
from flax import nnx

from openevolve_genesys.training.loss import tied_cross_entropy
from openevolve_genesys.training.model import CausalSelfAttention, LanguageModel, MixerFactory, build_model, count_parameters
from openevolve_genesys.training.profiles import Rung, TrainConfig


@dataclass(frozen=True)
class ChunkProgress:
    """What the loop reports after every chunk; the sandbox turns it into a heartbeat."""

    rung: str
    step: int
    total_steps: int
    train_loss: float
    eval_loss: float | None
    seconds: float


@dataclass
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
    compiles: int = 0  # programs this rung compiled (0 when a trainer of its shape compiled them before)
    diverged: bool = False

    def to_dict(self) -> dict[str, Any]:
        return dataclasses.asdict(self)


def compute_dtype(train: TrainConfig) -> jnp.dtype:
    if train.compute_dtype == "auto":
        return jnp.float32 if jax.default_backend() == "cpu" else jnp.bfloat16
    return jnp.dtype(train.compute_dtype)


@dataclass(frozen=True)
class Schedule:
    """The learning-rate schedule's numbers, passed to the compiled chunk at run time: one compile serves
    every rate and length of a sweep (a rate baked in as a constant would make each trial its own program)."""

    learning_rate: float
    warmup_steps: int
    steps: int

    @classmethod
    def of(cls, train: TrainConfig) -> "Schedule":
        return cls(train.learning_rate, train.warmup_steps, train.steps)

    def arrays(self) -> tuple[jax.Array, jax.Array, jax.Array]:
        return (jnp.asarray(self.learning_rate, jnp.float32), jnp.asarray(self.warmup_steps, jnp.int32),
                jnp.asarray(self.steps, jnp.int32))


def schedule_value(step: jax.Array, learning_rate: jax.Array, warmup_steps: jax.Array, steps: jax.Array, *,
                   cosine: bool, min_lr_ratio: float) -> jax.Array:
    """The rate at ``step``: linear warmup from 0, then constant or cosine decay to ``min_lr_ratio`` x the rate
    (optax's linear_schedule joined with cosine_decay_schedule, written with traced bounds)."""
    step = jnp.asarray(step, jnp.float32)
    warmup = jnp.asarray(warmup_steps, jnp.float32)
    rising = learning_rate * jnp.minimum(step, warmup) / jnp.maximum(warmup, 1.0)
    if cosine:
        decay_steps = jnp.maximum(jnp.asarray(steps, jnp.float32) - warmup, 1.0)
        done = jnp.clip(step - warmup, 0.0, decay_steps) / decay_steps
        after = learning_rate * ((1.0 - min_lr_ratio) * 0.5 * (1.0 + jnp.cos(jnp.pi * done)) + min_lr_ratio)
    else:
        after = learning_rate * jnp.ones_like(step)
    return jnp.where(step < warmup, rising, after)


def learning_rate_schedule(train: TrainConfig) -> Callable[[Any], jax.Array]:
    """``train``'s schedule as a function of the step."""
    arrays = Schedule.of(train).arrays()
    return lambda step: schedule_value(step, *arrays, cosine=train.schedule == "cosine",
                                       min_lr_ratio=train.min_lr_ratio)


def make_optimizer(train: TrainConfig) -> optax.GradientTransformation:
    """AdamW at unit rate; the chunk multiplies its updates by the scheduled rate, a run-time argument.
    (AdamW's update is -rate x (adam direction + weight_decay x params), so scaling after it is exact.)"""
    return optax.chain(
        optax.clip_by_global_norm(train.grad_clip),
        optax.adamw(1.0, b1=train.beta1, b2=train.beta2, eps=1e-8, weight_decay=train.weight_decay),
    )


# The TrainConfig fields a compiled chunk does not depend on: they are run-time arguments or host-side.
_RUNTIME_FIELDS = frozenset({"learning_rate", "warmup_steps", "steps", "eval_interval", "eval_tokens", "seed"})


def program_key(train: TrainConfig) -> tuple[Any, ...]:
    """What a compiled chunk is specialised to, besides the model and the chunk length."""
    return tuple((f.name, getattr(train, f.name)) for f in dataclasses.fields(train) if f.name not in _RUNTIME_FIELDS)


class Programs:
    """Compiled chunk and evaluation programs shared by every trainer of one shape in a process: a sweep's
    trials and the rung trained after it compile once. ``compiles`` counts the XLA compiles requested."""

    def __init__(self) -> None:
        self._compiled: dict[tuple[Any, ...], Any] = {}
        self.compiles = 0
        self.seconds = 0.0

    def get(self, key: tuple[Any, ...], lower: Callable[[], Any]) -> tuple[Any, float]:
        """The program under ``key``, compiled from ``lower()`` on first use; also the seconds that took."""
        if key in self._compiled:
            return self._compiled[key], 0.0
        start = time.perf_counter()
        self._compiled[key] = lower().compile()
        seconds = time.perf_counter() - start
        self.compiles += 1
        self.seconds += seconds
        return self._compiled[key], seconds


def lm_loss(model: LanguageModel, tokens: jax.Array, *, train: TrainConfig, key: jax.Array | None) -> jax.Array:
    """Mean next-token NLL of a [B, T+1] token window; dropout is on when ``key`` is given."""
    hidden = model.hidden(tokens[:, :-1], deterministic=key is None, rngs=key)
    embedding = model.embed.embedding[...].astype(hidden.dtype)
    return tied_cross_entropy(hidden, embedding, tokens[:, 1:], chunk_tokens=train.loss_chunk_tokens)


class RungTrainer:
    """Owns the split model state of one rung; its compiled chunk programs come from ``programs``, keyed by
    everything they are specialised to, so a trainer of the same shape (another rate, seed or length) reuses
    them. ``shape`` names the model's shape and mixer for that key (default: this trainer only)."""

    def __init__(self, model: LanguageModel, train: TrainConfig, programs: Programs | None = None,
                 shape: tuple[Any, ...] | None = None):
        self.train = train
        self.graphdef, self.params, self.rest = nnx.split(model, nnx.Param, ...)
        self.optimizer = make_optimizer(train)
        self.opt_state = self.optimizer.init(self.params)
        self.dtype = compute_dtype(train)
        self.key = jax.random.key(train.seed)
        self.schedule = Schedule.of(train).arrays()
        self.programs = programs if programs is not None else Programs()
        self.shape = (shape if shape is not None else ("trainer", id(self))) + program_key(train)
        self.compile_seconds = 0.0

    def _merged(self, params: Any, rest: Any) -> LanguageModel:
        # Master weights stay float32; the forward pass runs in the compute dtype.
        params = jax.tree.map(lambda p: p.astype(self.dtype), params)
        return nnx.merge(self.graphdef, params, rest)

    def _step(self, rest: Any, key: jax.Array, schedule: tuple[jax.Array, ...], carry: tuple[Any, Any],
              xs: tuple[jax.Array, jax.Array]):
        params, opt_state = carry
        tokens, step = xs

        def loss_fn(p):
            return lm_loss(self._merged(p, rest), tokens, train=self.train, key=jax.random.fold_in(key, step))

        loss, grads = jax.value_and_grad(loss_fn)(params)
        updates, opt_state = self.optimizer.update(grads, opt_state, params)
        rate = schedule_value(step, *schedule, cosine=self.train.schedule == "cosine",
                              min_lr_ratio=self.train.min_lr_ratio)
        updates = jax.tree.map(lambda u: (rate * u).astype(u.dtype), updates)
        return (optax.apply_updates(params, updates), opt_state), loss

    def _chunk(self, params: Any, opt_state: Any, rest: Any, tokens: jax.Array, first_step: jax.Array,
               key: jax.Array, schedule: tuple[jax.Array, ...]):
        steps = first_step + jnp.arange(tokens.shape[0])
        (params, opt_state), losses = jax.lax.scan(partial(self._step, rest, key, schedule), (params, opt_state),
                                                   (tokens, steps))
        return params, opt_state, losses

    def _eval_loss(self, params: Any, rest: Any, batches: jax.Array) -> jax.Array:
        model = self._merged(params, rest)
        return jnp.mean(jax.lax.map(lambda b: lm_loss(model, b, train=self.train, key=None), batches))

    def run_chunk(self, tokens: np.ndarray, first_step: int) -> jax.Array:
        """Dispatch K = len(tokens) steps; returns the per-step losses without waiting for them."""
        tokens = jnp.asarray(tokens)
        first = jnp.asarray(first_step, jnp.int32)
        args = (self.params, self.opt_state, self.rest, tokens, first, self.key, self.schedule)
        program, seconds = self.programs.get(
            self.shape + ("chunk", tokens.shape),
            lambda: jax.jit(self._chunk, donate_argnums=(0, 1)).lower(*args))
        self.compile_seconds += seconds
        self.params, self.opt_state, losses = program(*args)
        return losses

    def eval_loss(self, batches: np.ndarray) -> float:
        batches = jnp.asarray(batches)
        program, seconds = self.programs.get(self.shape + ("eval", batches.shape),
                                             lambda: jax.jit(self._eval_loss).lower(self.params, self.rest, batches))
        self.compile_seconds += seconds
        return float(program(self.params, self.rest, batches))

    def model(self) -> LanguageModel:
        return nnx.merge(self.graphdef, self.params, self.rest)


def chunk_plan(train: TrainConfig) -> list[tuple[int, int]]:
    """(first_step, n_steps) per dispatch: chunks of chunk_steps that end exactly at every eval point."""
    plan, step = [], 0
    while step < train.steps:
        next_eval = min((step // train.eval_interval + 1) * train.eval_interval, train.steps)
        n = min(train.chunk_steps, next_eval - step)
        plan.append((step, n))
        step += n
    return plan


def train_rung(
    rung: Rung,
    data: Any,
    train: TrainConfig,
    *,
    vocab_size: int,
    mixer: MixerFactory = CausalSelfAttention,
    callback: Callable[[ChunkProgress], None] | None = None,
    programs: Programs | None = None,
) -> RungResult:
    """Train one rung on ``data`` (a TokenData) and return its learning curve and losses. ``programs`` shares
    compiled chunks between calls: the same rung and mixer at another rate, seed or length compiles nothing."""
    model = build_model(vocab_size, rung.d_model, rung.n_layers, rung.n_heads,
                        dropout=train.dropout, mixer=mixer, seed=train.seed)
    n_params, total_params = count_parameters(model)
    programs = programs if programs is not None else Programs()
    compiles_before = programs.compiles
    trainer = RungTrainer(model, train, programs, shape=(vocab_size, rung.d_model, rung.n_layers, rung.n_heads,
                                                          mixer))
    del model
    # The same data order for every rung and every design: comparisons are paired, which lowers the
    # noise of loss differences without more seeds.
    rng = np.random.default_rng(train.seed)
    eval_batches = data.eval_batches(train.batch_size, train.seq_len, train.eval_tokens)

    curve: list[dict[str, float]] = []
    best = math.inf
    diverged = False
    train_seconds = eval_seconds = 0.0
    steps_done = 0
    plan = chunk_plan(train)
    batch = data.sample_batches(rng, plan[0][1], train.batch_size, train.seq_len)
    for i, (first_step, n_steps) in enumerate(plan):
        start = time.perf_counter()
        compile_before = trainer.compile_seconds
        losses = trainer.run_chunk(batch, first_step)
        if i + 1 < len(plan):  # overlaps with the device computing this chunk
            batch = data.sample_batches(rng, plan[i + 1][1], train.batch_size, train.seq_len)
        train_loss = float(jnp.mean(losses))
        steps_done = first_step + n_steps
        eval_loss = None
        if steps_done % train.eval_interval == 0 or steps_done == train.steps or not math.isfinite(train_loss):
            eval_start, eval_compile = time.perf_counter(), trainer.compile_seconds
            eval_loss = trainer.eval_loss(eval_batches)
            eval_seconds += time.perf_counter() - eval_start - (trainer.compile_seconds - eval_compile)
            best = min(best, eval_loss) if math.isfinite(eval_loss) else best
            curve.append({"step": steps_done, "train_loss": train_loss, "eval_loss": eval_loss})
        train_seconds += time.perf_counter() - start - (trainer.compile_seconds - compile_before)
        if callback is not None:
            callback(ChunkProgress(rung.name, steps_done, train.steps, train_loss, eval_loss, train_seconds))
        if not math.isfinite(train_loss):
            diverged = True
            break

    tokens = steps_done * train.batch_size * train.seq_len
    return RungResult(
        rung=rung.name, d_model=rung.d_model, n_layers=rung.n_layers, n_heads=rung.n_heads,
        n_params=n_params, total_params=total_params, steps=steps_done,
        final_eval_loss=curve[-1]["eval_loss"], best_eval_loss=best, curve=curve,
        tokens_per_second=tokens / train_seconds if train_seconds > 0 else 0.0,
        compile_seconds=trainer.compile_seconds, train_seconds=train_seconds, eval_seconds=eval_seconds,
        compiles=programs.compiles - compiles_before, diverged=diverged,
    )
