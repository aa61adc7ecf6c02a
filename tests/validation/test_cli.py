"""`openevolve validate` from the command line: clear errors with exit code 2, and one real validation."""

import json

import pytest

from openevolve_genesys.cli import main as openevolve_main
from openevolve_genesys.validation.cli import main


def test_a_missing_folder_is_exit_2_naming_the_fix(tmp_path, capsys):
    assert openevolve_main(["validate", str(tmp_path / "nowhere")]) == 2  # dispatched by the top-level CLI
    err = capsys.readouterr().err
    assert "is not a folder" in err and "openevolve CONFIG.yaml --output RUN_DIR" in err


def test_a_folder_without_history_is_exit_2(tmp_path, capsys, runs):
    run = runs.write_run(tmp_path / "run", [])
    (run / "history.jsonl").unlink()
    assert main([str(run)]) == 2
    assert "history.jsonl is missing" in capsys.readouterr().err


def test_a_run_without_valid_designs_is_exit_2(tmp_path, capsys, runs):
    baseline = {"type": "baseline", "id": "baseline", "code": runs.template,
                "rungs": runs.rung_results({"r0": 6.0}), "metrics": {}, "learning_rate": None, "tune": None}
    run = runs.write_run(tmp_path / "run", [baseline])
    assert main([str(run)]) == 2
    assert "nothing to validate" in capsys.readouterr().err


def test_bad_numbers_are_refused_by_the_parser(three_rung_run, capsys):
    for argv in (["--seeds", "0"], ["--top", "0"], ["--level", "95"]):
        with pytest.raises(SystemExit) as exit_info:
            main([str(three_rung_run), *argv])
        assert exit_info.value.code == 2
    assert "--level must lie strictly between 0 and 1" in capsys.readouterr().err


@pytest.mark.slow
def test_a_real_validation_trains_resumes_and_reuses_the_fitness_cache(tmp_path, capsys, runs):
    """One tiny rung, the baseline and one design at one seed: two sandboxed trainings (~45 s on two shared cores)."""
    rung = [{"name": "r0", "d_model": 16, "n_layers": 1, "n_heads": 2}]
    baseline = {"type": "baseline", "id": "baseline", "code": runs.template,
                "rungs": runs.rung_results({"r0": 6.0}), "metrics": {}, "learning_rate": None, "tune": None}
    design = runs.design_event("half", 1, runs.half_scale, {"r0": 5.9}, learning_rate=0.02)
    run = runs.write_run(tmp_path / "run", [baseline, design], rungs=rung)

    assert main([str(run), "--seeds", "1", "--top", "1", "--log-level", "WARNING"]) == 0
    out = capsys.readouterr().out
    assert "half (not confident) at r0" in out and "still wins: undecided (no interval" in out
    journal = run / "validation" / "journal.jsonl"
    lines = [json.loads(line) for line in journal.read_text().splitlines()]
    assert [(r["design_id"], r["seed"], r["learning_rate"], r["outcome"]) for r in lines] == [
        ("baseline", 1, 0.01, "ok"), ("half", 1, 0.02, "ok")]
    assert all(r["cache_hit"] is None and 3 < r["loss"] < 7 for r in lines)  # trained, and it learned
    summary = json.loads((run / "validation" / "validation.json").read_text())
    assert summary["designs"][0]["rungs"]["r0"]["mean"] == pytest.approx(lines[1]["loss"] - lines[0]["loss"])

    assert main([str(run), "--seeds", "1", "--top", "1"]) == 0  # resumed: everything from the journal
    assert json.loads((run / "validation" / "validation.json").read_text())["trainings"]["from_journal"] == 2

    journal.unlink()  # without the journal the run's fitness cache answers the same (design, seed, rung)
    assert main([str(run), "--seeds", "1", "--top", "1"]) == 0
    again = [json.loads(line) for line in journal.read_text().splitlines()]
    assert [r["cache_hit"] for r in again] == ["code", "code"]
    assert [r["loss"] for r in again] == [r["loss"] for r in lines]
