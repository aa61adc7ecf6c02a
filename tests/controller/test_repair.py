"""Repair rounds inside one design attempt, with an evaluator that runs the cheap checks in process (load, build,
trace) instead of a sandbox: what is repaired, what a round costs, when repairing stops, and the ledger's fold."""

from __future__ import annotations

import asyncio

import jax.numpy as jnp
import pytest
from flax import nnx
from openevolve.config import DatabaseConfig

from openevolve_genesys.controller.accounting import Accounting
from openevolve_genesys.controller.jobs import DesignAttempt, run_design_attempt
from openevolve_genesys.controller.ledger import RunLedger
from openevolve_genesys.controller.repair import RepairStats
from openevolve_genesys.evaluation.evaluator import Evaluation
from openevolve_genesys.evaluation.program import ProgramError, framework_path, load_program
from openevolve_genesys.evaluation.settings import EvaluatorSettings
from openevolve_genesys.evaluation.tuning import TuneResult
from openevolve_genesys.mutations import identify
from openevolve_genesys.mutations.client import OfflineMutationLLM
from openevolve_genesys.prompts.repair import CHILD_HEADING
from openevolve_genesys.prompts.sampler import PromptRequest, PromptSampler
from openevolve_genesys.selection.database import GenesysDatabase
from openevolve_genesys.training.rung_result import rungs_from_dict

TEMPLATE = framework_path("coefficient_dynamics").read_text()
LINE = next(line for line in TEMPLATE.splitlines() if "math.sqrt(" in line)
GOOD = LINE.replace("math.sqrt(", "1.25 * math.sqrt(", 1)
PROMPT = {"system": "the system prompt", "user": "the design prompt"}


def block(search: str, replace: str) -> str:
    return f"Operator: Coefficients:scaled\n<<<<<<< SEARCH\n{search}\n=======\n{replace}\n>>>>>>> REPLACE\n"


