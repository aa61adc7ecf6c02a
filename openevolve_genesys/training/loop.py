"""Train one rung: split the NNX model once, then run jitted chunks of K optimizer steps.

Read it top to bottom: optimizer -> loss -> one step -> a chunk of steps (lax.scan) -> evaluation, as pure
functions (``StepFunctions``) -> the trainer that holds a run's state and compiles those functions (donated
buffers, compiled ahead of time so compile seconds are measured apart) -> the loop over chunks that records
the learning curve, reports progress once per chunk and, every ``checkpoint_steps``, saves the training state to
resume from (checkpoint.py). The loop also drives batched.py's trainer, which vmaps the same functions over
several runs of one rung.
"""

from __future__ import annotations

import dataclasses
import math
import os
import time
from dataclasses import dataclass, field
from functools import partial
from typing import Any, Callable, Sequence

import jax
import jax.numpy as jnp
import numpy as np
import optax
from flax import nnx

from openevolve_genesys.training.loss import tied_cross_entropy
from openevolve_genesys.training.model import CausalSelfAttention, LanguageModel, MixerFactory, build_model, count_parameters
from openevolve_genesys.training.profiles import Rung, TrainConfig
from openevolve_genesys.training.rung_result import RungResult  # re-exported: what train_rung returns


@dataclass(frozen=True)
class ChunkProgress:
    """What the loop reports after every chunk; the sandbox turns it into a heartbeat."""

    rung: str
    step: int
    total_steps: int
    train_loss: float
    eval_loss: float | None
    seconds: float
    cpu_seconds: float = 0.0  # this process's CPU seconds over the same chunks (all threads)


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


# The TrainConfig fields a compiled chunk does not depend on: they are run-time arguments or host-side (the data
# policy only decides the steps, resolved before a rung trains: rungs of either policy share their programs).
_RUNTIME_FIELDS = frozenset({"learning_rate", "warmup_steps", "steps", "eval_interval", "eval_tokens", "seed",
                             "checkpoint_steps", "tokens_per_param"})


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
        self.cpu_seconds = 0.0  # the process's CPU seconds spent compiling

    def get(self, key: tuple[Any, ...], lower: Callable[[], Any]) -> tuple[Any, float]:
        """The program under ``key``, compiled from ``lower()`` on first use; also the seconds that took."""
        if key in self._compiled:
            return self._compiled[key], 0.0
        start, cpu_start = time.perf_counter(), time.process_time()
        self._compiled[key] = lower().compile()
        seconds = time.perf_counter() - start
        self.compiles += 1
        self.seconds += seconds
        self.cpu_seconds += time.process_time() - cpu_start
        return self._compiled[key], seconds


def lm_loss(model: LanguageModel, tokens: jax.Array, *, train: TrainConfig, key: jax.Array | None) -> jax.Array:
    """Mean next-token NLL of a [B, T+1] token window; dropout is on when ``key`` is given."""
    hidden = model.hidden(tokens[:, :-1], deterministic=key is None, rngs=key)
    embedding = model.embed.embedding[...].astype(hidden.dtype)
    return tied_cross_entropy(hidden, embedding, tokens[:, 1:], chunk_tokens=train.loss_chunk_tokens)


class StepFunctions:
    """The pure functions one run's training is made of, specialised only to the model's graph and to the
    TrainConfig fields a program is compiled for (never to a run's state, seed or rate, which are arguments):
    the single-run trainer compiles ``chunk`` as it is, the batched one (batched.py) vmaps the same functions."""

    def __init__(self, graphdef: Any, train: TrainConfig):
        self.graphdef = graphdef
        self.train = train
        self.optimizer = make_optimizer(train)
        self.dtype = compute_dtype(train)

    def merged(self, params: Any, rest: Any) -> LanguageModel:
        # Master weights stay float32; the forward pass runs in the compute dtype.
        params = jax.tree.map(lambda p: p.astype(self.dtype), params)
        return nnx.merge(self.graphdef, params, rest)

    def step(self, rest: Any, key: jax.Array, schedule: tuple[jax.Array, ...], carry: tuple[Any, Any],
             xs: tuple[jax.Array, jax.Array]):
        params, opt_state = carry
        tokens, step = xs

        def loss_fn(p):
            return lm_loss(self.merged(p, rest), tokens, train=self.train, key=jax.random.fold_in(key, step))

        loss, grads = jax.value_and_grad(loss_fn)(params)
        updates, opt_state = self.optimizer.update(grads, opt_state, params)
        rate = schedule_value(step, *schedule, cosine=self.train.schedule == "cosine",
                              min_lr_ratio=self.train.min_lr_ratio)
        updates = jax.tree.map(lambda u: (rate * u).astype(u.dtype), updates)
        return (optax.apply_updates(params, updates), opt_state), loss

    def chunk(self, params: Any, opt_state: Any, rest: Any, tokens: jax.Array, first_step: jax.Array,
              key: jax.Array, schedule: tuple[jax.Array, ...]):
        steps = first_step + jnp.arange(tokens.shape[0])
        (params, opt_state), losses = jax.lax.scan(partial(self.step, rest, key, schedule), (params, opt_state),
                                                   (tokens, steps))
        return params, opt_state, losses

    def eval_loss(self, params: Any, rest: Any, batches: jax.Array) -> jax.Array:
        model = self.merged(params, rest)
        return jnp.mean(jax.lax.map(lambda b: lm_loss(model, b, train=self.train, key=None), batches))


