"""End to end: a sandboxed rung killed mid-training resumes from its checkpoint under the cache when evaluated again."""

import pytest

from broken_programs import TEMPLATE
from openevolve_genesys.evaluation.evaluator import ScalingLawEvaluator
from openevolve_genesys.evaluation.sandbox import SandboxLimits
from openevolve_genesys.evaluation.settings import EvaluatorSettings
from openevolve_genesys.training.runtime import cache_root

# One rung of 40 steps in chunks of 10, saved after step 20.
PROFILE = {
    "vocab_size": 512,
    "rungs": [{"d_model": 16, "n_layers": 1, "n_heads": 2}],
    "train": {"seq_len": 32, "batch_size": 8, "steps": 40, "eval_interval": 20, "chunk_steps": 10,
              "eval_tokens": 1024, "warmup_steps": 5, "learning_rate": 0.01, "checkpoint_steps": 20},
}


class LostWorker(Exception):
    pass


def make_evaluator(tmp_path, name, checkpoint_steps):
    profile = {**PROFILE, "train": {**PROFILE["train"], "checkpoint_steps": checkpoint_steps}}
    return ScalingLawEvaluator(EvaluatorSettings(
        profile="smoke", profile_overrides=profile, data={"source": "stdlib", "max_corpus_bytes": 300_000},
        cache_path=str(tmp_path / name / "fitness.sqlite"),
        sandbox=SandboxLimits(wall_seconds=120, heartbeat_seconds=20, startup_seconds=120, memory_bytes=6 << 30)))


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
    assert [s for s in steps if s is not None] == [30, 40]  # from the save, not from step 0
    assert list(checkpoints.iterdir()) == []  # the stored result answers from now on

    # Checkpoints off: the same evaluation, never interrupted (another fitness cache, so it trains).
    uninterrupted = make_evaluator(tmp_path, "uninterrupted", checkpoint_steps=0).evaluate(TEMPLATE, ["r0"])
    ours, theirs = resumed.rungs["r0"], uninterrupted.rungs["r0"]
    assert [c["step"] for c in ours.curve] == [c["step"] for c in theirs.curve] == [20, 40]
    for mine, reference in zip(ours.curve, theirs.curve):
        assert mine["eval_loss"] == pytest.approx(reference["eval_loss"], rel=1e-6)
        assert mine["train_loss"] == pytest.approx(reference["train_loss"], rel=1e-6)
