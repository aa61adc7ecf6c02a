"""`openevolve report` on synthetic run folders: every file, the summary's content, and clear errors."""

import json
from pathlib import Path

import pytest

from openevolve_genesys.report.cli import build_report, main
from openevolve_genesys.report.load import RunFolderError, load_run
from openevolve_genesys.report.plots import utility_progress
from openevolve_genesys.report.summary import operator_stats, render_summary
from openevolve_genesys.report.cache_savings import cache_savings
from openevolve_genesys.selection.records import DesignRecord, RungRecord

ROOT = Path(__file__).resolve().parents[2]
TEMPLATE = (ROOT / "frameworks" / "coefficient_dynamics.py").read_text()
CHILD = TEMPLATE.replace("logits * (1.0 / math.sqrt", "logits * (0.5 / math.sqrt")
GRANDCHILD = CHILD.replace("return q, k\n", "return jax.nn.relu(q), jax.nn.relu(k)\n", 1)
RUNGS = {"r0": 25_000, "r1": 57_000, "r2": 150_000}


def rungs(losses, hit=None):
    return {name: {"n_params": RUNGS[name], "final_eval_loss": loss, "train_seconds": 4.0, "compile_seconds": 1.0,
                   "cache_hit": hit, "curve": []} for name, loss in losses.items()}


def record(design_id, parent, operator, losses, utility, confidence, iteration):
    return DesignRecord(id=design_id, parent_id=parent, code_hash="x", iteration=iteration,
                        operator={"operator": operator} if parent else {"operator": "baseline"}, outcome="ok",
                        rungs={n: RungRecord(n, RUNGS[n], loss) for n, loss in losses.items()},
                        utility=utility, confidence=confidence,
                        forecast={"low": utility - 0.1, "high": utility + 0.1})


def make_run(folder: Path, *, best_info: bool = True) -> Path:
    """Baseline; child (2 rungs, confident); grandchild (1 rung, higher utility, not confident); an invalid
    attempt; a stalled attempt that was re-queued; one verification."""
    base = {"r0": 6.0, "r1": 5.6, "r2": 5.3}
    events = [
        {"type": "baseline", "id": "baseline", "code": TEMPLATE, "rungs": rungs(base), "metrics": {}},
        {"type": "design", "attempt": 1, "id": "child-0001", "seed_id": "baseline", "unit": "Coefficients",
         "operator": "Coefficients:half", "model": "m", "class": "ok", "code": CHILD, "outcome": "ok",
         "rungs": rungs({"r0": 5.95}), "metrics": {"functional_hash": "h-child"}, "seconds": 5.0},
        {"type": "design", "attempt": None, "id": "stall-0001", "seed_id": "baseline", "unit": "Readout",
         "operator": None, "model": "m", "class": "stalled", "code": None, "outcome": "stall", "rungs": {},
         "metrics": {}, "seconds": 30.0, "requeued": True, "quarantined": False},
        {"type": "verify", "design_id": "child-0001", "rung": "r1", "outcome": "ok", "class": "ok",
         "rungs": rungs({"r1": 5.55}, hit="code"), "metrics": {}, "seconds": 0.5},
        {"type": "design", "attempt": 2, "id": "grand-0001", "seed_id": "child-0001", "unit": "FeatureMap",
         "operator": "FeatureMap:relu", "model": "m", "class": "ok", "code": GRANDCHILD, "outcome": "ok",
         "rungs": rungs({"r0": 5.9}), "metrics": {"functional_hash": "h-grand"}, "seconds": 6.0},
        {"type": "design", "attempt": 3, "id": "bad-0001", "seed_id": "baseline", "unit": "Dynamics",
         "operator": "Dynamics:broken", "model": "m", "class": "invalid", "code": TEMPLATE + "\nbroken(\n",
         "outcome": "invalid", "rungs": {}, "metrics": {}, "seconds": 1.0},
    ]
    records = [record("baseline", None, "baseline", base, 0.0, 0.8, 0),
               record("child-0001", "baseline", "Coefficients:half", {"r0": 5.95, "r1": 5.55}, 0.03, 0.6, 1),
               record("grand-0001", "child-0001", "FeatureMap:relu", {"r0": 5.9}, 0.05, 0.01, 2),
               DesignRecord(id="bad-0001", parent_id="baseline", code_hash="y", iteration=3,
                            operator={"operator": "Dynamics:broken"}, outcome="invalid", check="syntax")]
    folder.mkdir(parents=True, exist_ok=True)
    (folder / "history.jsonl").write_text("".join(json.dumps(e) + "\n" for e in events))
    checkpoint = folder / "checkpoints" / "checkpoint_3"
    checkpoint.mkdir(parents=True)
    (folder / "checkpoints" / "checkpoint_1").mkdir()  # an older checkpoint without our records is skipped
    (checkpoint / "genesys_records.json").write_text(json.dumps(
        {"baseline_id": "baseline", "records": [r.to_dict() for r in records]}))
    model = {"submissions": 4, "outcomes": {"ok": 2, "invalid": 1, "stalled": 1, "infra": 0}, "charged": 3,
             "requeued": 1, "quarantined": 0, "stall_rate": 0.25, "wasted_seconds": 30.0, "seconds": 42.0}
    (folder / "summary.json").write_text(json.dumps(
        {"charged_attempts": 3, "requeue_limit": 2, "accounting": "genesys", "models": {"m": model},
         "verification": {"submissions": 1, "outcomes": {"ok": 1}, "charged": 1, "seconds": 0.5},
         "time": {"startup": 20.0, "compile": 10.0, "train": 60.0, "llm": 10.0}}))
    (folder / "state.json").write_text(json.dumps({"attempts": 3, "max_attempts": 5}))
    if best_info:
        (folder / "best_program_info.json").write_text(json.dumps(records[1].to_dict()))
    return folder


