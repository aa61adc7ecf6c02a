import dataclasses
import logging
import signal
import subprocess
import sys
from pathlib import Path

import pytest

from openevolve_genesys.evaluation.cache import config_hash
from openevolve_genesys.strict import ConfigError
from openevolve_genesys.training.loop import Programs, chunk_plan, program_key, train_rung
from openevolve_genesys.training.profiles import Rung, get_profile

sys.path.insert(0, str(Path(__file__).parent))  # --import-mode=importlib: the toy data lives in test_loop
from test_loop import TINY, CountingData  # noqa: E402

RUNG = Rung("t", 16, 1, 2)
# Dropout on, so the dropout key must survive too; saves after steps 20 and 40 of 60, chunks of 10.
CONFIG = dataclasses.replace(TINY, steps=60, eval_interval=20, chunk_steps=10, dropout=0.1, checkpoint_steps=20)
PROGRAMS = Programs()  # one compile for every run of this module


class Interrupted(Exception):
    pass


def train(directory, callback=None, config=CONFIG):
    return train_rung(RUNG, CountingData(32), config, vocab_size=32, callback=callback, programs=PROGRAMS,
                      checkpoint_dir=directory)


def interrupt_at(step):
    def callback(progress):
        if progress.step == step:
            raise Interrupted
    return callback


def resumed_steps(directory):
    """Train from ``directory``'s save to the end; the steps it reported, and its result."""
    steps = []
    result = train(directory, callback=lambda progress: steps.append(progress.step))
    return steps, result


@pytest.fixture(scope="module")
def uninterrupted(tmp_path_factory):
    return train(tmp_path_factory.mktemp("uninterrupted") / "ckpt")


def assert_same_losses(ours, theirs):
    assert ours.steps == theirs.steps == CONFIG.steps
    assert [p["step"] for p in ours.curve] == [p["step"] for p in theirs.curve] == [20, 40, 60]
    for mine, reference in zip(ours.curve, theirs.curve):
        assert mine["train_loss"] == pytest.approx(reference["train_loss"], rel=1e-6)
        assert mine["eval_loss"] == pytest.approx(reference["eval_loss"], rel=1e-6)
    assert ours.final_eval_loss == pytest.approx(theirs.final_eval_loss, rel=1e-6)
    assert ours.best_eval_loss == pytest.approx(theirs.best_eval_loss, rel=1e-6)


def test_chunks_end_at_checkpoint_points():
    plan = chunk_plan(dataclasses.replace(CONFIG, chunk_steps=16, checkpoint_steps=24))
    assert {24, 48} <= {first + n for first, n in plan}


def test_an_interrupted_rung_resumes_from_its_save_with_the_same_losses(tmp_path, uninterrupted):
    with pytest.raises(Interrupted):
        train(tmp_path, callback=interrupt_at(50))  # after the save at step 40
    assert sorted(p.name for p in tmp_path.iterdir()) == ["40"]  # only the latest save is kept
    steps, resumed = resumed_steps(tmp_path)
    assert steps == [50, 60]
    assert_same_losses(resumed, uninterrupted)


KILLED_CHILD = """
import os, signal, sys
sys.path.insert(0, {tests!r})
from test_loop import CountingData
from openevolve_genesys.training.loop import train_rung
from openevolve_genesys.training.profiles import Rung, TrainConfig

def die(progress):
    if progress.step == 50:  # after the save at step 40: the worker is lost mid-training
        os.kill(os.getpid(), signal.SIGKILL)

train_rung({rung!r}, CountingData(32), {config!r}, vocab_size=32, callback=die, checkpoint_dir=sys.argv[1])
"""


def test_a_rung_whose_process_is_killed_resumes_in_another_with_the_same_losses(tmp_path, uninterrupted):
    script = KILLED_CHILD.format(tests=str(Path(__file__).parent), rung=RUNG, config=CONFIG)
    child = subprocess.run([sys.executable, "-c", script, str(tmp_path)], capture_output=True, text=True,
                           timeout=300)
    assert child.returncode == -signal.SIGKILL, child.stderr[-2000:]
    steps, resumed = resumed_steps(tmp_path)
    assert steps == [50, 60]
    assert_same_losses(resumed, uninterrupted)


def test_a_half_written_save_is_ignored_for_the_last_complete_one(tmp_path, uninterrupted):
    with pytest.raises(Interrupted):
        train(tmp_path, callback=interrupt_at(50))
    # What a worker killed while saving step 60 leaves: orbax's temporary directory, never renamed.
    partial = tmp_path / "60.orbax-checkpoint-tmp-1733300000"
    (partial / "state").mkdir(parents=True)
    (partial / "state" / "half").write_bytes(b"\0" * 10)
    steps, resumed = resumed_steps(tmp_path)
    assert steps == [50, 60]
    assert_same_losses(resumed, uninterrupted)


