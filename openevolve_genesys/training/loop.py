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
    train_seconds: float = 0.0
    diverged: bool = False

    def to_dict(self) -> dict[str, Any]:
        return dataclasses.asdict(self)


def compute_dtype(train: TrainConfig) -> jnp.dtype:
    if train.compute_dtype == "auto":
        return jnp.float32 if jax.default_backend() == "cpu" else jnp.bfloat16
    return jnp.dtype(train.compute_dtype)


def learning_rate_schedule(train: TrainConfig) -> optax.Schedule:
    warmup = optax.linear_schedule(0.0, train.learning_rate, max(train.warmup_steps, 1))
    decay_steps = max(train.steps - train.warmup_steps, 1)
    if train.schedule == "cosine":
        after = optax.cosine_decay_schedule(train.learning_rate, decay_steps, alpha=train.min_lr_ratio)
    else:
        after = optax.constant_schedule(train.learning_rate)
    return optax.join_schedules([warmup, after], [train.warmup_steps])


def make_optimizer(train: TrainConfig) -> optax.GradientTransformation:
    return optax.chain(
        optax.clip_by_global_norm(train.grad_clip),
        optax.adamw(learning_rate_schedule(train), b1=train.beta1, b2=train.beta2, eps=1e-8,
                    weight_decay=train.weight_decay),
    )


def lm_loss(model: LanguageModel, tokens: jax.Array, *, train: TrainConfig, key: jax.Array | None) -> jax.Array:
    """Mean next-token NLL of a [B, T+1] token window; dropout is on when ``key`` is given."""
    hidden = model.hidden(tokens[:, :-1], deterministic=key is None, rngs=key)
    embedding = model.embed.embedding[...].astype(hidden.dtype)
    return tied_cross_entropy(hidden, embedding, tokens[:, 1:], chunk_tokens=train.loss_chunk_tokens)


class RungTrainer:
    """Owns the split model state and the compiled chunk functions of one rung."""

    def __init__(self, model: LanguageModel, train: TrainConfig):
        self.train = train
        self.graphdef, self.params, self.rest = nnx.split(model, nnx.Param, ...)
        self.optimizer = make_optimizer(train)
        self.opt_state = self.optimizer.init(self.params)
        self.dtype = compute_dtype(train)
        self.base_key = jax.random.key(train.seed)
        self._compiled: dict[int, Any] = {}
        self.compile_seconds = 0.0
        self._eval = jax.jit(self._eval_loss)

    def _merged(self, params: Any, rest: Any) -> LanguageModel:
        # Master weights stay float32; the forward pass runs in the compute dtype.
        params = jax.tree.map(lambda p: p.astype(self.dtype), params)
        return nnx.merge(self.graphdef, params, rest)

    def _step(self, rest: Any, carry: tuple[Any, Any], xs: tuple[jax.Array, jax.Array]):
        params, opt_state = carry
        tokens, step = xs
        key = jax.random.fold_in(self.base_key, step)

        def loss_fn(p):
            return lm_loss(self._merged(p, rest), tokens, train=self.train, key=key)

        loss, grads = jax.value_and_grad(loss_fn)(params)
        updates, opt_state = self.optimizer.update(grads, opt_state, params)
        return (optax.apply_updates(params, updates), opt_state), loss

    def _chunk(self, params: Any, opt_state: Any, rest: Any, tokens: jax.Array, first_step: jax.Array):
        steps = first_step + jnp.arange(tokens.shape[0])
        (params, opt_state), losses = jax.lax.scan(partial(self._step, rest), (params, opt_state), (tokens, steps))
        return params, opt_state, losses

    def _eval_loss(self, params: Any, rest: Any, batches: jax.Array) -> jax.Array:
        model = self._merged(params, rest)
        return jnp.mean(jax.lax.map(lambda b: lm_loss(model, b, train=self.train, key=None), batches))

    def run_chunk(self, tokens: np.ndarray, first_step: int) -> jax.Array:
        """Dispatch K = len(tokens) steps; returns the per-step losses without waiting for them."""
        k = tokens.shape[0]
        tokens = jnp.asarray(tokens)
        first = jnp.asarray(first_step, jnp.int32)
        if k not in self._compiled:
            start = time.perf_counter()
            jitted = jax.jit(self._chunk, donate_argnums=(0, 1))
            self._compiled[k] = jitted.lower(self.params, self.opt_state, self.rest, tokens, first).compile()
            self.compile_seconds += time.perf_counter() - start
        self.params, self.opt_state, losses = self._compiled[k](self.params, self.opt_state, self.rest, tokens, first)
        return losses

    def eval_loss(self, batches: np.ndarray) -> float:
        return float(self._eval(self.params, self.rest, jnp.asarray(batches)))

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
) -> RungResult:
    """Train one rung on ``data`` (a TokenData) and return its learning curve and losses."""
    model = build_model(vocab_size, rung.d_model, rung.n_layers, rung.n_heads,
                        dropout=train.dropout, mixer=mixer, seed=train.seed)
    n_params, total_params = count_parameters(model)
    trainer = RungTrainer(model, train)
    del model
    # The same data order for every rung and every design: comparisons are paired, which lowers the
    # noise of loss differences without more seeds.
    rng = np.random.default_rng(train.seed)
    eval_batches = data.eval_batches(train.batch_size, train.seq_len, train.eval_tokens)

    curve: list[dict[str, float]] = []
    best = math.inf
    diverged = False
    train_seconds = 0.0
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
            eval_loss = trainer.eval_loss(eval_batches)
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
        compile_seconds=trainer.compile_seconds, train_seconds=train_seconds, diverged=diverged,
    )
