import pytest

from openevolve_genesys.selection.budgets import rung_budgets, rung_usage
from hand_records import RUNGS, baseline, record


def test_budgets_halve_by_the_ratio_per_rung():
    assert rung_budgets(RUNGS, 27, 3.0, 1) == {"r0": 27, "r1": 9, "r2": 3, "r3": 1}
    assert rung_budgets(RUNGS, 10, 2.0, 1) == {"r0": 10, "r1": 5, "r2": 3, "r3": 2}


def test_min_per_rung_keeps_the_top_rungs_reachable_early():
    assert rung_budgets(RUNGS, 2, 3.0, 1) == {"r0": 2, "r1": 1, "r2": 1, "r3": 1}
    assert rung_budgets(RUNGS, 2, 3.0, 0) == {"r0": 2, "r1": 1, "r2": 1, "r3": 1}  # ceil keeps one while any exist
    assert rung_budgets(RUNGS, 0, 3.0, 0) == {"r0": 0, "r1": 0, "r2": 0, "r3": 0}


def test_a_ratio_of_one_or_less_is_refused():
    with pytest.raises(ValueError, match="exceed 1"):
        rung_budgets(RUNGS, 5, 1.0, 1)


def test_usage_counts_verified_failed_and_running_but_not_the_baseline():
    a, b = record("a", rungs=2), record("b", rungs=1)
    b.failed_rungs["r1"] = "timeout"
    used = rung_usage([baseline(), a, b], RUNGS, "baseline", busy={("a", "r2"), ("baseline", "r3")})
    assert used == {"r0": 2, "r1": 2, "r2": 1, "r3": 0}
