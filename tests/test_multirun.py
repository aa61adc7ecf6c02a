"""Several runs side by side share one fitness cache and each completes."""

import json
import shutil
import sqlite3

import pytest

from openevolve_genesys import cli
from openevolve_genesys.multirun import status_line
from run_configs import events, run_config


def test_the_status_line_sums_up_each_run(tmp_path):
    a, b = tmp_path / "a", tmp_path / "b"
    a.mkdir()
    (a / "state.json").write_text(json.dumps({"attempts": 3, "max_attempts": 10}))
    (a / "best_program_info.json").write_text(json.dumps({"utility": 0.0123}))
    assert status_line(["configs/a.yaml", "configs/b.yaml"], [a, b]) == "a: 3/10 attempts, best +0.0123 | b: starting"


@pytest.mark.slow
def test_two_runs_share_one_cache_and_both_complete(tmp_path):
    shared = tmp_path / "shared_fitness.sqlite"
    first = run_config(tmp_path, "coefficient_dynamics", cache_path=str(shared))
    second = tmp_path / "coefficient_dynamics_again.yaml"
    shutil.copy(first, second)
    root = tmp_path / "runs"
    code = cli.main([str(first), str(second), "--iterations", "1", "--output", str(root), "--profile", "smoke",
                     "--log-level", "WARNING"])
    assert code == 0
    trained = set()
    for name in ("coefficient_dynamics", "coefficient_dynamics_again"):
        log = events(root / name)
        assert [e["attempt"] for e in log if e["type"] == "design" and e["attempt"]] == [1]
        assert (root / name / "summary.json").exists()
        trained |= {e["metrics"]["functional_hash"] for e in log
                    if e["type"] == "design" and e["outcome"] == "ok" and e["metrics"].get("functional_hash")}
    # Both runs wrote their designs' results into the one cache file.
    with sqlite3.connect(shared) as db:
        cached = {row[0] for row in db.execute("SELECT DISTINCT functional_hash FROM results")}
    assert trained and trained <= cached
