"""End-to-end offline evolutions on the (shortened) smoke ladder: designs, verifications, best program, resume."""

import json
import os
import signal
import subprocess
import sys
import time

import pytest

import openevolve_genesys
from openevolve_genesys.config import load_run_config
from openevolve_genesys.controller.run import GenesysRun
from openevolve_genesys.evaluation.program import FRAMEWORKS, framework_path
from run_configs import ROOT, events, run_config

pytestmark = pytest.mark.slow


# One framework runs in tune mode (checked by _assert_tuned), so CI pays for one run, not two, per framework.
TUNED = {"coefficient_dynamics": {"enabled": True, "grid": [1.0, 3.0], "steps_fraction": 0.5}}


@pytest.mark.parametrize("framework", FRAMEWORKS)
def test_an_offline_run_designs_verifies_and_keeps_the_best(tmp_path, framework):
    output = tmp_path / "run"
    tune = {"tune": TUNED[framework]} if framework in TUNED else {}
    config = run_config(tmp_path, framework, workers=2, baseline_seeds=3, **tune)
    best = openevolve_genesys.run(str(config), iterations=3, output=str(output), profile="smoke")
    log = events(output)
    assert [e["type"] for e in log].count("baseline") == 1
    # The baseline at 3 seeds (the other two trained together in one job): three different losses per rung.
    baseline = next(e for e in log if e["type"] == "baseline")
    assert all(len(set(r["seed_losses"])) == 3 for r in baseline["rungs"].values())
    designs = [e for e in log if e["type"] == "design"]
    assert [e["attempt"] for e in designs] == [1, 2, 3]
    template = framework_path(framework).read_text()
    evaluated = [e for e in designs if e["outcome"] == "ok"]
    assert evaluated and all(e["code"] != template and ":" in e["operator"] for e in evaluated)
    # Every evaluated design has its smallest rung; verification took some beyond it.
    checkpoint = max((output / "checkpoints").glob("checkpoint_*"), key=lambda p: int(p.name.split("_")[1]))
    records = json.loads(checkpoint.joinpath("genesys_records.json").read_text())["records"]
    by_id = {r["id"]: r for r in records}
    assert all("r0" in by_id[e["id"]]["rungs"] for e in evaluated)
    assert any(len(r["rungs"]) >= 2 for r in records if r["id"] != "baseline")
    assert any(e["type"] == "verify" and e["rung"] != "r0" and e["outcome"] == "ok" for e in log)
    # The best design by utility is written out.
    assert best is not None and best.id in by_id
    best_code = template if best.id == "baseline" else next(e["code"] for e in designs if e["id"] == best.id)
    assert (output / "best_program.py").read_text() == best_code
    assert json.loads((output / "best_program_info.json").read_text())["id"] == best.id
    # Each design's prompt and answer are in OpenEvolve's Program.prompts, as its visualizer reads them.
    for e in evaluated:
        prompt = json.loads((checkpoint / "programs" / f"{e['id']}.json").read_text())["prompts"]["diff_user"]
        assert prompt["system"] and prompt["user"] and f"Operator: {e['operator']}" in prompt["responses"][0]
    # Every valuation names the ladder's data policy, down to summary.json: the short smoke ladder's fixed steps.
    valuation = json.loads((output / "summary.json").read_text())["valuation"]
    assert "at fixed steps (60 steps, 61,440 tokens at every rung" in valuation["forecasts"]
    if tune:
        _assert_tuned(config, output)
    _assert_timed(log, output)


def _assert_timed(log, output):
    """Every evaluated job says where its seconds went; summary.json sums them."""
    timed = [e for e in log if e["type"] in ("baseline", "verify") or (e["type"] == "design" and e["code"])]
    assert timed and all(e["train_seconds"] == e["timing"]["train"] for e in timed)
    assert all(e["timing"]["train"] > 0 for e in timed if e.get("outcome", "ok") == "ok" and
               any(r.get("cache_hit") is None for r in e["rungs"].values()))
    total = json.loads((output / "summary.json").read_text())["time"]
    assert total["train"] == pytest.approx(sum(e["timing"]["train"] for e in log if e.get("timing")), abs=0.01)
    assert total["llm"] > 0 and total["startup"] > 0


