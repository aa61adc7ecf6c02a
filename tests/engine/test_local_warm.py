"""The local engine's warm children: one per slot, started with the slot's device environment, gone at shutdown,
and a job run in one gives what a cold child gives."""

import os
import threading
import time
from pathlib import Path

import pytest

from broken_programs import TEMPLATE
from openevolve_genesys.engine import EngineSettings, make_engine
from openevolve_genesys.engine.local import LocalEngine
from openevolve_genesys.evaluation import evaluator as evaluator_module
from openevolve_genesys.evaluation.evaluator import ScalingLawEvaluator
from openevolve_genesys.evaluation.sandbox import SandboxLimits, run_in_sandbox
from openevolve_genesys.evaluation.settings import EvaluatorSettings
from openevolve_genesys.strict import ConfigError

JOBS = Path(__file__).resolve().parents[1] / "evaluation"  # sandbox_jobs.py
LIMITS = SandboxLimits(wall_seconds=20, heartbeat_seconds=5, startup_seconds=10, memory_bytes=400 << 20)


class SandboxEvaluator:
    """Runs a tiny sandbox job per evaluation, as ScalingLawEvaluator runs the training job."""

    def evaluate(self, source, rungs, env=None, **options):
        return run_in_sandbox("sandbox_jobs:reports_process", {}, LIMITS, env={**(env or {}), "PYTHONPATH": str(JOBS)})


def gone(pid: int, within: float = 5.0) -> bool:
    deadline = time.monotonic() + within
    while os.path.exists(f"/proc/{pid}") and time.monotonic() < deadline:
        with open(f"/proc/{pid}/stat") as f:
            if f.read().rpartition(")")[2].split()[0] == "Z":
                return True
        time.sleep(0.05)
    return not os.path.exists(f"/proc/{pid}")


def test_each_slot_keeps_one_warm_child_with_its_device_environment_until_shutdown():
    engine = LocalEngine(SandboxEvaluator(), devices=["cpu", "7"])
    try:
        results, lock = [], threading.Lock()

        def work():
            for _ in range(3):
                result = engine.evaluate("p", ["r0"])
                with lock:
                    results.append(result)

        threads = [threading.Thread(target=work) for _ in range(2)]
        for t in threads:
            t.start()
        for t in threads:
            t.join()
        waiting = [slot.waiting_pid for slot in engine.warm_slots]
        assert len(results) == 6 and all(r.outcome == "ok" for r in results)
        assert sum(r.warm for r in results) >= 4  # every slot's jobs after its first ran in a warm child
        assert len({r.value["pid"] for r in results}) == 6  # one child per evaluation, never reused
        assert None not in waiting and len(set(waiting)) == 2  # exactly one waits per slot
        for result in results:  # each child, warm or cold, got its own slot's device pinning
            env = result.value["env"]
            assert env.get("JAX_PLATFORMS") == "cpu" or env.get("CUDA_VISIBLE_DEVICES") == "7"
    finally:
        engine.shutdown()
    assert all(gone(pid) for pid in waiting)


def test_warm_child_false_starts_every_child_on_demand():
    engine = make_engine(EngineSettings(warm_child=False), SandboxEvaluator(), workers=1)
    results = [engine.evaluate("p", ["r0"]) for _ in range(2)]
    engine.shutdown()
    assert engine.warm_slots == [] and [r.warm for r in results] == [False, False]


def test_warm_child_must_be_a_boolean():
    with pytest.raises(ConfigError, match="warm_child must be true or false"):
        EngineSettings.from_dict({"warm_child": "yes"})


TINY = {
    "vocab_size": 512,
    "rungs": [{"d_model": 16, "n_layers": 1, "n_heads": 2}],
    "train": {"seq_len": 32, "batch_size": 8, "steps": 20, "eval_interval": 10, "chunk_steps": 10,
              "eval_tokens": 1024, "warmup_steps": 5, "learning_rate": 0.01},
}


def tiny_evaluator(cache: Path) -> ScalingLawEvaluator:
    return ScalingLawEvaluator(EvaluatorSettings(
        profile="smoke", profile_overrides=TINY, data={"source": "stdlib", "max_corpus_bytes": 300_000},
        cache_path=str(cache / "fitness.sqlite"),
        sandbox=SandboxLimits(wall_seconds=300, heartbeat_seconds=60, startup_seconds=300, memory_bytes=6 << 30)))


def test_a_baseline_trained_in_a_warm_child_equals_one_trained_in_a_cold_child(tmp_path, monkeypatch):
    warmth = []
    original = evaluator_module.run_in_sandbox

    def recording(*args, **kwargs):
        result = original(*args, **kwargs)
        warmth.append(result.warm)
        return result

    monkeypatch.setattr(evaluator_module, "run_in_sandbox", recording)
    cold_engine = LocalEngine(tiny_evaluator(tmp_path / "cold"), devices=["cpu"], warm_child=False)
    warm_engine = LocalEngine(tiny_evaluator(tmp_path / "warm"), devices=["cpu"])
    try:
        cold = cold_engine.evaluate(TEMPLATE, ["r0"], trial={"seed": 2})
        warm_engine.evaluate(TEMPLATE, ["r0"], trial={"seed": 1})  # its cold start; the next child waits
        warm = warm_engine.evaluate(TEMPLATE, ["r0"], trial={"seed": 2})
    finally:
        warm_engine.shutdown()
    assert warmth == [False, False, True]
    assert cold.outcome == warm.outcome == "ok", (cold.artifacts.get("message"), warm.artifacts.get("message"))
    for field in ("final_eval_loss", "best_eval_loss", "n_params", "curve"):
        assert getattr(warm.rungs["r0"], field) == getattr(cold.rungs["r0"], field), field
    assert warm.artifacts["device"] == cold.artifacts["device"]


def test_jobs_that_keep_their_models_in_folders_of_their_own_still_get_a_warm_child(tmp_path, monkeypatch):
    """A run keeps each design's trained model in a staging folder of its own (controller/params.py); the jail
    grants the folder holding them, so consecutive jobs have one spawn and the pre-started child serves the next."""
    staging = tmp_path / "params" / ".staging"
    engine = LocalEngine(tiny_evaluator(tmp_path / "cache"), devices=["cpu"])
    try:
        results = []
        for i, source in enumerate((TEMPLATE, TEMPLATE.replace("math.sqrt(", "1.5 * math.sqrt(", 1))):
            folder = staging / f"job{i}"
            folder.mkdir(parents=True)
            results.append(engine.evaluate(source, ["r0"], params_dir=str(folder)))
    finally:
        engine.shutdown()
    assert [r.outcome for r in results] == ["ok", "ok"], [r.artifacts.get("message") for r in results]
    assert [r.artifacts["warm_child"] for r in results] == [False, True]
    assert all(any((staging / f"job{i}").iterdir()) for i in range(2))  # each kept its model in its own folder
