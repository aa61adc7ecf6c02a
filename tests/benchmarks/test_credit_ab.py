"""The operator-credit A/B benchmark on tiny budgets: its arm without credit is the selector benchmark's "ours",
its measures are taken on the true laws, and the script writes its table and JSON."""

import json
import sys
from pathlib import Path

import numpy as np

BENCHMARKS = Path(__file__).resolve().parents[2] / "experiments" / "benchmarks"
sys.path.insert(0, str(BENCHMARKS))

import credit_ab  # noqa: E402
from selector_sim import Landscape, LandscapeSpec, run_method  # noqa: E402

SMALL = LandscapeSpec(framework="test_time_regression")


def test_the_arm_without_credit_is_the_selector_benchmarks_ours():
    land = Landscape(SMALL, 2)
    ours = run_method("ours", land, 40.0, 2)
    off = credit_ab.run_once(land, 40.0, 2, credit=False, reach=1.0)
    best_possible = credit_ab.true_utility(land, land.best)
    assert np.isclose(off["best_utility"], best_possible - ours.oracle_regret)
    assert np.isclose(off["reported_utility"], credit_ab.true_utility(land, ours.reported))
    assert off["explore_probability"] is None and off["designs"] == ours.designs


def test_a_credit_run_records_units_and_reaches_what_it_reports():
    land = Landscape(SMALL, 3)
    run = credit_ab.run_once(land, 40.0, 3, credit=True, reach=0.0)
    assert 0.0 < run["explore_probability"] < 1.0
    assert set(run["units"]) == set(land.units)
    assert sum(children for children, _, _ in run["units"].values()) == run["attempts"]  # repeats, invalid too
    assert run["reached_at"] is not None and run["reached_at"] <= 40.0  # reach 0: the first better design
    assert run["best_utility"] >= run["reported_utility"] - 1e-12


def test_the_landscape_check_measures_each_units_improvement():
    land = Landscape(SMALL, 0)
    per_unit = credit_ab.unit_structure(land, 5, np.random.default_rng(0))
    assert list(per_unit) == list(land.units) and all(v >= 0 for v in per_unit.values())
    assert max(per_unit.values()) > min(per_unit.values())


def test_the_script_prints_the_table_and_writes_the_json(tmp_path, capsys):
    out = tmp_path / "ab.json"
    credit_ab.main(["--seeds", "2", "--budgets", "25", "--landscapes", "aligned", "--framework",
                    "test_time_regression", "--structure-samples", "3", "--out", str(out)])
    text = capsys.readouterr().out
    assert "| aligned | 25 | off |" in text and "| aligned | 25 | credit |" in text
    data = json.loads(out.read_text())
    assert len(data["runs"]) == 4 and {r["arm"] for r in data["runs"]} == {"off", "credit"}
    assert "aligned" in data["structure"] and data["summary"][0].startswith("| landscape |")