class CountingLLM:
    """Answers from a list (an exception is raised), keeps every conversation, counts 1 token per 4 characters."""

    model = "counting"

    def __init__(self, *answers):
        self.answers, self.conversations, self.last_usage = list(answers), [], None

    async def generate_with_context(self, system_message, messages, **kwargs):
        self.conversations.append((system_message, list(messages)))
        answer = self.answers.pop(0)
        if isinstance(answer, Exception):
            raise answer
        self.last_usage = {"completion_tokens": len(answer) // 4}
        return answer


class CheckingEvaluator:
    """The sandbox's first checks in process: load (syntax, import, missing_mixer), build and trace the mixer."""

    template = TEMPLATE
    settings = EvaluatorSettings()
    baseline_learning_rate = 7e-4

    def __init__(self):
        self.evaluated: list[str] = []

    def evaluate(self, source, rungs, **options):
        self.evaluated.append(source)
        try:
            program = load_program(source, framework="coefficient_dynamics")
            try:
                mixer = program.build_mixer(32, 4, rngs=nnx.Rngs(0))
                nnx.eval_shape(lambda m, x: m(x), mixer, jnp.zeros((2, 16, 32)))
            except Exception as err:
                raise ProgramError("runtime", f"mixer(x) raised {type(err).__name__}: {err}") from None
        except ProgramError as err:
            return Evaluation("invalid", {"outcome": "invalid", "check": err.kind}, {"message": err.message})
        return Evaluation("ok", {"outcome": "ok"}, {},
                          rungs_from_dict({r: {"n_params": 1, "final_eval_loss": 5.0} for r in rungs}))


def attempt(llm, evaluator, rounds: int = 2, **options) -> DesignAttempt:
    return run_design_attempt(DesignAttempt("baseline", "Coefficients", PROMPT, model_index=None), TEMPLATE, llm, 5,
                              evaluator, ["r0"], repair_rounds=rounds, **options)


def test_a_syntax_slip_is_repaired_by_the_same_model_and_the_repaired_child_is_evaluated():
    broken, fixed = block(LINE, GOOD + " + ("), block(GOOD + " + (", GOOD)
    llm, evaluator = CountingLLM(broken, fixed), CheckingEvaluator()
    result = attempt(llm, evaluator)
    assert result.attempt_class == "ok" and result.child_code == TEMPLATE.replace(LINE, GOOD)
    assert evaluator.evaluated == [TEMPLATE.replace(LINE, GOOD + " + ("), result.child_code]
    (round_,) = result.repairs
    assert (round_.round, round_.kind, round_.result, round_.fixed) == (1, "syntax", "passed", True)
    assert "was never closed" in round_.message and round_.tokens == len(fixed) // 4
    assert result.tokens == len(broken) // 4 + len(fixed) // 4  # the repair's tokens are the attempt's
    assert result.llm_seconds >= round_.llm_seconds > 0
    assert result.notes[-1].startswith("repaired in 1 repair round(s) (round 1: syntax -> passed)")
    # The repair continues the conversation: the design prompt, the model's answer, then the repair prompt.
    system, messages = llm.conversations[1]
    assert system == PROMPT["system"] and [m["role"] for m in messages] == ["user", "assistant", "user"]
    assert messages[1]["content"] == broken and CHILD_HEADING in messages[2]["content"]
    assert round_.message in messages[2]["content"]


def test_a_refused_reply_is_a_failed_round_with_its_message_fed_back_and_the_last_failure_is_charged():
    broken = block(LINE, GOOD + " + (")
    llm = CountingLLM(broken, "I cannot see the problem.", block(GOOD + " + (", GOOD + " + (("))
    result = attempt(llm, CheckingEvaluator())
    assert result.attempt_class == "invalid" and [r.result for r in result.repairs] == ["no_diff", "syntax"]
    assert not any(r.fixed for r in result.repairs)
    assert "Your previous repair answer could not be applied (no_diff)" in llm.conversations[2][1][-1]["content"]
    assert result.evaluation.metrics["check"] == "syntax" and "+ ((" in result.evaluation.artifacts["message"]
    assert result.child_code.count(GOOD + " + ((") == 1  # the last child evaluated is the one charged
    assert result.notes[-1].startswith("not repaired in 2 repair round(s)")


def test_a_failing_repair_call_stops_repairing_and_zero_rounds_make_no_call():
    broken = block(LINE, GOOD + " + (")
    result = attempt(CountingLLM(broken, TimeoutError("stalled")), CheckingEvaluator())
    assert result.attempt_class == "invalid" and result.evaluation.metrics["check"] == "syntax"
    assert [(r.result, r.fixed) for r in result.repairs] == [("llm_error", False)]
    assert "TimeoutError: stalled" in result.repairs[0].detail
    llm = CountingLLM(broken, block(GOOD + " + (", GOOD))
    off = attempt(llm, CheckingEvaluator(), rounds=0)
    assert off.attempt_class == "invalid" and off.repairs == [] and len(llm.conversations) == 1


def test_a_training_verdict_is_not_repaired():
    class Diverging(CheckingEvaluator):
        def evaluate(self, source, rungs, **options):
            self.evaluated.append(source)
            return Evaluation("invalid", {"check": "loss_exploded"}, {"message": "training diverged"})

    llm = CountingLLM(block(LINE, GOOD), block(GOOD, LINE))
    result = attempt(llm, Diverging())
    assert result.attempt_class == "invalid" and result.repairs == [] and len(llm.conversations) == 1


@pytest.mark.parametrize("same_job", [True, False])
def test_in_tune_mode_the_repaired_child_is_the_one_swept_and_trained(same_job):
    evaluator, swept = CheckingEvaluator(), []
    tune = TuneResult(best_learning_rate=2e-3, trials=(), seconds=1.0, base_learning_rate=1e-3)

    def tuned(runner, source, rungs, seed_source):  # as evaluate_tuned: the checks run first, a failing child is not swept
        evaluation = runner.evaluate(source, rungs)
        if evaluation.outcome == "ok":
            swept.append(source)
            evaluation.tune = tune
        return evaluation

    def tuner(source):  # as a sweep of one job per trial: it stops at the first trial's failed check
        failed = evaluator.evaluate(source, ["r0"]).outcome != "ok"
        swept.append(None if failed else source)
        return TuneResult(1e-3, (), 0.0, 1e-3, tuned=False) if failed else tune

    options = {"tuned": tuned} if same_job else {"tuner": tuner}
    result = attempt(CountingLLM(block(LINE, GOOD + " + ("), block(GOOD + " + (", GOOD)), evaluator, **options)
    assert result.attempt_class == "ok" and result.tune is tune and result.learning_rate == 2e-3
    assert [s for s in swept if s is not None] == [result.child_code]


def test_the_offline_mutator_breaks_answers_on_purpose_and_repairs_them_end_to_end():
    seed_prompt = PromptSampler().build(PromptRequest(framework="coefficient_dynamics", seed_code=TEMPLATE,
                                                      seed_curve="", unit="Coefficients", attempt=1))
    llm, evaluator, kinds = OfflineMutationLLM(break_rate=1.0), CheckingEvaluator(), set()
    for i in range(4):
        result = run_design_attempt(DesignAttempt("baseline", "Coefficients", seed_prompt), TEMPLATE, llm, 5,
                                    evaluator, ["r0"], repair_rounds=1)
        kinds.add(result.repairs[0].kind)
        assert result.attempt_class == "ok", (result.repairs, result.evaluation.artifacts)
        assert [(r.result, r.fixed) for r in result.repairs] == [("passed", True)]
        assert identify(result.child_code, "coefficient_dynamics")["Coefficients"] != "custom"  # unbroken
    assert kinds == {"syntax", "runtime"}  # both ways of breaking, each caught by its own check


def test_the_ledger_folds_repairs_and_replays_lines_without_them():
    def event(i: int, cls: str, repairs: list | None) -> dict:
        line = {"type": "design", "attempt": i if cls in ("ok", "invalid") else None, "id": f"c{i}",
                "seed_id": "baseline", "unit": "Coefficients", "operator": "Coefficients:x", "model": "m",
                "quadrant": None, "credit": None, "class": cls, "failure": None, "message": "", "code": None,
                "notes": [], "seconds": 1.0, "llm_seconds": 0.5, "tokens": 30, "learning_rate": None, "tune": None,
                "outcome": "invalid", "rungs": {}, "metrics": {}, "artifacts": {}, "requeues": 0,
                "requeued": cls == "stalled", "quarantined": False}
        if repairs is not None:
            line["repairs"] = repairs
        return line

    def round_(n: int, fixed: bool) -> dict:
        return {"round": n, "kind": "syntax", "message": "line 3", "result": "passed" if fixed else "syntax",
                "fixed": fixed, "tokens": 10, "seconds": 2.0, "llm_seconds": 1.0}  # an old line has no "detail"

    history = [event(1, "ok", [round_(1, False), round_(2, True)]), event(2, "invalid", [round_(1, False)]),
               event(3, "invalid", None), event(4, "stalled", [round_(1, True)])]
    ledger = RunLedger(GenesysDatabase(DatabaseConfig()), Accounting(), max_attempts=5)
    for line in history:
        ledger.apply(line)
    assert ledger.attempts == 3
    assert ledger.repairs.to_dict() == {"attempts": 3, "rounds": 4, "saved": 1, "tokens": 40, "seconds": 8.0}
    assert RepairStats.of(history, Accounting().charges).to_dict() == ledger.repairs.to_dict()
