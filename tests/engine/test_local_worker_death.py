"""The local engine: an evaluation process killed mid-job is an infra fault, re-queued and never charged."""

import os
import signal
import subprocess
import sys
import time

import pytest

from processes import pids_with  # noqa: E402
from run_configs import ROOT, events, run_config

pytestmark = pytest.mark.slow


def _sandbox_children(run: subprocess.Popen) -> list[int]:
    """Sandbox children that got their job: a slot's warm child waiting for its next job has no job.json yet."""
    busy = []
    for pid in pids_with(b"_sandbox_child", ancestor=run.pid):
        try:
            if os.path.exists(os.path.join(os.readlink(f"/proc/{pid}/cwd"), "job.json")):
                busy.append(pid)
        except OSError:
            continue  # it ended meanwhile
    return busy


def test_a_killed_evaluation_is_requeued_and_the_run_completes(tmp_path):
    # A fitness cache of its own: with the shared one, earlier tests' identical designs are answered from the
    # cache without a child process, and there would be nothing to kill.
    config = run_config(tmp_path, "test_time_regression", workers=1, cache_path=str(tmp_path / "fitness.sqlite"))
    output = tmp_path / "run"
    run = subprocess.Popen([sys.executable, "-m", "openevolve_genesys.cli", str(config), "--iterations", "2",
                            "--output", str(output), "--profile", "smoke", "--log-level", "WARNING"],
                           cwd=ROOT, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True)
    deadline = time.monotonic() + 600
    while not any(e["type"] == "baseline" for e in events(output)):  # the baseline is done: the next is a design
        assert run.poll() is None and time.monotonic() < deadline, run.stdout.read() if run.poll() else "timeout"
        time.sleep(0.5)
    # The baseline's child may still be exiting, and the first design's child may already be running when the
    # baseline's line lands: kill the first child that was not there then, whichever job (a design or a
    # verification) it runs. Every evaluation takes well over the 2 s wait, so the kill lands mid-job.
    before = set(_sandbox_children(run))
    while not (fresh := set(_sandbox_children(run)) - before):
        assert run.poll() is None and time.monotonic() < deadline
        time.sleep(0.2)
    time.sleep(2)
    for pid in fresh:
        os.kill(pid, signal.SIGKILL)
    assert run.wait(timeout=900) == 0, run.stdout.read()
    jobs = [e for e in events(output) if e["type"] in ("design", "verify")]
    outline = [(e["type"], e["class"], e.get("attempt"), e["requeued"], e.get("rung")) for e in jobs]
    killed = [e for e in jobs if e["class"] == "infra"]
    assert len(killed) == 1 and killed[0]["requeued"] and killed[0].get("attempt") is None, outline
    # Nothing charged, nothing lost: two attempts in all, and the killed job is retried and succeeds.
    assert [e["attempt"] for e in jobs if e.get("attempt")] == [1, 2], outline
    retried = [e for e in jobs[jobs.index(killed[0]) + 1:] if _job_key(e) == _job_key(killed[0])]
    assert retried and retried[0]["class"] == "ok", outline


def _job_key(event: dict) -> tuple:
    """What a re-queued job keeps: a design keeps its seed, a verification its design and rung."""
    if event["type"] == "design":
        return ("design", event["seed_id"])
    return ("verify", event["design_id"], event["rung"])
