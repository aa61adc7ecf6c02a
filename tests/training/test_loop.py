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


def test_divergence_stops_training_and_is_reported():
    result = train_rung(Rung("t", 16, 1, 2), CountingData(32), dataclasses.replace(TINY, learning_rate=1e30, grad_clip=1e30),
                        vocab_size=32)
    assert result.diverged and result.steps < TINY.steps