def _start(config, output, *flags):
    command = [sys.executable, "-m", "openevolve_genesys.cli", str(config), "--iterations", "3",
               "--output", str(output), "--profile", "smoke", "--log-level", "WARNING", *flags]
    return subprocess.Popen(command, cwd=ROOT, start_new_session=True, stdout=subprocess.PIPE,
                            stderr=subprocess.STDOUT, text=True)


def _wait_for_designs(process, output, count, timeout=600):
    deadline = time.monotonic() + timeout
    while sum(e["type"] == "design" for e in events(output)) < count:
        assert process.poll() is None, f"the run ended early:\n{process.stdout.read()}"
        assert time.monotonic() < deadline, "no design was recorded in time"
        time.sleep(0.5)


def test_ctrl_c_saves_and_kill_9_loses_nothing_on_resume(tmp_path):
    config = run_config(tmp_path, "coefficient_dynamics", workers=1)
    output = tmp_path / "run"

    first = _start(config, output)
    _wait_for_designs(first, output, 1)
    first.send_signal(signal.SIGINT)
    assert first.wait(timeout=120) == 130
    assert json.loads((output / "state.json").read_text())["attempts"] >= 1
    assert list((output / "checkpoints").glob("checkpoint_*/genesys_records.json"))

    second = _start(config, output)  # no --resume: refused, the run is kept
    assert second.wait(timeout=120) == 2 and "--resume" in second.stdout.read()

    third = _start(config, output, "--resume")
    before = sum(e["type"] == "design" for e in events(output))
    _wait_for_designs(third, output, before + 1)
    os.killpg(third.pid, signal.SIGKILL)
    third.wait(timeout=60)
    finished = events(output)

    openevolve_genesys.run(str(config), iterations=3, output=str(output), resume=True, profile="smoke")
    after = events(output)
    assert after[:len(finished)] == finished  # every finished evaluation survived kill -9
    assert [e["type"] for e in after].count("baseline") == 1
    assert [e["attempt"] for e in after if e["type"] == "design"] == [1, 2, 3]


def _assert_tuned(config, output):
    """Tune mode: the baseline and each design at their own swept rate, compared each at its own; sweeps
    are counted apart from attempts and a resume compares with the same baseline."""
    log = events(output)

    def best_trial_rate(sweep):
        return min((t for t in sweep["trials"] if t["outcome"] == "ok"), key=lambda t: t["loss"])["learning_rate"]

    baseline = next(e for e in log if e["type"] == "baseline")
    base_lr = baseline["learning_rate"]
    assert baseline["tune"]["tuned"] and len(baseline["tune"]["trials"]) == 2
    assert base_lr == baseline["metrics"]["learning_rate"] == best_trial_rate(baseline["tune"])
    designs = [e for e in log if e["type"] == "design"]
    assert [e["attempt"] for e in designs] == [1, 2, 3]  # sweeps are not attempts
    evaluated = [e for e in designs if e["outcome"] == "ok"]
    assert evaluated
    for design in evaluated:
        assert design["learning_rate"] == design["metrics"]["learning_rate"] == best_trial_rate(design["tune"])
        assert design["metrics"]["baseline_learning_rate"] == base_lr  # compared with the tuned baseline
    rates = {e["id"]: e["learning_rate"] for e in evaluated}
    verified = [e for e in log if e["type"] == "verify" and e["outcome"] == "ok"]
    assert verified and all(e["metrics"]["learning_rate"] == rates[e["design_id"]] for e in verified)
    assert all(e["metrics"]["baseline_learning_rate"] == base_lr for e in verified)
    trained = sum(e["tune"]["trained"] for e in [baseline, *designs] if e.get("tune"))
    assert json.loads((output / "summary.json").read_text())["tuning"]["trials"] == trained > 0
    assert json.loads((output / "state.json").read_text())["tune"]["trained"] == trained

    resumed = GenesysRun(load_run_config(config), output)  # a resume compares with the same baseline
    assert resumed._replay()
    assert resumed.evaluator.baseline_learning_rate == base_lr and resumed.tune_budget.trained == trained
