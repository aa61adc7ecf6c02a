"""End to end: a sandboxed rung killed mid-training resumes from its checkpoint under the cache when evaluated again."""

import pytest

from broken_programs import TEMPLATE
from tiny_evaluators import tiny_evaluator
from openevolve_genesys.training.runtime import cache_root

# One rung of 70 steps in chunks of 10, saved after steps 20, 40 and 60 (never at its last step, 70).
PROFILE = {
    "vocab_size": 512,
    "rungs": [{"d_model": 16, "n_layers": 1, "n_heads": 2}],
    "train": {"seq_len": 32, "batch_size": 8, "steps": 70, "eval_interval": 20, "chunk_steps": 10,
              "eval_tokens": 1024, "warmup_steps": 5, "learning_rate": 0.01, "checkpoint_steps": 20},
}


class LostWorker(Exception):
    pass


def make_evaluator(tmp_path, name, checkpoint_steps):
    profile = {**PROFILE, "train": {**PROFILE["train"], "checkpoint_steps": checkpoint_steps}}
    return tiny_evaluator(tmp_path / name, profile)


def test_a_killed_sandboxed_rung_resumes_from_its_checkpoint_with_the_same_losses(tmp_path):
    checkpoints = cache_root() / "rung_checkpoints"
    evaluator = make_evaluator(tmp_path, "resumed", checkpoint_steps=20)

    def lose_worker(beat):
        if beat.get("step") == 30:  # after the save at step 20; raising here kills the child (SIGKILL)
            raise LostWorker

    with pytest.raises(LostWorker):
        evaluator.evaluate(TEMPLATE, ["r0"], on_heartbeat=lose_worker)
    assert len(list(checkpoints.iterdir())) == 1  # the jailed child could write its save

    steps = []
    resumed = evaluator.evaluate(TEMPLATE, ["r0"], on_heartbeat=lambda beat: steps.append(beat.get("step")))
    assert resumed.outcome == "ok", resumed.artifacts
    # From a save, not from step 0: the kill lands while the child trains on, so the latest save may be the one
    # at 20 or a later one; the last step is never a save, so at least one chunk trains after the resume.
    steps = [s for s in steps if s is not None]
    assert steps and steps[0] in (30, 50, 70) and steps == list(range(steps[0], 71, 10)), steps
    assert list(checkpoints.iterdir()) == []  # the stored result answers from now on

    # Checkpoints off: the same evaluation, never interrupted (another fitness cache, so it trains).
    uninterrupted = make_evaluator(tmp_path, "uninterrupted", checkpoint_steps=0).evaluate(TEMPLATE, ["r0"])
    ours, theirs = resumed.rungs["r0"], uninterrupted.rungs["r0"]
    assert [c["step"] for c in ours.curve] == [c["step"] for c in theirs.curve] == [20, 40, 60, 70]
    for mine, reference in zip(ours.curve, theirs.curve):
        assert mine["eval_loss"] == pytest.approx(reference["eval_loss"], rel=1e-6)
        assert mine["train_loss"] == pytest.approx(reference["train_loss"], rel=1e-6)