def test_every_file_is_written(tmp_path):
    paths = build_report(make_run(tmp_path / "run"), progress=False, execute=False)
    assert set(paths) == {"scaling_curves", "best_utility", "quadrants", "lineage", "summary"}
    for name, path in paths.items():
        assert path.parent == tmp_path / "run" / "report" and path.stat().st_size > 1000, name
        if path.suffix == ".png":
            assert path.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"


def test_summary_names_the_best_design_and_the_counts(tmp_path):
    build_report(make_run(tmp_path / "run"), top=2, progress=False, execute=False)
    text = (tmp_path / "run" / "report" / "summary.md").read_text()
    assert "**Best design: `child-0001`** (Coefficients:half), utility +0.0300, confidence 0.60" in text
    assert "- Design attempts: 4 submitted, 3 charged of a budget of 5 (1 invalid, 2 ok, 1 stalled)" in text
    assert "- Designs recorded: 3 (2 valid, 1 invalid)" in text
    assert "| m | 4 | 3 | 2 | 1 | 1 | 0 | 1 | 0 | 25% | 30.0 | 42.0 |" in text  # stalled 1, re-queued 1
    assert "| `grand-00` | FeatureMap:relu | `child-00` | +0.0500 |" in text
    assert "+        logits = logits * (0.5 / math.sqrt(q.shape[-1])) + g" in text  # EVOLVE-BLOCK diff
    assert "import jax" not in text.split("## Budget")[0].split("```diff")[1]  # only the block is diffed
    assert "| FeatureMap:relu | 1 | 1 | +0.0200 | 1 |" in text  # gain over its seed: 0.05 - 0.03
    assert "Answered by the code hash: 1 (17%); by the functional hash: 0 (0%); trained: 5" in text
    assert "| train | 60.0 | 60% |" in text and "| startup | 20.0 | 20% |" in text  # where the time went
    for png in ("scaling_curves.png", "best_utility.png", "quadrants.png", "lineage.png"):
        assert f"({png})" in text


def test_without_best_program_info_the_runs_rule_picks_the_confident_design(tmp_path):
    run = load_run(make_run(tmp_path / "run", best_info=False))
    assert run.best_id == "child-0001"  # grand-0001 has the higher utility but confidence 0.01
    assert [r.id for r in run.lineage("grand-0001")] == ["baseline", "child-0001", "grand-0001"]
    assert "selector defaults" in run.thresholds.source


