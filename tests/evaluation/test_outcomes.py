"""The sandbox's verdict reaches the attempt class: a stalled child is re-queued, never charged as the design's."""

import re
from pathlib import Path

import pytest

import openevolve_genesys

from broken_programs import TEMPLATE
from openevolve_genesys.controller.accounting import classify_evaluation
from openevolve_genesys.controller.repair import REPAIRABLE_CHECKS
from openevolve_genesys.evaluation import evaluator as evaluator_module
from openevolve_genesys.evaluation.evaluator import ScalingLawEvaluator
from openevolve_genesys.evaluation.sandbox import SandboxResult
from openevolve_genesys.evaluation.settings import EvaluatorSettings
from openevolve_genesys.outcomes import ATTEMPT_CLASSES, CHECK_KINDS, FAILURES, OUTCOMES, REASONS, attempt_class


def verdict(outcome: str, reason: str) -> SandboxResult:
    return SandboxResult(outcome=outcome, reason=reason, value=None, message=f"{outcome} ({reason})", stdout="",
                         stderr="", seconds=1.0, heartbeats=1, last_progress=None, returncode=None,
                         peak_memory_bytes=0, confinement="test")


@pytest.mark.parametrize("outcome, reason, expected", [
    ("timeout", "stall", "stalled"), ("crashed", "startup", "stalled"), ("crashed", "memory", "infra"),
    ("crashed", "signal", "infra"), ("timeout", "wall", "invalid"), ("invalid", "exception", "invalid"),
])
def test_the_evaluation_carries_the_sandbox_reason_into_its_class(tmp_path, monkeypatch, outcome, reason, expected):
    settings = EvaluatorSettings(profile="smoke", data={"source": "stdlib", "max_corpus_bytes": 300_000},
                                 cache_path=str(tmp_path / "fitness.sqlite"))
    evaluator = ScalingLawEvaluator(settings)
    monkeypatch.setattr(evaluator_module, "run_in_sandbox", lambda *a, **k: verdict(outcome, reason))
    # A trial of the template needs no baseline, so the one sandbox call is this evaluation's.
    evaluation = evaluator.evaluate(TEMPLATE, ["r0"], trial={"seed": 7})
    assert (evaluation.outcome, evaluation.reason, evaluation.metrics["reason"]) == (outcome, reason, reason)
    assert evaluation.metrics["check"] == outcome  # no check decided: the field names the outcome
    assert classify_evaluation(evaluation) == expected


def test_every_outcome_and_reason_has_a_class():
    assert {attempt_class(o, r) for o in OUTCOMES for r in REASONS} == set(ATTEMPT_CLASSES)
    assert attempt_class("timeout", None) == "invalid"  # a record that kept no reason: the design's, as before


def test_every_kind_the_package_raises_is_in_the_vocabulary():
    """A new ProgramError kind must be added to outcomes.CheckKind (or Failure) and the table in architecture.md."""
    package = Path(openevolve_genesys.__file__).parent
    raised = {kind for path in package.rglob("*.py")
              for kind in re.findall(r"ProgramError\(\"(\w+)\"", path.read_text())}
    raised |= set(re.findall(r"\"kind\": \"(\w+)\"", (package / "evaluation" / "job.py").read_text()))
    assert raised and raised <= set(FAILURES) - {"llm_error"}, raised - set(FAILURES)
    assert REPAIRABLE_CHECKS <= set(CHECK_KINDS)
