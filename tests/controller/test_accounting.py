import pytest

from openevolve_genesys.controller.accounting import Accounting, classify_evaluation
from openevolve_genesys.evaluation.evaluator import Evaluation


@pytest.mark.parametrize("outcome, reason, expected", [
    ("ok", "ok", "ok"),
    ("invalid", "design_invalid", "invalid"),
    ("invalid", "exception", "invalid"),
    ("timeout", "wall", "invalid"),  # too slow is the design's fault
    ("timeout", "cpu", "invalid"),
    ("timeout", "stall", "stalled"),  # the heartbeat stopped
    ("timeout", "startup", "stalled"),
    ("crashed", "memory", "infra"),
    ("crashed", "signal", "infra"),
])
def test_evaluation_outcomes_map_to_attempt_classes(outcome, reason, expected):
    assert classify_evaluation(Evaluation(outcome, {"reason": reason}, {})) == expected


def test_only_ok_and_invalid_are_charged_and_waste_is_counted_per_model():
    books = Accounting(requeue_limit=2)
    books.record("gpt", "ok", seconds=10.0, tokens=500)
    books.record("gpt", "stalled", seconds=4.0, requeued=True)
    books.record("gpt", "infra", seconds=1.0, quarantined=True)
    books.record("offline", "invalid", seconds=2.0)
    assert books.charged == 2
    summary = books.summary()
    gpt = summary["models"]["gpt"]
    assert gpt["submissions"] == 3 and gpt["charged"] == 1
    assert gpt["outcomes"] == {"ok": 1, "invalid": 0, "stalled": 1, "infra": 1}
    assert gpt["stall_rate"] == pytest.approx(1 / 3)
    assert (gpt["requeued"], gpt["quarantined"], gpt["wasted_seconds"]) == (1, 1, 5.0)
    assert summary["models"]["offline"]["charged"] == 1
    assert any("1 stalled (33%)" in line for line in books.summary_lines())


def test_verification_and_tuning_have_their_own_counters():
    books = Accounting()
    books.record_verification("stalled", seconds=3.0, requeued=True)
    books.record_tuning(trials=3, seconds=12.0)
    assert books.charged == 0
    assert books.summary()["verification"]["outcomes"]["stalled"] == 1
    assert books.summary()["tuning"] == {"trials": 3, "seconds": 12.0, "designs": 1}


def test_an_unknown_class_is_refused():
    with pytest.raises(ValueError, match="unknown attempt class 'hung'"):
        Accounting().record("m", "hung", seconds=1.0)


def test_stock_accounting_charges_every_submission():
    books = Accounting(charge_all=True)
    books.record("gpt", "stalled", seconds=60.0)
    books.record("gpt", "ok", seconds=10.0)
    assert books.charges("infra") and books.charged == 2
    assert books.summary()["models"]["gpt"]["charged"] == 2 and books.summary()["accounting"] == "stock"