class RungTrainer:
    """Owns the split model state of one rung; its compiled chunk programs come from ``programs``, keyed by
    everything they are specialised to, so a trainer of the same shape (another rate, seed or length) reuses
    them. ``shape`` names the model's shape and mixer for that key (default: this trainer only).

    ``runs`` is how many runs the state holds along a leading axis; 0 here (no run axis). The batched trainer
    (batched.py) overrides ``runs`` and the two functions compiled, and inherits the dispatching below."""

    runs = 0

    def __init__(self, model: LanguageModel, train: TrainConfig, programs: Programs | None = None,
                 shape: tuple[Any, ...] | None = None):
        self.train = train
        graphdef, self.params, self.rest = nnx.split(model, nnx.Param, ...)
        self.functions = StepFunctions(graphdef, train)
        self.opt_state = self.functions.optimizer.init(self.params)
        self.key = jax.random.key(train.seed)
        self.schedule = Schedule.of(train).arrays()
        self.programs = programs if programs is not None else Programs()
        self.shape = (shape if shape is not None else ("trainer", id(self))) + program_key(train)
        self.compile_seconds = 0.0

    def _chunk_function(self) -> Callable[..., Any]:
        return self.functions.chunk

    def _eval_function(self) -> Callable[..., Any]:
        return self.functions.eval_loss

    def run_chunk(self, tokens: np.ndarray, first_step: int) -> jax.Array:
        """Dispatch K = len(tokens) steps; returns the per-step losses without waiting for them."""
        tokens = jnp.asarray(tokens)
        first = jnp.asarray(first_step, jnp.int32)
        args = (self.params, self.opt_state, self.rest, tokens, first, self.key, self.schedule)
        program, seconds = self.programs.get(
            self.shape + ("chunk", tokens.shape),
            lambda: jax.jit(self._chunk_function(), donate_argnums=(0, 1)).lower(*args))
        self.compile_seconds += seconds
        self.params, self.opt_state, losses = program(*args)
        return losses

    def eval_losses(self, batches: np.ndarray) -> np.ndarray:
        """The held-out loss of each run (shape [runs]; a scalar array without a run axis).

        One compiled call per batch, so that an eval slice of any length (a tune trial's is shorter) reuses the
        rung's program instead of compiling its own; the calls queue without waiting for each other."""
        means = []
        for batch in batches:
            one = jnp.asarray(batch)[None]
            program, seconds = self.programs.get(
                self.shape + ("eval", one.shape),
                lambda: jax.jit(self._eval_function()).lower(self.params, self.rest, one))
            self.compile_seconds += seconds
            means.append(program(self.params, self.rest, one))
        return np.asarray(jnp.mean(jnp.stack(means), axis=0))

    def eval_loss(self, batches: np.ndarray) -> float:
        return float(self.eval_losses(batches))

    def model(self) -> LanguageModel:
        return nnx.merge(self.functions.graphdef, self.params, self.rest)


def chunk_plan(train: TrainConfig) -> list[tuple[int, int]]:
    """(first_step, n_steps) per dispatch: chunks of chunk_steps that end exactly at every eval point and at
    every checkpoint point."""
    plan, step = [], 0
    while step < train.steps:
        end = min(_next_multiple(step, train.eval_interval), train.steps)
        if train.checkpoint_steps:
            end = min(end, _next_multiple(step, train.checkpoint_steps))
        n = min(train.chunk_steps, end - step)
        plan.append((step, n))
        step += n
    return plan


