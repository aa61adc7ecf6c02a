"""Several runs of one rung trained side by side in one compiled program: the runs' parameters, optimizer
states, dropout keys and learning-rate schedules are stacked along a leading axis and loop.py's chunk and
evaluation functions are vmapped over it, so R seeds or R rates of one rung cost one compile and one dispatch
per chunk instead of R.

Every run is the run ``train_rung`` would train alone, to float rounding: its own seed's initialisation,
dropout key and data order (each run's batches are drawn from its own generator and stacked), its own rate
and warm-up. The runs share nothing but the program, so a run whose loss turns non-finite is recorded as
diverged at that chunk, exactly as alone, while the others train on.
"""

from __future__ import annotations

import dataclasses
from typing import Any, Callable, Sequence

import jax
import jax.numpy as jnp
from flax import nnx

from openevolve_genesys.training.loop import (ChunkProgress, Programs, RungResult, RungTrainer, rung_shape,
                                              train_runs)
from openevolve_genesys.training.model import CausalSelfAttention, MixerFactory, build_model, count_parameters
from openevolve_genesys.training.profiles import Rung, TrainConfig

# The TrainConfig fields batched runs may differ in: each is a per-run argument of the one program (the seed
# through the initial state, the dropout key and the data order; the rate and warm-up through the schedule).
# Every other field either shapes the program or the chunk plan, which the runs share.
BATCHABLE_FIELDS = frozenset({"seed", "learning_rate", "warmup_steps"})


def check_batchable(trains: Sequence[TrainConfig]) -> None:
    """Raise a ValueError naming the first field, outside BATCHABLE_FIELDS, in which ``trains`` differ."""
    if not trains:
        raise ValueError("train_rung_batched needs at least one TrainConfig")
    for f in dataclasses.fields(TrainConfig):
        values = [getattr(t, f.name) for t in trains]
        if f.name not in BATCHABLE_FIELDS and any(v != values[0] for v in values):
            raise ValueError(f"batched runs must share train.{f.name} (they may differ only in "
                             f"{sorted(BATCHABLE_FIELDS)}), got {values}; train them one by one with train_rung")


def _stack(trees: Sequence[Any]) -> Any:
    return jax.tree.map(lambda *leaves: jnp.stack(leaves), *trees)


class BatchedTrainer(RungTrainer):
    """The state of ``len(trainers)`` single-run trainers of one shape, stacked along a leading run axis.
    It inherits the dispatching (``run_chunk``, ``eval_losses``) and compiles the vmapped functions instead;
    its programs are keyed apart from single runs' by the number of runs."""

    def __init__(self, trainers: Sequence[RungTrainer]):
        first = trainers[0]
        if any(t.functions.graphdef != first.functions.graphdef for t in trainers[1:]):
            raise ValueError("batched runs must build the same model graph (same rung shape and mixer)")
        self.train = first.train
        self.functions = first.functions  # pure in everything the runs differ in
        self.runs = len(trainers)
        self.params = _stack([t.params for t in trainers])
        self.opt_state = _stack([t.opt_state for t in trainers])
        self.rest = _stack([t.rest for t in trainers])
        self.key = jnp.stack([t.key for t in trainers])
        self.schedule = tuple(jnp.stack(parts) for parts in zip(*(t.schedule for t in trainers)))
        self.programs = first.programs
        self.shape = first.shape + ("runs", self.runs)
        self.compile_seconds = 0.0

    def _chunk_function(self) -> Callable[..., Any]:
        # The first step is shared: the runs advance in lock step.
        return jax.vmap(self.functions.chunk, in_axes=(0, 0, 0, 0, None, 0, 0))

    def _eval_function(self) -> Callable[..., Any]:
        # The held-out batches are deterministic, hence the same for every run.
        return jax.vmap(self.functions.eval_loss, in_axes=(0, 0, None))

    def model(self, run: int = 0) -> nnx.Module:
        """Run ``run``'s model, unstacked."""
        params, rest = jax.tree.map(lambda leaf: leaf[run], (self.params, self.rest))
        return nnx.merge(self.functions.graphdef, params, rest)


def train_rung_batched(
    rung: Rung,
    data: Any,
    trains: Sequence[TrainConfig],
    *,
    vocab_size: int,
    mixer: MixerFactory = CausalSelfAttention,
    callback: Callable[[ChunkProgress], None] | None = None,
    programs: Programs | None = None,
) -> list[RungResult]:
    """Train one rung once per config in ``trains`` (which may differ only in BATCHABLE_FIELDS) as one batched
    program; one RungResult per config, in order, each equal to ``train_rung(rung, data, train)``'s to float
    rounding. ``callback`` hears every run still training after each chunk, in run order.

    The seconds are the batch's, shared out: each run's train, eval and compile seconds are an equal share of
    the batch's (so they add up to its wall time), and its tokens per second is its own tokens over that
    share; the programs compiled are counted on the first result only."""
    check_batchable(trains)
    programs = programs if programs is not None else Programs()
    compiles_before = programs.compiles
    shape = rung_shape(rung, vocab_size, mixer)
    singles = []
    for train in trains:
        model = build_model(vocab_size, rung.d_model, rung.n_layers, rung.n_heads,
                            dropout=train.dropout, mixer=mixer, seed=train.seed)
        n_params, total_params = count_parameters(model)
        singles.append(RungTrainer(model, train, programs, shape=shape))
    del model
    trainer = BatchedTrainer(singles)
    del singles  # their arrays now live stacked in the batched trainer
    return train_runs(rung, data, trains, trainer, n_params=n_params, total_params=total_params,
                      compiles_before=compiles_before, callback=callback)
