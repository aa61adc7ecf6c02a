"""A local engine slot's device reaches the sandboxed worker: asserted on what the worker itself reports."""

import pytest

from openevolve_genesys.engine.local import LocalEngine
from openevolve_genesys.evaluation.evaluator import ScalingLawEvaluator
from openevolve_genesys.evaluation.sandbox import SandboxLimits
from openevolve_genesys.evaluation.checks import CheckSettings
from openevolve_genesys.evaluation.settings import EvaluatorSettings

pytestmark = pytest.mark.slow
TINY = {"vocab_size": 512, "rungs": [{"d_model": 16, "n_layers": 1, "n_heads": 2}],
        "train": {"seq_len": 32, "batch_size": 8, "steps": 40, "eval_interval": 20, "chunk_steps": 20,
                  "eval_tokens": 1024, "warmup_steps": 5}}


def test_each_slot_pins_the_environment_the_worker_sees(tmp_path):
    settings = EvaluatorSettings(profile="smoke", profile_overrides=TINY,
                                 data={"source": "stdlib", "max_corpus_bytes": 300_000},
                                 cache_path=str(tmp_path / "fitness.sqlite"),
                                 sandbox=SandboxLimits(wall_seconds=300, heartbeat_seconds=60, startup_seconds=120),
                                 # about pinning, not speed: two slots on a shared CPU may be several times slower
                                 # than the baseline's recorded steps, which the step-time check would reject
                                 checks=CheckSettings(max_step_time_ratio=50.0))
    evaluator = ScalingLawEvaluator(settings)
    engine = LocalEngine(evaluator, devices=["cpu", "3"])
    reports = []
    for factor in ("1.25", "1.5"):  # two different programs: no cache hit, each trains in its own worker
        evaluation = engine.evaluate(evaluator.template.replace("math.sqrt(", f"{factor} * math.sqrt(", 1), ["r0"])
        assert evaluation.outcome == "ok", evaluation.artifacts.get("message")
        reports.append(evaluation.artifacts["device"])
    assert reports[0]["JAX_PLATFORMS"] == "cpu" and reports[0]["CUDA_VISIBLE_DEVICES"] == ""
    assert reports[0]["backend"] == "cpu"
    assert reports[1]["CUDA_VISIBLE_DEVICES"] == "3"  # no GPU here: JAX falls back to the CPU, pinned all the same
