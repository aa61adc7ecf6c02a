import dataclasses

import numpy as np
import pytest

from openevolve_genesys.training.loop import chunk_plan, learning_rate_schedule, train_rung
from openevolve_genesys.training.profiles import Rung, TrainConfig


class CountingData:
    """A learnable toy stream (token i+1 follows token i) that stands in for TokenData."""

    fingerprint, description = "toy", "toy"

    def __init__(self, vocab):
        self.stream = (np.arange(50_000) % vocab).astype(np.int32)

    def sample_batches(self, rng, n, b, t):
        starts = rng.integers(0, len(self.stream) - t - 1, size=(n, b))
        return self.stream[starts[..., None] + np.arange(t + 1)]

    def eval_batches(self, b, t, max_tokens):
        n = max(1, max_tokens // (b * t))
        return self.stream[: n * b * (t + 1)].reshape(n, b, t + 1)


TINY = TrainConfig(seq_len=16, batch_size=8, steps=100, learning_rate=1e-2, warmup_steps=10, eval_interval=50,
                   eval_tokens=256, chunk_steps=16, dropout=0.0)


def test_chunk_plan_ends_at_every_eval_point():
    plan = chunk_plan(dataclasses.replace(TINY, steps=45, eval_interval=20, chunk_steps=8))
    assert sum(n for _, n in plan) == 45
    ends = [s + n for s, n in plan]
    assert {20, 40, 45} <= set(ends) and all(n <= 8 for _, n in plan)
    assert [s for s, _ in plan] == [0] + ends[:-1]


def test_schedule_warms_up_then_decays():
    sched = learning_rate_schedule(dataclasses.replace(TINY, schedule="cosine", min_lr_ratio=0.1))
    assert float(sched(0)) == 0.0 and float(sched(10)) == pytest.approx(1e-2)
    assert float(sched(100)) == pytest.approx(1e-3, rel=1e-3)


def test_training_learns_records_a_curve_and_is_deterministic():
    rung = Rung("t", 16, 1, 2)
    progress = []
    a = train_rung(rung, CountingData(32), TINY, vocab_size=32, callback=progress.append)
    b = train_rung(rung, CountingData(32), TINY, vocab_size=32)
    assert [c["step"] for c in a.curve] == [50, 100]
    assert a.curve[-1]["eval_loss"] < np.log(32) - 1.0  # well below chance: it learnt the successor rule
    assert a.final_eval_loss == b.final_eval_loss and a.curve == b.curve
    assert [p.step for p in progress] == [16, 32, 48, 50, 66, 82, 98, 100]
    assert a.n_params > 0 and a.total_params == a.n_params + 32 * 16
    assert a.tokens_per_second > 0 and a.compile_seconds > 0 and not a.diverged
    # CPU seconds of the chunks, compiles excluded (the step-time check's measure on a CPU), reported with every chunk
    assert a.cpu_seconds > 0 and progress[-1].cpu_seconds == pytest.approx(a.cpu_seconds)


def test_divergence_stops_training_and_is_reported():
    result = train_rung(Rung("t", 16, 1, 2), CountingData(32), dataclasses.replace(TINY, learning_rate=1e30, grad_clip=1e30),
                        vocab_size=32)
    assert result.diverged and result.steps < TINY.steps


def _baked_losses(train, tokens):
    """The reference: optax's own schedule, with the rate baked into the optimizer as a constant."""
    import jax
    import optax
    from flax import nnx

    from openevolve_genesys.training.loop import lm_loss
    from openevolve_genesys.training.model import build_model

    warmup = optax.linear_schedule(0.0, train.learning_rate, max(train.warmup_steps, 1))
    decay = optax.cosine_decay_schedule(train.learning_rate, max(train.steps - train.warmup_steps, 1),
                                        alpha=train.min_lr_ratio)
    optimizer = optax.chain(optax.clip_by_global_norm(train.grad_clip),
                            optax.adamw(optax.join_schedules([warmup, decay], [train.warmup_steps]),
                                        b1=train.beta1, b2=train.beta2, eps=1e-8, weight_decay=train.weight_decay))
    graphdef, params, rest = nnx.split(build_model(32, 16, 1, 2, dropout=0.0, seed=train.seed), nnx.Param, ...)
    state = optimizer.init(params)

    @jax.jit
    def step(params, state, batch):
        loss, grads = jax.value_and_grad(lambda p: lm_loss(nnx.merge(graphdef, p, rest), batch, train=train,
                                                           key=None))(params)
        updates, state = optimizer.update(grads, state, params)
        return optax.apply_updates(params, updates), state, loss

    losses = []
    for batch in tokens:
        params, state, loss = step(params, state, batch)
        losses.append(float(loss))
    return np.array(losses)


def test_a_rate_passed_at_run_time_trains_like_the_rate_baked_in():
    from openevolve_genesys.training.loop import RungTrainer
    from openevolve_genesys.training.model import build_model

    train = dataclasses.replace(TINY, schedule="cosine", steps=24, warmup_steps=6, chunk_steps=24)
    tokens = CountingData(32).sample_batches(np.random.default_rng(0), 24, 8, 16)
    for lr in (3e-3, 2e-2):
        config = dataclasses.replace(train, learning_rate=lr)
        trainer = RungTrainer(build_model(32, 16, 1, 2, dropout=0.0, seed=config.seed), config)
        ours = np.asarray(trainer.run_chunk(tokens, 0))
        np.testing.assert_allclose(ours, _baked_losses(config, tokens), rtol=1e-5)


def test_one_compile_serves_a_whole_sweep_of_rates_and_lengths():
    from openevolve_genesys.training.loop import Programs

    programs = Programs()
    rung, data = Rung("t", 16, 1, 2), CountingData(32)
    first = train_rung(rung, data, TINY, vocab_size=32, programs=programs)
    assert first.compiles == 3  # chunks of 16 and of 2 steps (eval every 50), and the evaluation
    compiled = programs.compiles
    results = [train_rung(rung, data, dataclasses.replace(TINY, learning_rate=lr, warmup_steps=w), vocab_size=32,
                          programs=programs) for lr, w in ((3e-3, 5), (3e-2, 20), (1e-1, 0))]
    assert programs.compiles == compiled and all(r.compiles == 0 for r in results)
    assert len({r.final_eval_loss for r in results}) == 3  # the rates did reach the program
    alone = train_rung(rung, data, dataclasses.replace(TINY, learning_rate=3e-2, warmup_steps=20), vocab_size=32)
    assert alone.curve == results[1].curve  # shared programs change nothing


def test_the_bfloat16_compute_path_learns_on_the_cpu_like_float32():
    """Accelerators train in bfloat16 ("auto"); this runs that path on the CPU so it cannot rot unseen."""
    rung = Rung("t", 16, 1, 2)
    f32 = train_rung(rung, CountingData(32), dataclasses.replace(TINY, compute_dtype="float32"), vocab_size=32)
    bf16 = train_rung(rung, CountingData(32), dataclasses.replace(TINY, compute_dtype="bfloat16"), vocab_size=32)
    assert not bf16.diverged and bf16.curve[-1]["eval_loss"] < np.log(32) - 1.0
    # bfloat16 keeps 8 bits of mantissa: the same run, not the same numbers
    assert bf16.final_eval_loss == pytest.approx(f32.final_eval_loss, abs=0.15)
    assert bf16.final_eval_loss != f32.final_eval_loss


def test_eval_slices_of_any_length_share_one_program_and_keep_the_mean():
    """Held-out batches go through one compiled program a batch at a time: a tune trial's shorter slice reuses
    the rung's program, and the loss is the mean over all batches as one program over all of them gives."""
    import jax.numpy as jnp

    from openevolve_genesys.training.loop import Programs, RungTrainer
    from openevolve_genesys.training.model import build_model

    rung = Rung("t", 16, 1, 2)
    model = build_model(32, rung.d_model, rung.n_layers, rung.n_heads, dropout=0.0)
    trainer = RungTrainer(model, TINY, Programs())
    data = CountingData(32)
    full, short = data.eval_batches(8, 16, 16 * 8 * 16), data.eval_batches(8, 16, 4 * 8 * 16)
    assert len(full) == 16 and len(short) == 4
    whole = float(trainer.functions.eval_loss(trainer.params, trainer.rest, jnp.asarray(full)))
    assert trainer.eval_loss(full) == pytest.approx(whole, rel=1e-6)
    before = trainer.programs.compiles
    trainer.eval_loss(short)
    assert trainer.programs.compiles == before == 1  # the one program the 16-batch slice compiled
