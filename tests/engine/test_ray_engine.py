"""The Ray engine on a local 2-CPU Ray cluster: an evolution through it, and a worker killed mid-job."""

import json
import os
import signal
import threading
import time

import pytest

ray = pytest.importorskip("ray", reason="the Ray engine is an optional extra: pip install -e '.[ray]'")

import openevolve_genesys  # noqa: E402
from openevolve_genesys.engine.base import EngineSettings  # noqa: E402
from openevolve_genesys.engine.ray_engine import RayEngine  # noqa: E402
from openevolve_genesys.evaluation.evaluator import ScalingLawEvaluator  # noqa: E402
from openevolve_genesys.evaluation.sandbox import SandboxLimits  # noqa: E402
from openevolve_genesys.evaluation.settings import EvaluatorSettings  # noqa: E402
from processes import pids_with  # noqa: E402
from run_configs import events, run_config  # noqa: E402

pytestmark = pytest.mark.slow
TINY = {"vocab_size": 512, "rungs": [{"d_model": 16, "n_layers": 1, "n_heads": 2}],
        "train": {"seq_len": 32, "batch_size": 8, "steps": 200, "eval_interval": 100, "chunk_steps": 20,
                  "eval_tokens": 1024, "warmup_steps": 5}}


@pytest.fixture(scope="module")
def local_cluster():
    ray.init(num_cpus=2, include_dashboard=False, log_to_driver=False,
             runtime_env={"env_vars": {"GENESYS_CACHE_DIR": os.environ["GENESYS_CACHE_DIR"]}})
    yield
    ray.shutdown()


def _task_workers() -> list[int]:
    return pids_with(b"ray::evaluate_in_worker", ancestor=os.getpid())  # workers of our own local cluster


def test_a_worker_killed_mid_job_is_replaced_and_the_job_completes(local_cluster, tmp_path):
    settings = EvaluatorSettings(profile="smoke", profile_overrides=TINY,
                                 data={"source": "stdlib", "max_corpus_bytes": 300_000},
                                 cache_path=str(tmp_path / "fitness.sqlite"),
                                 sandbox=SandboxLimits(wall_seconds=300, heartbeat_seconds=60, startup_seconds=120))
    engine = RayEngine(EngineSettings(kind="ray", max_retries=3), ScalingLawEvaluator(settings), workers=1)
    template = ScalingLawEvaluator(settings).template.replace("math.sqrt(", "1.25 * math.sqrt(", 1)
    result = {}
    job = threading.Thread(target=lambda: result.update(evaluation=engine.evaluate(template, ["r0"])))
    job.start()
    deadline = time.monotonic() + 120
    # Mid-job: a task worker has started its sandboxed evaluation child (every evaluation here trains for seconds).
    while not (victims := [pid for pid in _task_workers() if pids_with(b"_sandbox_child", ancestor=pid)]):
        assert time.monotonic() < deadline, "no Ray task started a sandboxed evaluation"
        time.sleep(0.2)
    for pid in victims:
        os.kill(pid, signal.SIGKILL)
    job.join(timeout=600)
    assert result["evaluation"].outcome == "ok", result["evaluation"].artifacts.get("message")
    assert not set(victims) & set(_task_workers())  # it finished in another worker process


def test_an_offline_evolution_runs_through_ray(local_cluster, tmp_path):
    config = run_config(tmp_path, "matrix_mixer", workers=2, engine={"kind": "ray", "max_retries": 1})
    output = tmp_path / "run"
    best = openevolve_genesys.run(str(config), iterations=2, output=str(output), profile="smoke")
    log = events(output)
    designs = [e for e in log if e["type"] == "design"]
    assert [e["attempt"] for e in designs if e["attempt"]] == [1, 2]
    assert any(e["type"] == "verify" and e["outcome"] == "ok" and e["rung"] != "r0" for e in log)
    assert best is not None and json.loads((output / "summary.json").read_text())["charged_attempts"] == 2
