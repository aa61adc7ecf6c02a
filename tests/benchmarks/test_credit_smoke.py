"""The real-ladder credit A/B's pieces: the configs it writes are valid run configs with the arm's flag, and
what it reads back from a run folder counts charged attempts only and crowns confident designs only."""

import importlib.util
import sys
from pathlib import Path

import pytest

from openevolve_genesys.config import load_run_config

ROOT = Path(__file__).resolve().parents[2]
sys.path.insert(0, str(ROOT / "experiments" / "benchmarks"))

import credit_smoke  # noqa: E402


def _make_run():
    spec = importlib.util.spec_from_file_location("report_fixture", ROOT / "tests" / "report" / "test_report.py")
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module.make_run


@pytest.mark.parametrize("credit", [False, True])
def test_each_arm_is_a_strictly_valid_config_with_its_flag_and_seed(tmp_path, credit):
    config = load_run_config(credit_smoke.write_config(tmp_path, seed=3, credit=credit, tune=False))
    assert config.genesys.selector.credit is credit
    assert config.openevolve.random_seed == 3
    assert not config.genesys.evaluator.tune.enabled and config.genesys.run.mutator == "offline"


def test_a_run_is_measured_on_charged_attempts_and_confident_designs(tmp_path):
    run_dir = _make_run()(tmp_path / "run")
    # The child (utility 0.03, confidence 0.6) is confident from attempt 1; the grandchild (0.05) never is.
    reached = credit_smoke.measure(run_dir, reach=0.02)
    assert reached["attempts"] == 3 and reached["reached_at"] == 1
    assert reached["best_any"] == pytest.approx(0.05) and reached["best_confident"] == pytest.approx(0.03)
    assert reached["reported"] == pytest.approx(0.03) and reached["reported_operator"] == "Coefficients:half"
    assert reached["units"] == {"Coefficients": 1, "Dynamics": 1, "FeatureMap": 1}  # the stalled one is not charged
    assert reached["valid"] == 2 and reached["verifications"] == 1
    assert credit_smoke.measure(run_dir, reach=0.04)["reached_at"] is None


def test_the_table_pairs_the_arms_seed_by_seed(tmp_path):
    run = credit_smoke.measure(_make_run()(tmp_path / "run"), reach=0.02)
    better = dict(run, best_any=run["best_any"] + 0.01, best_confident=run["best_confident"] + 0.02)
    lines = credit_smoke.table({"0": {"off": run, "credit": better}, "1": {"off": run, "credit": better}}, 3, 0.02)
    assert any(line.startswith("best_confident:") and "credit minus off +0.0200 +- 0.0000 (n=2)" in line
               for line in lines)
    assert "off: reached a confident 0.02 in 2/2 runs of 3 attempts, at [1, 1]" in lines
