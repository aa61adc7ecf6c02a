import pytest

from openevolve_genesys.selection.valuation import Valuer
from hand_records import baseline, record


def test_the_baseline_has_zero_utility_and_high_confidence():
    valuer = Valuer.for_baseline(baseline())
    base = baseline()
    valuer.value(base)
    assert base.utility == pytest.approx(0.0, abs=1e-9)
    assert base.confidence > 0.8


def test_a_better_design_has_positive_utility_and_confidence_grows_with_rungs():
    valuer = Valuer.for_baseline(baseline())
    values = []
    for rungs in range(1, 5):
        design = record("d", 0.98, rungs)
        valuer.value(design)
        values.append((design.utility, design.confidence))
    assert all(u > 0 for u, _ in values)
    confidences = [c for _, c in values]
    assert confidences[0] == pytest.approx(0.0, abs=1e-9)  # the smallest rung alone: all prior
    assert confidences == sorted(confidences) and confidences[-1] > 0.8


def test_a_worse_design_has_negative_utility():
    valuer = Valuer.for_baseline(baseline())
    design = record("d", 1.03, 2)
    valuer.value(design)
    assert design.utility < 0
    assert design.forecast["low"] < design.utility < design.forecast["high"]


def test_a_failed_design_has_no_value():
    valuer = Valuer.for_baseline(baseline())
    design = record("d", outcome="invalid")
    valuer.value(design)
    assert design.utility is None and design.confidence == 0.0


def test_without_three_baseline_sizes_the_measured_gap_is_used_with_no_confidence():
    short = record("baseline", 1.0, rungs=2, parent=None)
    valuer = Valuer.for_baseline(short)
    design = record("d", 0.99, 2)
    valuer.value(design)
    assert design.utility == pytest.approx(0.01 * short.rungs["r1"].loss)
    assert design.confidence == 0.0


def test_a_baseline_without_rungs_is_refused():
    with pytest.raises(ValueError, match="no verified rung"):
        Valuer.for_baseline(record("baseline", outcome="crashed"))
