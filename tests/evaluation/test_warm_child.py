"""The warm child (sandbox.WarmSlot): a child started before its job serves that one job, under the limits and in
the environment a cold child would have had, and a waiting child never outlives its slot or its parent."""

import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest

from openevolve_genesys.evaluation.sandbox import SandboxLimits, SandboxResult, WarmSlot, run_in_sandbox

JOBS = Path(__file__).parent  # sandbox_jobs.py
ENV = {"PYTHONPATH": str(JOBS)}
FAST = SandboxLimits(wall_seconds=20, heartbeat_seconds=5, startup_seconds=10, memory_bytes=400 << 20,
                     cpu_seconds=30, max_output_bytes=2000)
ROOT = Path(__file__).resolve().parents[2]


def run(job: str, limits: SandboxLimits = FAST, **kwargs) -> SandboxResult:
    return run_in_sandbox(f"sandbox_jobs:{job}", kwargs, limits, env=ENV)


def gone(pid: int, within: float = 5.0) -> bool:
    """The process has ended (a zombie counts: it runs nothing and holds no memory) within ``within`` seconds."""
    deadline = time.monotonic() + within
    while True:
        try:
            with open(f"/proc/{pid}/stat") as f:
                if f.read().rpartition(")")[2].split()[0] == "Z":
                    return True
        except FileNotFoundError:
            return True
        if time.monotonic() > deadline:
            return False
        time.sleep(0.05)


def wait_for_child(slot: WarmSlot) -> int:
    pid = slot.waiting_pid
    assert pid is not None, "no warm child waits after a job ran in the slot"
    return pid


@pytest.fixture
def slot():
    slot = WarmSlot()
    yield slot
    slot.close()


def test_a_warm_child_serves_one_job_then_exits_and_the_next_job_gets_a_fresh_one(slot):
    with slot.active():
        first = run("reports_process")
        waiting = wait_for_child(slot)
        second = run("reports_process")
        after = wait_for_child(slot)
    assert (first.outcome, first.warm) == ("ok", False)  # nothing waited for the first job
    assert (second.outcome, second.warm) == ("ok", True)
    assert second.value["pid"] == waiting  # the job ran in the child that was waiting
    assert gone(waiting) and gone(first.value["pid"])  # neither serves another job
    assert after not in (waiting, first.value["pid"])
    assert not os.path.exists(second.value["cwd"])


def _normalised(report: dict) -> dict:
    """A child's own report with its private directory and sandbox marker taken out: what must not differ."""
    workdir = report["cwd"]
    env = {k: v.replace(workdir, "<workdir>") for k, v in report["env"].items() if k != "GENESYS_SANDBOX_ID"}
    return {**report, "pid": None, "cwd": None, "env": env, "argv": [a.replace(workdir, "<workdir>")
                                                                     for a in report["argv"]]}


def test_a_warm_child_has_the_limits_and_environment_of_a_cold_one(slot):
    cold = run("reports_process")
    with slot.active():
        run("reports_process")
        time.sleep(0.5)  # the waiting child has long confined itself before its job arrives
        warm = run("reports_process")
    assert (cold.outcome, warm.outcome, warm.warm) == ("ok", "ok", True)
    assert _normalised(warm.value) == _normalised(cold.value)
    limits = warm.value["limits"]
    assert limits["RLIMIT_DATA"] == [FAST.memory_bytes] * 2 and limits["RLIMIT_CPU"][0] == FAST.cpu_seconds
    assert warm.value["oom"] == "1000" and warm.value["session_leader"] and warm.value["stdin"] == "/dev/null"
    assert (warm.stdout, warm.confinement) == (cold.stdout, cold.confinement)


@pytest.mark.parametrize("job, limits, kwargs, expected", [
    ("spins_silently", FAST, {}, ("timeout", "stall")),
    ("beats_forever", SandboxLimits(wall_seconds=2, heartbeat_seconds=5, startup_seconds=10), {}, ("timeout", "wall")),
    ("burns_cpu", SandboxLimits(wall_seconds=20, heartbeat_seconds=5, startup_seconds=10, cpu_seconds=1), {},
     ("timeout", "cpu")),
    ("allocates", FAST, {"n_bytes": 800 << 20}, ("crashed", "memory")),
], ids=["stall", "wall", "cpu", "memory"])
def test_the_limits_still_apply_to_a_warm_child(slot, job, limits, kwargs, expected):
    with slot.active():
        assert run("returns_value", limits, x=1).outcome == "ok"
        waiting = wait_for_child(slot)
        result = run(job, limits, **kwargs)
    assert result.warm and (result.outcome, result.reason) == expected, result.message
    assert gone(waiting)


def test_time_spent_waiting_counts_for_no_limit(slot):
    limits = SandboxLimits(wall_seconds=3, heartbeat_seconds=2, startup_seconds=3, cpu_seconds=2)
    with slot.active():
        run("returns_value", limits, x=1)
        time.sleep(4)  # longer than the wall-clock and start-up limits
        result = run("returns_value", limits, x=2)
    assert (result.outcome, result.warm, result.value["double"]) == ("ok", True, 4)
    assert result.seconds < 3


