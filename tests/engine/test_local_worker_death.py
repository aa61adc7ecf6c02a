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
    # The baseline's child may still be exiting and a design may be a cache hit with no child at all:
    # wait for a child that was not there when the baseline ended, and kill that one.
    before = set(_sandbox_children(run))
    while not (fresh := set(_sandbox_children(run)) - before):
        assert run.poll() is None and time.monotonic() < deadline
        time.sleep(0.2)
    time.sleep(2)
    for pid in fresh:
        os.kill(pid, signal.SIGKILL)
    assert run.wait(timeout=900) == 0, run.stdout.read()
    designs = [e for e in events(output) if e["type"] == "design"]
    killed = [e for e in designs if e["class"] == "infra"]
    assert len(killed) == 1 and (killed[0]["requeued"], killed[0]["attempt"]) == (True, None), designs
    assert [e["attempt"] for e in designs if e["attempt"]] == [1, 2]
    retried = designs[designs.index(killed[0]) + 1]
    assert retried["seed_id"] == killed[0]["seed_id"] and retried["attempt"] is not None