def test_a_damaged_save_is_logged_and_training_starts_over(tmp_path, uninterrupted, caplog):
    with pytest.raises(Interrupted):
        train(tmp_path, callback=interrupt_at(50))
    damaged = [f for f in (tmp_path / "40" / "state").rglob("*") if f.is_file()]
    assert damaged
    for f in damaged:
        f.write_bytes(b"not a checkpoint")
    with caplog.at_level(logging.WARNING, logger="openevolve_genesys.training.checkpoint"):
        steps, restarted = resumed_steps(tmp_path)
    assert any("cannot be resumed" in r.getMessage() and "starts over" in r.getMessage() for r in caplog.records)
    assert steps[0] == 10
    assert_same_losses(restarted, uninterrupted)


def test_a_save_of_another_training_is_not_resumed(tmp_path, uninterrupted, caplog):
    other = dataclasses.replace(CONFIG, learning_rate=CONFIG.learning_rate / 2)
    with pytest.raises(Interrupted):
        train(tmp_path, callback=interrupt_at(50), config=other)
    with caplog.at_level(logging.WARNING, logger="openevolve_genesys.training.checkpoint"):
        steps, result = resumed_steps(tmp_path)
    assert any("another training" in r.getMessage() for r in caplog.records)
    assert steps[0] == 10
    assert_same_losses(result, uninterrupted)


def test_a_save_that_fails_is_logged_and_training_goes_on(tmp_path, uninterrupted, caplog):
    not_a_directory = tmp_path / "file"
    not_a_directory.write_text("")
    with caplog.at_level(logging.WARNING, logger="openevolve_genesys.training.checkpoint"):
        result = train(not_a_directory)
    assert sum("saving step" in r.getMessage() and "failed" in r.getMessage() for r in caplog.records) == 2
    assert_same_losses(result, uninterrupted)


def test_no_checkpoint_steps_writes_nothing(tmp_path):
    directory = tmp_path / "ckpt"
    result = train(directory, config=dataclasses.replace(CONFIG, checkpoint_steps=0))
    assert result.steps == CONFIG.steps and not directory.exists()


def test_a_finished_rung_leaves_only_its_last_intermediate_save(tmp_path):
    train(tmp_path)
    assert sorted(p.name for p in tmp_path.iterdir()) == ["40"]  # the finished rung's result is what counts


def test_saves_that_split_chunks_train_the_same_model(tmp_path, uninterrupted):
    # Saves after steps 25 and 50 split chunks: the model and its eval losses, which the score and the cache
    # key's meaning rest on, are unchanged. (A curve's train_loss is its last chunk's mean: at step 40 that chunk
    # is now steps 35-40, not 30-40.)
    split = train(tmp_path, config=dataclasses.replace(CONFIG, checkpoint_steps=25))
    assert [p["eval_loss"] for p in split.curve] == pytest.approx([p["eval_loss"] for p in uninterrupted.curve],
                                                                  rel=1e-6)
    assert split.final_eval_loss == pytest.approx(uninterrupted.final_eval_loss, rel=1e-6)
    assert split.curve[-1]["train_loss"] == pytest.approx(uninterrupted.curve[-1]["train_loss"], rel=1e-6)


def test_the_setting_changes_neither_the_result_key_nor_the_compiled_program():
    other = dataclasses.replace(CONFIG, checkpoint_steps=0)
    assert config_hash(CONFIG.identity()) == config_hash(other.identity())
    assert program_key(CONFIG) == program_key(other)
    assert "checkpoint_steps" not in CONFIG.identity()


@pytest.mark.parametrize("value", [-1, "5000", 2.5, True])
def test_a_bad_checkpoint_steps_is_a_one_line_error(value):
    with pytest.raises(ConfigError) as err:
        get_profile("smoke", {"train": {"checkpoint_steps": value}})
    message = str(err.value)
    assert "train.checkpoint_steps" in message and "\n" not in message


def test_the_seed_profile_checkpoints_and_smoke_does_not():
    assert get_profile("seed").train.checkpoint_steps == 5000
    assert get_profile("smoke").train.checkpoint_steps == 0


def test_typed_prng_keys_in_the_state_round_trip(tmp_path):
    # An evolved mixer may keep an nnx.Rngs, whose keys sit in the model's non-parameter state.
    import types

    import jax
    import jax.numpy as jnp

    from openevolve_genesys.training.checkpoint import RungCheckpoints

    def trainer(seed):
        return types.SimpleNamespace(params={"w": jnp.full(3, float(seed))}, opt_state=(jnp.int32(seed),),
                                     rest={"rng": jax.random.key(seed)}, key=jax.random.key(seed + 10))

    saved, blank = trainer(1), trainer(0)
    RungCheckpoints(tmp_path, {"x": 1}).save(7, saved, [{"state": 1}], [{"steps": 7}])
    resumed = RungCheckpoints(tmp_path, {"x": 1}).restore(blank)
    assert resumed.step == 7 and resumed.data_states == [{"state": 1}] and resumed.logs == [{"steps": 7}]
    assert float(blank.params["w"][0]) == 1.0 and int(blank.opt_state[0]) == 1
    assert jax.dtypes.issubdtype(blank.rest["rng"].dtype, jax.dtypes.prng_key)
    assert (jax.random.key_data(blank.rest["rng"]) == jax.random.key_data(saved.rest["rng"])).all()
    assert (jax.random.key_data(blank.key) == jax.random.key_data(saved.key)).all()
