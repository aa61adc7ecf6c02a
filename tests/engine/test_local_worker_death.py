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
    return pids_with(b"_sandbox_child", ancestor=run.pid)


def test_a_killed_evaluation_is_requeued_and_the_run_completes(tmp_path):
    config = run_config(tmp_path, "test_time_regression", workers=1)
    output = tmp_path / "run"
    run = subprocess.Popen([sys.executable, "-m", "openevolve_genesys.cli", str(config), "--iterations", "2",
                            "--output", str(output), "--profile", "smoke", "--log-level", "WARNING"],
                           cwd=ROOT, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True)
    deadline = time.monotonic() + 600
    while not any(e["type"] == "baseline" for e in events(output)):  # the baseline is done: the next is a design
        assert run.poll() is None and time.monotonic() < deadline, run.stdout.read() if run.poll() else "timeout"
        time.sleep(0.5)
    while not _sandbox_children(run):
        assert run.poll() is None and time.monotonic() < deadline
        time.sleep(0.2)
    time.sleep(2)
    for pid in _sandbox_children(run):
        os.kill(pid, signal.SIGKILL)
    assert run.wait(timeout=900) == 0, run.stdout.read()
    designs = [e for e in events(output) if e["type"] == "design"]
    killed = designs[0]
    assert (killed["class"], killed["requeued"], killed["attempt"]) == ("infra", True, None), killed["message"]
    assert [e["attempt"] for e in designs if e["attempt"]] == [1, 2]
    assert designs[1]["seed_id"] == killed["seed_id"]