def test_progress_counts_charged_attempts_and_job_seconds(tmp_path):
    p = utility_progress(load_run(make_run(tmp_path / "run")))
    assert p.attempts == [0, 1, 2, 3]
    assert p.seconds == [0.0, 5.0, 41.5, 42.5]  # the stalled job's 30 s and the verification count as spent
    assert p.best_any == [0.0, 0.03, 0.05, 0.05]
    assert p.best_confident == [0.0, 0.03, 0.03, 0.03]


def test_thresholds_come_from_the_run_config(tmp_path):
    folder = make_run(tmp_path / "run", best_info=False)
    config = (ROOT / "configs" / "coefficient_dynamics.yaml").read_text()
    (folder / "config.yaml").write_text(config + "  selector:\n    confidence_threshold: 0.9\n"
                                                 "    utility_quantile: 0.25\n")
    run = load_run(folder)
    assert (run.thresholds.utility_quantile, run.thresholds.confidence_threshold) == (0.25, 0.9)
    assert str(folder / "config.yaml") in run.thresholds.source
    assert run.best_id == "grand-0001"  # nothing reaches 0.9, so the best valued design wins


def test_operator_gain_is_measured_against_the_seed(tmp_path):
    stats = {name: (n, valid, gain) for name, n, valid, gain, _ in operator_stats(load_run(make_run(tmp_path / "r")))}
    assert stats["Coefficients:half"] == (1, 1, pytest.approx(0.03))
    assert stats["Dynamics:broken"] == (1, 0, None)


@pytest.mark.parametrize("damage, named, fix", [
    (lambda f: (f / "history.jsonl").unlink(), "history.jsonl is missing", "openevolve CONFIG.yaml"),
    (lambda f: (f / "summary.json").unlink(), "summary.json is missing", "--resume"),
    (lambda f: (f / "checkpoints" / "checkpoint_3" / "genesys_records.json").unlink(),
     "genesys_records.json", "--resume"),
    (lambda f: (f / "checkpoints" / "checkpoint_3" / "genesys_records.json").write_text("{"),
     "genesys_records.json is not valid JSON", "--resume"),
    (lambda f: (f / "history.jsonl").write_text('{"type": "baseline"\n' + (f / "history.jsonl").read_text()),
     "history.jsonl line 1 is not JSON", "delete that line"),
    (lambda f: (f / "history.jsonl").write_text((f / "history.jsonl").read_text().split("\n", 1)[1]),
     "has no baseline event", "--resume"),
])
def test_a_damaged_run_folder_names_the_file_and_the_fix(tmp_path, damage, named, fix):
    folder = make_run(tmp_path / "run")
    damage(folder)
    with pytest.raises(RunFolderError) as err:
        load_run(folder)
    assert named in str(err.value) and fix in str(err.value)


def test_a_torn_last_history_line_is_dropped_like_a_resume_drops_it(tmp_path):
    folder = make_run(tmp_path / "run")
    with open(folder / "history.jsonl", "a") as f:
        f.write('{"type": "design", "attem')
    assert len(load_run(folder).events) == 6


def test_cli_reports_a_missing_folder_and_writes_a_good_one(tmp_path, capsys):
    assert main([str(tmp_path / "nowhere")]) == 2
    err = capsys.readouterr().err
    assert "nowhere is not a folder" in err and "--output RUN_DIR" in err
    assert main([str(make_run(tmp_path / "run")), "--top", "1", "--no-exec"]) == 0
    assert "summary.md" in capsys.readouterr().out
    with pytest.raises(SystemExit) as exit_:
        main([str(tmp_path / "run"), "--top", "0"])
    assert exit_.value.code == 2 and "--top must be at least 1" in capsys.readouterr().err


def test_summary_renders_without_any_valued_design(tmp_path):
    run = load_run(make_run(tmp_path / "run"))
    for r in run.records.values():
        r.utility = None
    text = render_summary(run, cache_savings(run.events, execute=False), {}, top=3)
    assert "No valid design has a utility yet." in text


def test_a_run_with_only_its_baseline_still_gets_every_file(tmp_path):
    folder = make_run(tmp_path / "run", best_info=False)
    history = (folder / "history.jsonl").read_text().splitlines()
    (folder / "history.jsonl").write_text(history[0] + "\n")
    records_path = folder / "checkpoints" / "checkpoint_3" / "genesys_records.json"
    data = json.loads(records_path.read_text())
    records_path.write_text(json.dumps({**data, "records": data["records"][:1]}))
    paths = build_report(folder, progress=False, execute=False)
    text = paths["summary"].read_text()
    assert "**Best design: `baseline`**" in text and "No valid design has a utility yet." in text
    assert all(p.stat().st_size > 1000 for p in paths.values())


