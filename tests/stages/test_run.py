"""A combination stage end to end over a hand-made base run folder, and its errors (missing base run, empty
pool, other ladder, a second start without --resume)."""

import hashlib
import json

import pytest
import yaml

from openevolve_genesys.evaluation.checks import check_parameter_budget
from openevolve_genesys.evaluation.program import framework_path
from openevolve_genesys.stages.pool import curate
from openevolve_genesys.stages.run import prepare_stage, run_stage
from openevolve_genesys.stages.settings import StageSettings
from openevolve_genesys.strict import ConfigError
from openevolve_genesys.training.model import CausalSelfAttention
from openevolve_genesys.training.profiles import get_profile
from run_configs import SHORT_TRAINING, run_config
from stage_programs import alternative

BASELINE_LOSS = {"r0": 7.0, "r1": 6.8, "r2": 6.5, "r3": 6.3}


def design_event(attempt, design_id, code, losses, n_params):
    return {"type": "design", "attempt": attempt, "id": design_id, "seed_id": "baseline", "unit": "Dynamics",
            "operator": f"Dynamics:{design_id}", "model": "offline-mutator", "class": "ok", "failure": None,
            "message": "", "code": code, "notes": [], "seconds": 1.0, "llm_seconds": 0.0, "learning_rate": None,
            "tune": None, "outcome": "ok", "artifacts": {}, "requeues": 0, "requeued": False, "quarantined": False,
            "rungs": {r: {"n_params": n_params[r], "final_eval_loss": loss} for r, loss in losses.items()},
            "metrics": {"functional_hash": design_id}}


@pytest.fixture
def base_run(tmp_path):
    """A base run folder as GenesysRun leaves it: config.yaml and history.jsonl (losses made up)."""
    config = run_config(tmp_path, "coefficient_dynamics", workers=1,
                        stages=[{"name": "hyb", "pool_size": 2, "max_iterations": 1}])
    folder = tmp_path / "base"
    folder.mkdir()
    (folder / "config.yaml").write_text(config.read_text())
    ladder = get_profile("smoke", SHORT_TRAINING)
    n = {r: counts[1] for r, counts in check_parameter_budget(CausalSelfAttention, ladder).items()}
    events = [
        {"type": "baseline", "id": "baseline", "code": framework_path("coefficient_dynamics").read_text(),
         "metrics": {}, "learning_rate": None, "tune": None,
         "rungs": {r: {"n_params": n[r], "final_eval_loss": loss} for r, loss in BASELINE_LOSS.items()}},
        # Verified at every rung and better: the pool's m0, and the stage's starting point.
        design_event(1, "retnet", alternative("coefficient_dynamics", "Dynamics", "retnet"),
                     {r: loss - 0.02 for r, loss in BASELINE_LOSS.items()}, n),
        # Seen at one rung only: a prior-dominated forecast, kept out of the pool however good it looks.
        design_event(2, "alibi", alternative("coefficient_dynamics", "Dynamics", "alibi"), {"r0": 6.5}, n),
    ]
    (folder / "history.jsonl").write_text("".join(json.dumps(e) + "\n" for e in events))
    return config, folder


def fingerprint(folder):
    return {p.relative_to(folder).as_posix(): hashlib.sha256(p.read_bytes()).hexdigest()
            for p in sorted(folder.rglob("*")) if p.is_file() and "stages" not in p.parts}


@pytest.mark.slow
def test_a_stage_runs_in_its_own_folder_with_its_own_budget(base_run):
    config, base = base_run
    before = fingerprint(base)
    best = run_stage(config, "hyb", base_dir=base, profile="smoke")
    stage = base / "stages" / "hyb"
    assert fingerprint(base) == before  # the base run is read, never written
    pool = json.loads((stage / "pool" / "pool.json").read_text())["members"]
    assert [(m["key"], m["design_id"]) for m in pool] == [("m0", "retnet"), ("base", "baseline")]
    info = json.loads((stage / "stage.json").read_text())
    assert info["initial"] == "m0" and info["depths"] == [2, 3] and info["profile"] == "smoke"
    assert yaml.safe_load((stage / "config.yaml").read_text())["genesys"]["framework"] == str(stage / "template.py")
    events = [json.loads(line) for line in (stage / "history.jsonl").read_text().splitlines()]
    baseline = events[0]
    assert baseline["type"] == "baseline" and baseline["code"] == (stage / "template.py").read_text()
    assert set(baseline["rungs"]) == set(BASELINE_LOSS)  # the stage's reference, trained for real
    assert all(r["final_eval_loss"] != BASELINE_LOSS[name] for name, r in baseline["rungs"].items())
    designs = [e for e in events if e["type"] == "design"]
    assert [e["attempt"] for e in designs] == [1] and designs[0]["operator"].split(":")[0] in (
        "Plan", "Gate", "HeadSplit")
    assert json.loads((stage / "state.json").read_text())["attempts"] == 1
    assert best is not None and (stage / "best_program.py").is_file()
    with pytest.raises(ConfigError, match="already holds stage 'hyb'; pass --resume"):
        run_stage(config, "hyb", base_dir=base, profile="smoke")


def test_errors_name_the_problem(base_run, tmp_path):
    config, base = base_run
    with pytest.raises(ConfigError, match="holds no run .*--from BASE_RUN_DIR"):
        run_stage(config, "hyb", base_dir=tmp_path / "nowhere")
    with pytest.raises(ConfigError, match="no stage 'hybrid'.*did you mean 'hyb'"):
        run_stage(config, "hybrid", base_dir=base)
    with pytest.raises(ConfigError, match="pool of .* is empty: none of its 2 valued designs has confidence >= 0.99"):
        curate(base, size=3, min_confidence=0.99)
    with pytest.raises(ConfigError, match="trained on another ladder than 'seed'"):
        prepare_stage(StageSettings(name="other"), base, profile="seed")
    assert not (base / "stages").exists()  # nothing is written before the pool and the ladder are known good


def test_the_command_line_reports_a_stage_mistake(base_run, capsys):
    from openevolve_genesys.cli import main

    config, base = base_run
    assert main([str(config), "--stage", "hybrid", "--from", str(base)]) == 2
    assert "no stage 'hybrid'" in capsys.readouterr().err
    assert main([str(config), str(config), "--stage", "hyb"]) == 2