def _next_multiple(step: int, every: int) -> int:
    return (step // every + 1) * every


def _saves_at(train: TrainConfig, step: int) -> bool:
    """Whether a rung saves its state after ``step`` steps: at every checkpoint point before the last step (the
    finished rung's result is what is kept)."""
    return train.checkpoint_steps > 0 and step % train.checkpoint_steps == 0 and step < train.steps


@dataclass
class _RunLog:
    """One run's learning curve and seconds, filled chunk by chunk."""

    curve: list[dict[str, float]] = field(default_factory=list)
    best: float = math.inf
    steps: int = 0
    train_seconds: float = 0.0
    eval_seconds: float = 0.0
    cpu_seconds: float = 0.0
    diverged: bool = False


def train_runs(rung: Rung, data: Any, trains: Sequence[TrainConfig], trainer: RungTrainer, *,
               n_params: int, total_params: int, compiles_before: int,
               callback: Callable[[ChunkProgress], None] | None = None,
               checkpoint_dir: str | os.PathLike | None = None) -> list[RungResult]:
    """Run the chunk plan on ``trainer`` (one run, or ``trainer.runs`` runs side by side whose configs share
    the plan) and record each run as ``train_rung`` always has: each run draws its batches from its own seed's
    generator, evaluates at its eval points and once more when its loss turns non-finite, and stops recording
    there (a batched trainer keeps computing it, since its program's shape is fixed, but nothing of it is read).

    A batched program's seconds belong to all its runs at once: every run is credited an equal share of each
    chunk's wall time (and of the compile seconds), so the runs' seconds add up to the batch's; the compiles
    are counted on the first run, as a single trainer of a known shape counts none.

    With ``checkpoint_dir`` and ``checkpoint_steps`` set, the state is saved there at every checkpoint point and
    training resumes from a save found there: parameters, optimizer state, each run's data position and curve,
    so the resumed runs end as they would have uninterrupted (their seconds so far are carried over, too)."""
    train = trains[0]
    n_runs = max(trainer.runs, 1)
    # The same data order for every rung and every design: comparisons are paired, which lowers the
    # noise of loss differences without more seeds.
    rngs = [np.random.default_rng(t.seed) for t in trains]
    eval_batches = data.eval_batches(train.batch_size, train.seq_len, train.eval_tokens)

    def sample(n_steps: int) -> np.ndarray:
        batches = [data.sample_batches(rng, n_steps, train.batch_size, train.seq_len) for rng in rngs]
        return np.stack(batches) if trainer.runs else batches[0]

    logs = [_RunLog() for _ in range(n_runs)]
    plan = chunk_plan(train)
    checkpoints = None
    if checkpoint_dir is not None and train.checkpoint_steps > 0:
        from openevolve_genesys.training.checkpoint import RungCheckpoints  # imports orbax, which takes seconds

        checkpoints = RungCheckpoints(checkpoint_dir, {"rung": dataclasses.asdict(rung),
                                                       "trains": [t.identity() for t in trains]})
        resumed = checkpoints.restore(trainer)
        if resumed is not None:
            for rng, state in zip(rngs, resumed.data_states):
                rng.bit_generator.state = state
            logs = [_RunLog(**saved) for saved in resumed.logs]
            plan = [(first, n) for first, n in plan if first >= resumed.step]
    live = [r for r in range(n_runs) if not logs[r].diverged]
    batch = sample(plan[0][1])
    for i, (first_step, n_steps) in enumerate(plan):
        start, cpu_start = time.perf_counter(), time.process_time()
        compile_before, compile_cpu_before = trainer.compile_seconds, trainer.programs.cpu_seconds
        losses = trainer.run_chunk(batch, first_step)
        steps_done = first_step + n_steps
        saving = checkpoints is not None and _saves_at(train, steps_done)
        # The data position to save is the generators' before the next chunk's batch is drawn.
        data_states = [rng.bit_generator.state for rng in rngs] if saving else []
        if i + 1 < len(plan):  # overlaps with the device computing this chunk
            batch = sample(plan[i + 1][1])
        train_losses = np.atleast_1d(np.asarray(jnp.mean(losses, axis=-1)))
        at_eval_point = steps_done % train.eval_interval == 0 or steps_done == train.steps
        evaluated = [r for r in live if at_eval_point or not math.isfinite(float(train_losses[r]))]
        eval_losses, chunk_eval = None, 0.0
        if evaluated:
            eval_start, eval_compile = time.perf_counter(), trainer.compile_seconds
            eval_losses = np.atleast_1d(trainer.eval_losses(eval_batches))
            chunk_eval = time.perf_counter() - eval_start - (trainer.compile_seconds - eval_compile)
        chunk_seconds = time.perf_counter() - start - (trainer.compile_seconds - compile_before)
        chunk_cpu = time.process_time() - cpu_start - (trainer.programs.cpu_seconds - compile_cpu_before)
        for r in live:
            log, train_loss = logs[r], float(train_losses[r])
            log.steps = steps_done
            log.train_seconds += chunk_seconds / n_runs
            log.cpu_seconds += chunk_cpu / n_runs
            eval_loss = None
            if r in evaluated:
                eval_loss = float(eval_losses[r])
                log.eval_seconds += chunk_eval / n_runs
                log.best = min(log.best, eval_loss) if math.isfinite(eval_loss) else log.best
                log.curve.append({"step": steps_done, "train_loss": train_loss, "eval_loss": eval_loss})
            if callback is not None:
                callback(ChunkProgress(rung.name, steps_done, train.steps, train_loss, eval_loss,
                                       log.train_seconds, log.cpu_seconds))
            log.diverged = not math.isfinite(train_loss)
        live = [r for r in live if not logs[r].diverged]
        if not live:
            break
        if saving:
            checkpoints.save(steps_done, trainer, data_states, [dataclasses.asdict(log) for log in logs])

    results = []
    for r, log in enumerate(logs):
        tokens = log.steps * train.batch_size * train.seq_len
        results.append(RungResult(
            rung=rung.name, d_model=rung.d_model, n_layers=rung.n_layers, n_heads=rung.n_heads,
            n_params=n_params, total_params=total_params, steps=log.steps,
            final_eval_loss=log.curve[-1]["eval_loss"], best_eval_loss=log.best, curve=log.curve,
            tokens_per_second=tokens / log.train_seconds if log.train_seconds > 0 else 0.0,
            compile_seconds=trainer.compile_seconds / n_runs, train_seconds=log.train_seconds,
            eval_seconds=log.eval_seconds, cpu_seconds=log.cpu_seconds,
            compiles=trainer.programs.compiles - compiles_before if r == 0 else 0, diverged=log.diverged,
        ))
    return results


def train_rung(
    rung: Rung,
    data: Any,
    train: TrainConfig,
    *,
    vocab_size: int,
    mixer: MixerFactory = CausalSelfAttention,
    callback: Callable[[ChunkProgress], None] | None = None,
    programs: Programs | None = None,
    checkpoint_dir: str | os.PathLike | None = None,
    on_trained: Callable[[LanguageModel, RungResult], None] | None = None,
) -> RungResult:
    """Train one rung on ``data`` (a TokenData) and return its learning curve and losses. ``programs`` shares
    compiled chunks between calls: the same rung and mixer at another rate, seed or length compiles nothing.
    ``checkpoint_dir`` (this rung's own) saves the state every ``train.checkpoint_steps`` steps and resumes from
    the save found there. ``on_trained`` gets the trained model (its float32 master weights) and the result."""
    model = build_model(vocab_size, rung.d_model, rung.n_layers, rung.n_heads,
                        dropout=train.dropout, mixer=mixer, seed=train.seed)
    n_params, total_params = count_parameters(model)
    programs = programs if programs is not None else Programs()
    compiles_before = programs.compiles
    trainer = RungTrainer(model, train, programs, shape=rung_shape(rung, vocab_size, mixer))
    del model
    result = train_runs(rung, data, [train], trainer, n_params=n_params, total_params=total_params,
                        compiles_before=compiles_before, callback=callback, checkpoint_dir=checkpoint_dir)[0]
    if on_trained is not None:
        on_trained(trainer.model(), result)
    return result


def rung_shape(rung: Rung, vocab_size: int, mixer: MixerFactory) -> tuple[Any, ...]:
    """What a rung's compiled programs are specialised to besides the TrainConfig: its model's shape and mixer."""
    return (vocab_size, rung.d_model, rung.n_layers, rung.n_heads, mixer)
