import os
import time
from pathlib import Path

import numpy as np
import pytest

from openevolve_genesys.evaluation.cache import CacheKey, FitnessCache
from openevolve_genesys.evaluation.sandbox import SandboxLimits, SandboxResult, run_in_sandbox

JOBS = Path(__file__).parent  # sandbox_jobs.py lives next to this file
ENV = {"PYTHONPATH": str(JOBS)}
FAST = SandboxLimits(wall_seconds=20, heartbeat_seconds=5, startup_seconds=10, memory_bytes=400 << 20,
                     max_output_bytes=2000)


def run(job: str, limits: SandboxLimits = FAST, **kwargs) -> SandboxResult:
    return run_in_sandbox(f"sandbox_jobs:{job}", kwargs, limits, env=ENV)


def gone(pid: int) -> bool:
    try:
        with open(f"/proc/{pid}/stat") as f:
            return f.read().rpartition(")")[2].split()[0] == "Z"  # killed, waiting to be reaped by init
    except FileNotFoundError:
        return True


def test_ok_value_heartbeats_and_working_directory(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("GENESYS_TEST_API_KEY", "do-not-leak")
    seen = []
    result = run_in_sandbox("sandbox_jobs:returns_value", {"x": 21}, FAST, env=ENV, on_heartbeat=seen.append)
    assert (result.outcome, result.reason, result.value["double"]) == ("ok", "ok", 42)
    assert seen == [{"step": 0}, {"step": 1}, {"step": 2}]
    assert result.heartbeats == 3 and result.last_progress == {"step": 2}
    assert "garbage on stdout" in result.stdout  # stdout is captured, never parsed
    workdir = result.value["cwd"]
    assert result.value["home"] == workdir and result.value["tmp"] == os.path.join(workdir, "tmp")
    assert not os.path.exists(workdir)  # removed afterwards
    assert result.value["secret_visible"] is False


def test_dataclass_progress_arrives_as_dict() -> None:
    result = run("sends_dataclass_progress")
    assert result.outcome == "ok" and result.last_progress == {"rung": "r0", "step": 10, "eval_loss": None}


def test_exceptions_are_the_designs_fault() -> None:
    result = run("raises")
    assert (result.outcome, result.reason) == ("invalid", "exception")
    assert result.message.startswith("ValueError: the mixer returned shape (2, 3)")
    assert "sandbox_jobs.py" in result.message and "_sandbox_child" not in result.message

    result = run("design_invalid")
    assert (result.outcome, result.reason) == ("invalid", "design_invalid")
    assert result.value == {"check": "causal", "max_leak": 0.5}
    assert "causality check failed" in result.message


@pytest.mark.parametrize("job, expected", [("calls_sys_exit", "sys.exit(3)"), ("calls_os_exit", "exit status 0")])
def test_ending_the_process_is_invalid_with_a_clear_message(job: str, expected: str) -> None:
    result = run(job)
    assert (result.outcome, result.reason) == ("invalid", "exit")
    assert expected in result.message


def test_killed_by_signal_is_a_crash() -> None:
    result = run("kills_itself")
    assert (result.outcome, result.reason) == ("crashed", "signal")
    assert "SIGKILL" in result.message


def test_silence_before_and_after_the_first_heartbeat_is_a_stall() -> None:
    start = time.monotonic()
    result = run("spins_silently", SandboxLimits(wall_seconds=30, heartbeat_seconds=30, startup_seconds=1.0))
    assert (result.outcome, result.reason) == ("timeout", "stall") and "startup" in result.message
    assert time.monotonic() - start < 5

    start = time.monotonic()
    result = run("spins_silently", SandboxLimits(wall_seconds=30, heartbeat_seconds=0.5, startup_seconds=20),
                 beats_first=1)
    assert (result.outcome, result.reason, result.heartbeats) == ("timeout", "stall", 1)
    assert time.monotonic() - start < 5  # the short window applied after the first heartbeat


def test_heartbeats_do_not_extend_the_wall_limit() -> None:
    result = run("beats_forever", SandboxLimits(wall_seconds=1.5, heartbeat_seconds=1, startup_seconds=5))
    assert (result.outcome, result.reason) == ("timeout", "wall")
    assert result.heartbeats > 5 and 1.5 <= result.seconds < 5


def test_cpu_limit() -> None:
    result = run("burns_cpu", SandboxLimits(wall_seconds=20, heartbeat_seconds=5, startup_seconds=10, cpu_seconds=1))
    assert (result.outcome, result.reason) == ("timeout", "cpu") and "CPU-time" in result.message


def test_allocating_twice_the_limit_crashes_with_memory() -> None:
    result = run("allocates", n_bytes=2 * FAST.memory_bytes)
    assert (result.outcome, result.reason) == ("crashed", "memory")
    assert "MemoryError" in result.message


def test_memory_spread_over_forked_processes_is_caught_by_the_poll() -> None:
    # Each process stays under the per-process limit; together they exceed it.
    result = run("forks_allocators", n_children=3, n_bytes=int(0.5 * FAST.memory_bytes))
    assert (result.outcome, result.reason) == ("crashed", "memory")
    assert "process tree used" in result.message and result.peak_memory_bytes > FAST.memory_bytes


def test_grandchildren_are_killed_even_after_setsid() -> None:
    result = run("forks_sleepers")
    assert result.outcome == "ok" and len(result.value) == 2
    deadline = time.monotonic() + 5
    while not all(map(gone, result.value)) and time.monotonic() < deadline:
        time.sleep(0.05)
    assert all(map(gone, result.value))


def test_huge_output_is_truncated_keeping_head_and_tail() -> None:
    result = run("prints_a_lot", n_bytes=10 << 20)
    assert result.outcome == "ok" and result.value == "done"
    assert len(result.stdout) < FAST.max_output_bytes + 100 and len(result.stderr) < FAST.max_output_bytes + 100
    assert result.stdout.startswith("H" * 100) and result.stdout.endswith("T" * 100)
    assert "bytes truncated" in result.stdout


def test_confinement(tmp_path: Path) -> None:
    outside = tmp_path / "escaped.txt"
    result = run("tries_to_escape", outside_path=str(outside))
    assert result.outcome == "ok" and result.value["write_inside"] == "succeeded"
    assert "network access is disabled" in result.value["network"]
    if not result.confinement.startswith("landlock"):
        pytest.skip(f"no kernel jail on this machine: {result.confinement}")
    assert result.value["write_outside"] == "PermissionError" and not outside.exists()
    assert result.value["loopback_tcp"] == "PermissionError"  # refused by the kernel, not just unanswered
    if "no signals" in result.confinement:
        assert result.value["signal_parent"] == "PermissionError"


def test_writable_paths_let_the_job_share_a_cache(tmp_path: Path) -> None:
    shared = tmp_path / "shared"
    shared.mkdir()
    path = str(shared / "fitness.sqlite")
    result = run_in_sandbox("sandbox_jobs:writes_cache", {"path": path}, FAST, env=ENV, writable_paths=[shared])
    assert (result.outcome, result.value) == ("ok", 1)
    assert FitnessCache(path).get(CacheKey("f", "smoke", "r0", "data", "train")) == {"loss": 1.5}
    elsewhere = tmp_path / "elsewhere"
    elsewhere.mkdir()
    result = run("writes_cache", path=str(elsewhere / "fitness.sqlite"))
    if result.confinement.startswith("landlock"):
        assert (result.outcome, result.reason) == ("invalid", "exception") and "unable to open database" in result.message
    with pytest.raises(FileNotFoundError, match="create them"):
        run_in_sandbox("sandbox_jobs:writes_cache", {"path": path}, FAST, writable_paths=[tmp_path / "missing"])


def test_infrastructure_failures_are_crashes_or_errors() -> None:
    result = run_in_sandbox("sandbox_jobs_missing:job", {}, FAST, env=ENV)
    assert (result.outcome, result.reason) == ("crashed", "startup") and "ModuleNotFoundError" in result.message
    result = run("returns_unserialisable")
    assert (result.outcome, result.reason) == ("crashed", "protocol")
    with pytest.raises(ValueError, match="package.module:function"):
        run_in_sandbox("sandbox_jobs.returns_value", {}, FAST)
    with pytest.raises(TypeError, match="JSON-serialisable"):
        run_in_sandbox("sandbox_jobs:returns_value", {"x": object()}, FAST)


def test_on_heartbeat_errors_propagate_and_the_child_is_killed() -> None:
    pids = []

    def boom(progress: dict) -> None:
        pids.append(progress["pid"])
        raise RuntimeError("evaluator bug")

    with pytest.raises(RuntimeError, match="evaluator bug"):
        run_in_sandbox("sandbox_jobs:beats_forever", {}, FAST, env=ENV, on_heartbeat=boom)
    assert len(pids) == 1 and gone(pids[0])


def test_jax_runs_inside_the_jail_and_memory_limit() -> None:
    result = run("trains_jax", SandboxLimits(wall_seconds=120, heartbeat_seconds=60, startup_seconds=60,
                                             memory_bytes=4 << 30))
    x = np.arange(64.0).reshape(8, 8)
    assert (result.outcome, result.value, result.heartbeats) == ("ok", float((x @ x.T).sum()), 1)