def test_the_summary_shows_operator_credit_from_the_records(tmp_path):
    run = load_run(make_run(tmp_path / "run"))
    for r in run.records.values():
        r.code_hash = f"code-{r.id}"  # the fixture gives every record the same hash: credit would see repeats
    text = render_summary(run, cache_savings([], execute=False), {}, top=1)
    credit = text.split("### Operator credit")[1].split("## Fitness cache")[0]
    assert "computed from the checkpoint's records" in credit
    assert "| operator | FeatureMap:relu | 1 | 0 | 0 | 1 | +0.0200 | +0.0200 |" in credit
    assert "| operator | Dynamics:broken | 1 | 1 | 0 | 0 | n/a | n/a |" in credit


def test_the_summary_prefers_the_runs_operators_json(tmp_path):
    folder = make_run(tmp_path / "run")
    row = {"dimension": "unit", "arm": "Readout", "children": 7, "invalid": 2, "repeats": 1, "improved": 3,
           "mean_gain": 0.01, "best_gain": 0.04, "window_children": 5, "window_reward": 0.5, "score": 0.9,
           "resets": 1}
    (folder / "operators.json").write_text(json.dumps([row, {**row, "arm": "Kernel", "children": 0}]))
    text = render_summary(load_run(folder), cache_savings([], execute=False), {}, top=1)
    assert "from `operators.json`" in text
    assert "| unit | Readout | 7 | 2 | 1 | 3 | +0.0100 | +0.0400 | 0.50 | 0.90 | 1 |" in text
    assert "| unit | Kernel |" not in text  # arms without children are left out


def test_the_summary_shows_tokens_and_cost_per_model_and_the_cap_that_stopped_the_run(tmp_path):
    folder = make_run(tmp_path / "run")
    assert "## Tokens and cost" not in render_summary(load_run(folder), cache_savings([], execute=False), {})
    summary = json.loads((folder / "summary.json").read_text())
    summary["models"]["m"].update(tokens=2_000, wasted_tokens=300, prompt_tokens=10_000, estimated_calls=1,
                                  cost=0.045)
    summary["models"]["local"] = {**summary["models"]["m"], "tokens": 50, "prompt_tokens": 70, "cost": None}
    summary["spend"] = {"prompt_tokens": 10_070, "completion_tokens": 2_050, "total_tokens": 12_120,
                        "cost": 0.045, "estimated": True}
    summary["stopped_by"] = "genesys.cost.max_cost=0.04 reached: 10070 prompt + 2050 completion = 12120 tokens"
    (folder / "summary.json").write_text(json.dumps(summary))
    run = load_run(folder)
    text = render_summary(run, cache_savings([], execute=False), {})
    assert "| m | 10000 | 2000 | 300 | 1 | $0.0450 |" in text and "| local | 70 | 50 | 300 | 1 | unpriced |" in text
    assert "| all | 10070 | 2050 | | | $0.0450 |" in text
    assert "Stopped by a spending cap: genesys.cost.max_cost=0.04 reached" in text


def test_the_summary_counts_the_seed_verifications_spent(tmp_path):
    folder = make_run(tmp_path / "run")
    text = render_summary(load_run(folder), cache_savings([], execute=False), {})
    assert "- Verifications: 1 jobs (1 ok)\n" in text  # none spent: nothing said
    seed = {"type": "verify", "design_id": "child-0001", "rung": "r1", "seed": 1, "outcome": "ok", "class": "ok",
            "rungs": rungs({"r1": 5.56}), "metrics": {"trial": True}, "seconds": 4.0}
    with open(folder / "history.jsonl", "a") as f:
        f.write(json.dumps(seed) + "\n")
    run = load_run(folder)
    text = render_summary(run, cache_savings([], execute=False), {})
    assert "- Verifications: 2 jobs (2 ok); 1 of them seed verifications (1 ok, 4 s)" in text