def test_a_waiting_child_started_for_other_limits_or_environment_is_not_used(slot, monkeypatch):
    with slot.active():
        run("returns_value", x=1)
        first = wait_for_child(slot)
        other = run("reports_process", SandboxLimits(wall_seconds=20, heartbeat_seconds=5, startup_seconds=10,
                                                     memory_bytes=300 << 20))
        assert gone(first) and not other.warm  # discarded: it was limited to 400 MiB, not 300
        assert other.value["limits"]["RLIMIT_DATA"] == [300 << 20] * 2
        second = wait_for_child(slot)
        monkeypatch.setenv("GENESYS_WARM_TEST", "changed after the child started")
        changed = run("reports_process")
        assert gone(second) and not changed.warm
        assert changed.value["env"]["GENESYS_WARM_TEST"] == "changed after the child started"
        assert run("reports_process").warm  # the same spawn again: the waiting child serves it


def test_a_warm_child_killed_while_waiting_is_a_crash_and_the_next_job_gets_a_fresh_child(slot):
    with slot.active():
        run("returns_value", x=1)
        waiting = wait_for_child(slot)
        os.kill(waiting, signal.SIGKILL)
        assert gone(waiting)
        crashed = run("returns_value", x=2)
        fresh = wait_for_child(slot)
        again = run("returns_value", x=3)
    # As for a cold child killed by a signal (test_sandbox.py): crashed, which the accounting classes as infra.
    assert (crashed.outcome, crashed.reason, crashed.warm) == ("crashed", "signal", True), crashed.message
    assert fresh != waiting and (again.outcome, again.value["double"], again.warm) == ("ok", 6, True)


def test_a_warm_child_that_cannot_start_fails_as_a_cold_one_does(slot):
    cold = run_in_sandbox("no_such_module:job", {}, FAST, env=ENV)
    with slot.active():
        run_in_sandbox("no_such_module:job", {}, FAST, env=ENV)
        waiting = wait_for_child(slot)
        assert gone(waiting)  # it failed its import and exited while waiting
        warm = run_in_sandbox("no_such_module:job", {}, FAST, env=ENV)
    assert (cold.outcome, cold.reason) == (warm.outcome, warm.reason) == ("crashed", "startup")
    assert warm.warm and "No module named 'no_such_module'" in warm.message


def test_closing_the_slot_kills_the_waiting_child_and_removes_its_directory(slot):
    with slot.active():
        run("returns_value", x=1)
    waiting = wait_for_child(slot)
    workdir = os.readlink(f"/proc/{waiting}/cwd")
    slot.close()
    assert gone(waiting) and not os.path.exists(workdir)
    with slot.active():  # a closed slot starts no more children
        assert run("returns_value", x=1).outcome == "ok"
    assert slot.waiting_pid is None


PARENT = """
import os, sys, time
from openevolve_genesys.evaluation.sandbox import WarmSlot, run_in_sandbox
slot = WarmSlot()
with slot.active():
    assert run_in_sandbox("sandbox_jobs:returns_value", {"x": 1}, env={"PYTHONPATH": sys.argv[2]}).outcome == "ok"
pid = slot.waiting_pid
print(pid, os.readlink(f"/proc/{pid}/cwd"), flush=True)
if sys.argv[1] == "fork":
    if os.fork() == 0:
        sys.exit(0)  # a forked copy runs the inherited exit handlers: they must leave the original's child alone
    os.wait()
    print("alive" if os.path.exists(f"/proc/{pid}/cwd") and slot.waiting_pid == pid else "killed", flush=True)
if sys.argv[1] == "wait":
    time.sleep(120)
"""


@pytest.mark.parametrize("ending", ["exit", "sigint", "sigkill", "fork"])
def test_a_never_used_warm_child_ends_with_its_parent(ending):
    mode = ending if ending in ("exit", "fork") else "wait"
    parent = subprocess.Popen([sys.executable, "-c", PARENT, mode, str(JOBS)],
                              cwd=ROOT, env={**os.environ, "PYTHONPATH": str(ROOT)}, stdout=subprocess.PIPE,
                              stderr=subprocess.PIPE, text=True)
    try:
        line = parent.stdout.readline()
        assert line, parent.stderr.read()
        pid, workdir = int(line.split()[0]), line.split()[1]
        if ending == "fork":
            assert parent.stdout.readline().strip() == "alive"
        elif ending != "exit":
            os.kill(parent.pid, signal.SIGINT if ending == "sigint" else signal.SIGKILL)
        parent.wait(timeout=30)
    finally:
        if parent.poll() is None:
            parent.kill()
            parent.wait()
    assert gone(pid, within=10)
    if ending == "sigkill":
        # A parent killed outright cannot clean up: the waiting child, reading the end of its job pipe, empties its
        # directory (the jail keeps it from removing the directory itself).
        assert os.listdir(workdir) == []
        os.rmdir(workdir)
    assert not os.path.exists(workdir)


def test_the_evaluation_jobs_imports_start_no_jax_backend():
    # A warm child waits next to the slot's running job, on the same device: had its imports started a backend,
    # it would hold accelerator memory (JAX preallocates most of a GPU) that the running job needs.
    result = run("jax_backends_after_job_imports", SandboxLimits(wall_seconds=120, startup_seconds=120,
                                                                 memory_bytes=4 << 30))
    assert (result.outcome, result.value) == ("ok", []), result.message
