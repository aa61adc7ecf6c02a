"""Cache shares, seconds saved and the functional-hash collision check on hand-made histories."""

from pathlib import Path

import pytest

from openevolve_genesys.evaluation.hashing import code_hash
from openevolve_genesys.report.cache_savings import (OUTPUT_TOLERANCE, cache_savings, resolve_functional_hashes,
                                                     rung_results)

TEMPLATE = (Path(__file__).resolve().parents[2] / "frameworks" / "coefficient_dynamics.py").read_text()
RENAMED = TEMPLATE.replace("logits", "scores")  # other code, same function
SCALED = TEMPLATE.replace("logits * (1.0 / math.sqrt", "logits * (2.0 / math.sqrt")  # other code, other function


def rung(loss, seconds, hit=None, compile_seconds=1.0):
    return {"n_params": 1000, "final_eval_loss": loss, "train_seconds": seconds, "compile_seconds": compile_seconds,
            "cache_hit": hit}


def design(design_id, code, rungs, fhash=None, hit=None, cls="ok"):
    metrics = {"cache_hit": hit} | ({"functional_hash": fhash} if fhash else {})
    return {"type": "design", "attempt": 1, "id": design_id, "seed_id": "baseline", "class": cls,
            "outcome": "ok" if rungs else "invalid", "code": code, "rungs": rungs, "metrics": metrics, "seconds": 1.0}


def verify(design_id, name, rungs, fhash=None, outcome="ok", cls="ok"):
    metrics = {"functional_hash": fhash} if fhash else {}
    return {"type": "verify", "design_id": design_id, "rung": name, "outcome": outcome, "class": cls,
            "rungs": rungs, "metrics": metrics, "seconds": 1.0}


def history():
    """Baseline trained at r0 and read from the cache at r1; A trained; B shares A's function (a functional hit);
    C is A's exact code (a code hit, no hash recorded); B fails at r1; a stalled verification is not counted."""
    return [
        {"type": "baseline", "id": "baseline", "code": TEMPLATE, "metrics": {"functional_hash": "h-base"},
         "rungs": {"r0": rung(6.0, 10.0), "r1": rung(5.5, 20.0, "code")}},
        design("A", RENAMED, {"r0": rung(5.9, 5.0)}, fhash="h1"),
        design("B", RENAMED + "\n# same function\nX = 1\n", {"r0": rung(5.9, 5.0, "functional")}, fhash="h1",
               hit="functional"),
        design("C", RENAMED, {"r0": rung(5.9, 5.0, "code")}, hit="code"),
        design("D", SCALED, {}, cls="invalid"),
        verify("A", "r1", {"r1": rung(5.4, 8.0)}, fhash="h1"),
        verify("B", "r1", {}, outcome="invalid"),
        verify("A", "r2", {}, outcome="timeout", cls="stalled"),
    ]


def test_shares_and_seconds_saved_are_counted_per_rung_result():
    report = cache_savings(history(), execute=False)
    assert report.results == 6  # baseline 2, A, B, C, A's verification
    assert (report.code_hits, report.functional_hits) == (2, 1)
    assert report.share("code") == pytest.approx(2 / 6)
    assert report.share("functional") == pytest.approx(1 / 6)
    assert report.saved_train_seconds == {"code": pytest.approx(25.0), "functional": pytest.approx(5.0)}
    assert report.saved_compile_seconds == pytest.approx(3.0)
    assert report.spent_train_seconds == pytest.approx(10.0 + 5.0 + 8.0)
    assert report.hits_from_this_run == 2  # B and C reuse A's r0; the baseline's r1 came from an earlier run
    assert report.failed_evaluations == 1  # B at r1; the stalled job says nothing about the design


def test_a_code_hit_gets_its_hash_from_equal_code_or_the_cache_lookup():
    events = history()
    resolved = resolve_functional_hashes(events)
    assert resolved["C"] == ("h1", "equal code") and resolved["A"] == ("h1", "recorded")
    assert "D" not in resolved  # an invalid design has no result to share
    alone = [events[0], design("E", SCALED, {"r0": rung(5.8, 5.0, "code")}, hit="code")]
    assert resolve_functional_hashes(alone)["E"] == (None, "unknown")
    table = {code_hash(SCALED): "h-from-cache"}
    assert resolve_functional_hashes(alone, table.get)["E"] == ("h-from-cache", "fitness cache")
    report = cache_savings(alone, execute=False)
    assert report.unresolved_designs == ["E"] and report.hash_sources == {"recorded": 1, "unknown": 1}


def test_failed_outcome_inside_a_hash_group_is_flagged_and_the_check_is_named():
    report = cache_savings(history(), execute=False)
    (group,) = report.groups
    assert group.functional_hash == "h1" and sorted(group.design_ids) == ["A", "B", "C"]
    assert group.distinct_codes == 2
    assert group.problems == ["r1: outcomes differ (invalid, ok)"]
    assert "recorded outcomes and losses" in report.check and "not compared" in report.check


def test_differing_losses_under_one_hash_are_flagged():
    events = [history()[0], design("A", RENAMED, {"r0": rung(5.9, 5.0)}, fhash="h1"),
              design("B", SCALED, {"r0": rung(5.7, 5.0)}, fhash="h1")]
    (group,) = cache_savings(events, execute=False).groups
    assert group.problems == ["r0: losses differ by 0.2000 nats"]
    assert rung_results(events)[2].loss == 5.9


def test_outputs_separate_a_true_collision_from_equal_functions():
    """Runs the designs' code in the sandbox: the renamed copy agrees with the template, the scaled one not."""
    events = [{"type": "baseline", "id": "baseline", "code": TEMPLATE, "metrics": {"functional_hash": "same"},
               "rungs": {"r0": rung(6.0, 10.0)}},
              design("renamed", RENAMED, {"r0": rung(6.0, 10.0, "functional")}, fhash="same", hit="functional"),
              design("forged", SCALED, {"r0": rung(6.0, 10.0, "functional")}, fhash="forged", hit="functional"),
              design("twin", TEMPLATE, {"r0": rung(6.0, 10.0)}, fhash="forged")]  # forged: template + scaled
    report = cache_savings(events, execute=True)
    groups = {g.functional_hash: g for g in report.groups}
    assert groups["same"].problems == [] and groups["same"].max_output_difference <= OUTPUT_TOLERANCE
    assert groups["forged"].max_output_difference > OUTPUT_TOLERANCE
    assert any("collision" in p for p in groups["forged"].problems)
    assert "run in the sandbox" in report.check
