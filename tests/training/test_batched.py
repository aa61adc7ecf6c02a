import dataclasses
import math
import sys
from pathlib import Path

import numpy as np
import pytest

from openevolve_genesys.training.batched import train_rung_batched
from openevolve_genesys.training.loop import Programs, train_rung
from openevolve_genesys.training.profiles import Rung

sys.path.insert(0, str(Path(__file__).parent))  # --import-mode=importlib: the toy data lives in test_loop
from test_loop import TINY, CountingData  # noqa: E402

RUNG = Rung("t", 16, 1, 2)
# Dropout on, so the per-run dropout keys matter; 40 steps in chunks of 16 and 4 (eval every 20).
BASE = dataclasses.replace(TINY, steps=40, eval_interval=20, dropout=0.1)


def assert_same_run(batched, alone):
    assert batched.steps == alone.steps and batched.diverged == alone.diverged
    assert [p["step"] for p in batched.curve] == [p["step"] for p in alone.curve]
    for ours, theirs in zip(batched.curve, alone.curve):
        for name in ("train_loss", "eval_loss"):
            if math.isfinite(theirs[name]):
                assert ours[name] == pytest.approx(theirs[name], rel=1e-5), name
            else:
                assert not math.isfinite(ours[name]), name
    if math.isfinite(alone.final_eval_loss):
        assert batched.final_eval_loss == pytest.approx(alone.final_eval_loss, rel=1e-5)
        assert batched.best_eval_loss == pytest.approx(alone.best_eval_loss, rel=1e-5)
    assert (batched.n_params, batched.total_params) == (alone.n_params, alone.total_params)


def check_against_one_by_one(trains):
    data = CountingData(32)
    batched = train_rung_batched(RUNG, data, trains, vocab_size=32)
    shared = Programs()  # one compile for the one-by-one runs too, as a job's trials share theirs
    alone = [train_rung(RUNG, data, train, vocab_size=32, programs=shared) for train in trains]
    assert len(batched) == len(trains)
    for ours, theirs in zip(batched, alone):
        assert_same_run(ours, theirs)
    return batched


def test_three_seeds_batched_train_as_one_by_one():
    results = check_against_one_by_one([dataclasses.replace(BASE, seed=s) for s in (1, 2, 3)])
    assert len({r.final_eval_loss for r in results}) == 3  # each run had its own seed


def test_three_rates_batched_train_as_one_by_one():
    results = check_against_one_by_one([dataclasses.replace(BASE, learning_rate=lr, warmup_steps=w)
                                        for lr, w in ((3e-3, 5), (1e-2, 10), (3e-2, 0))])
    assert len({r.final_eval_loss for r in results}) == 3


def test_a_diverged_run_is_recorded_alone_and_leaves_the_others_intact():
    no_clip = dataclasses.replace(BASE, grad_clip=1e30)
    results = check_against_one_by_one([dataclasses.replace(no_clip, learning_rate=lr) for lr in (1e-2, 1e30, 3e-3)])
    assert [r.diverged for r in results] == [False, True, False]
    assert results[1].steps < BASE.steps and results[0].steps == results[2].steps == BASE.steps


def test_one_compile_serves_the_batch_and_the_seconds_are_shared_out():
    programs = Programs()
    trains = [dataclasses.replace(BASE, seed=s) for s in (1, 2, 3)]
    first = train_rung_batched(RUNG, CountingData(32), trains, vocab_size=32, programs=programs)
    assert programs.compiles == 3  # chunks of 16 and of 4 steps, and the evaluation: as for one run
    assert [r.compiles for r in first] == [3, 0, 0]
    assert len({r.train_seconds for r in first}) == 1 and first[0].train_seconds > 0
    assert sum(r.compile_seconds for r in first) == pytest.approx(programs.seconds)
    again = train_rung_batched(RUNG, CountingData(32), [dataclasses.replace(t, learning_rate=3e-2) for t in trains],
                               vocab_size=32, programs=programs)
    assert programs.compiles == 3 and all(r.compiles == 0 and r.compile_seconds == 0 for r in again)
    # A single run of the same shape is another program, kept apart from the batch's.
    train_rung(RUNG, CountingData(32), trains[0], vocab_size=32, programs=programs)
    assert programs.compiles == 6


@pytest.mark.parametrize("change", [{"steps": 30}, {"batch_size": 4}, {"dropout": 0.0}, {"eval_interval": 10}])
def test_runs_differing_in_a_compiled_or_planned_field_are_refused_by_name(change):
    trains = [BASE, dataclasses.replace(BASE, seed=1, **change)]
    (name,) = change
    with pytest.raises(ValueError, match=rf"train\.{name}\b"):
        train_rung_batched(RUNG, CountingData(32), trains, vocab_size=32)


def test_every_run_reports_progress_after_every_chunk():
    progress = []
    train_rung_batched(RUNG, CountingData(32), [BASE, dataclasses.replace(BASE, seed=1)], vocab_size=32,
                       callback=progress.append)
    steps = [p.step for p in progress]
    assert steps == [16, 16, 20, 20, 36, 36, 40, 40]
    assert [p.eval_loss is not None for p in progress] == [False, False, True, True] * 2
    assert np.all(np.isfinite([p.train_loss for p in progress]))
