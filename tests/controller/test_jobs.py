"""Design attempts: the LLM's answer becomes a child program (EVOLVE-BLOCK enforced), and failures are named."""

import asyncio

import pytest

from broken_programs import HAZARDS, TEMPLATE
from openevolve_genesys.controller.jobs import (DesignAttempt, Verification, apply_response, ask_llm, charge_if_hanging,
                                                run_design_attempt, run_verification)
from openevolve_genesys.evaluation.evaluator import Evaluation, ScalingLawEvaluator
from openevolve_genesys.evaluation.program import ProgramError, split_block
from openevolve_genesys.evaluation.sandbox import SandboxLimits
from openevolve_genesys.evaluation.settings import EvaluatorSettings
from openevolve_genesys.evaluation.tuning import TuneResult
from openevolve_genesys.training.rung_result import rungs_from_dict

PROMPT = {"system": "s", "user": "u"}
SQRT_LINE = next(line for line in TEMPLATE.splitlines() if "math.sqrt(" in line)
IMPROVED = TEMPLATE.replace("math.sqrt(", "1.25 * math.sqrt(", 1)


def diff(search: str, replace: str, operator: str = "Coefficients:test") -> str:
    return f"Operator: {operator}\n<<<<<<< SEARCH\n{search}\n=======\n{replace}\n>>>>>>> REPLACE\n"


def whole_block_diff(child: str) -> str:
    return diff(split_block(TEMPLATE).block.strip("\n"), split_block(child).block.strip("\n"))


class ScriptedLLM:
    """An LLM client answering from a list; an exception in the list is raised, a number is a delay."""

    model = "scripted"

    def __init__(self, *answers):
        self.answers = list(answers)

    async def generate_with_context(self, system_message, messages, **kwargs):
        answer = self.answers.pop(0)
        if isinstance(answer, Exception):
            raise answer
        if isinstance(answer, (int, float)):
            await asyncio.sleep(answer)
            return ""
        return answer


def test_an_edit_outside_the_block_is_reverted_or_rejected():
    outside = next(line for line in TEMPLATE.splitlines() if line.startswith("def build_mixer("))
    response = whole_block_diff(IMPROVED) + diff(outside, outside.replace("build_mixer", "build_mixer_renamed"))
    child, notes = apply_response(TEMPLATE, response, TEMPLATE, "revert")
    assert outside in child and "1.25 * math.sqrt(" in child
    assert "reverted" in notes[0]
    with pytest.raises(ProgramError) as err:
        apply_response(TEMPLATE, response, TEMPLATE, "reject")
    assert err.value.kind == "outside_block"


@pytest.mark.parametrize("response, kind, words", [
    ("I would use a gated delta rule.", "no_diff", "no SEARCH/REPLACE block"),
    (diff("this text is not in the seed", "x = 1"), "no_diff", "block 1 of 1 was not applied: its SEARCH text matches nothing"),
    (diff(SQRT_LINE, SQRT_LINE), "no_change", "unchanged"),
])
def test_answers_that_yield_no_child_are_named(response, kind, words):
    with pytest.raises(ProgramError, match=words) as err:
        apply_response(TEMPLATE, response, TEMPLATE, "revert")
    assert err.value.kind == kind


class NoEvaluator:
    template = TEMPLATE
    settings = EvaluatorSettings()

    def evaluate(self, *args, **kwargs):
        raise AssertionError("nothing should be evaluated")


@pytest.mark.parametrize("answer, words", [(ConnectionError("endpoint refused"), "endpoint refused"),
                                           (30.0, "TimeoutError")])
def test_a_failing_or_hanging_llm_is_recorded_not_raised(answer, words):
    attempt = run_design_attempt(DesignAttempt("baseline", "Coefficients", PROMPT), TEMPLATE, ScriptedLLM(answer),
                                 0.2, NoEvaluator(), ["r0"])
    assert attempt.failure == "llm_error" and words in attempt.message
    assert attempt.child_code is None and attempt.evaluation is None and attempt.seconds < 5


@pytest.mark.slow
def test_a_hung_design_is_reaped_and_does_not_poison_the_next(tmp_path):
    settings = EvaluatorSettings(
        profile="smoke", data={"source": "stdlib", "max_corpus_bytes": 300_000},
        profile_overrides={"vocab_size": 512, "rungs": [{"d_model": 16, "n_layers": 1, "n_heads": 2}],
                           "train": {"seq_len": 32, "batch_size": 8, "steps": 40, "eval_interval": 20,
                                     "chunk_steps": 20, "eval_tokens": 1024, "warmup_steps": 5}},
        cache_path=str(tmp_path / "fitness.sqlite"),
        sandbox=SandboxLimits(wall_seconds=120, heartbeat_seconds=15, startup_seconds=120, memory_bytes=6 << 30))
    evaluator = ScalingLawEvaluator(settings)
    llm = ScriptedLLM(whole_block_diff(HAZARDS["infinite_loop"]), whole_block_diff(IMPROVED))
    hung = run_design_attempt(DesignAttempt("baseline", "Mixer", PROMPT), TEMPLATE, llm, 5, evaluator, ["r0"])
    assert hung.evaluation.outcome == "timeout" and "heartbeat" in hung.evaluation.artifacts["message"]
    fine = run_design_attempt(DesignAttempt("baseline", "Coefficients", PROMPT), TEMPLATE, llm, 5, evaluator, ["r0"])
    assert fine.evaluation.outcome == "ok", fine.evaluation.artifacts.get("message")
    assert fine.operator == "Coefficients:test"


class RecordingEvaluator:
    """Records what it is asked to evaluate, in order, and answers ok at every rung."""

    template = TEMPLATE
    settings = EvaluatorSettings()
    baseline_learning_rate = 7e-4

    def __init__(self):
        self.calls = []

    def evaluate(self, source, rungs, **options):
        self.calls.append(("evaluate", source, options))
        return Evaluation("ok", {"outcome": "ok"}, {},
                          rungs_from_dict({r: {"n_params": 1, "final_eval_loss": 5.0} for r in rungs}))


def test_tune_mode_sweeps_the_child_first_and_trains_it_at_its_own_rate_against_the_tuned_baseline():
    evaluator = RecordingEvaluator()
    swept = TuneResult(best_learning_rate=2e-3, trials=(), seconds=1.0, base_learning_rate=1e-3)

    def tuner(source):
        evaluator.calls.append(("tune", source, {}))
        return swept

    attempt = run_design_attempt(DesignAttempt("baseline", "Coefficients", PROMPT), TEMPLATE,
                                 ScriptedLLM(whole_block_diff(IMPROVED)), 5, evaluator, ["r0"], tuner=tuner)
    assert [c[0] for c in evaluator.calls] == ["tune", "evaluate"]
    assert evaluator.calls[0][1] == evaluator.calls[1][1] == attempt.child_code
    # The seed travels with the child, so its sandbox can screen a no-op before training (evaluation/noop.py).
    assert evaluator.calls[1][2] == {"learning_rate": 2e-3, "baseline_learning_rate": 7e-4, "seed_source": TEMPLATE}
    assert attempt.tune is swept and attempt.learning_rate == 2e-3 and attempt.attempt_class == "ok"

    untuned = run_design_attempt(DesignAttempt("baseline", "Coefficients", PROMPT), TEMPLATE,
                                 ScriptedLLM(whole_block_diff(IMPROVED)), 5, evaluator, ["r0"])
    assert untuned.tune is None and evaluator.calls[-1][2]["learning_rate"] is None  # the profile's rate

    verification = run_verification(Verification("d1", "r2", learning_rate=2e-3), IMPROVED, evaluator, 7e-4)
    assert evaluator.calls[-1][1:] == (IMPROVED, {"learning_rate": 2e-3, "baseline_learning_rate": 7e-4})
    assert verification.attempt_class == "ok"
    # A seed verification trains the rung again at the run's seed + k, a TrainConfig change the cache keys on.
    run_verification(Verification("d1", "r3", learning_rate=2e-3, seed=2), IMPROVED, evaluator, 7e-4, run_seed=10)
    assert evaluator.calls[-1][1:] == (IMPROVED, {"learning_rate": 2e-3, "baseline_learning_rate": 7e-4,
                                                  "trial": {"seed": 12}})


def test_the_attempt_asks_the_model_the_controller_chose():
    class Ensemble:
        models = [ScriptedLLM("from the first"), ScriptedLLM("from the second")]

    assert ask_llm(Ensemble(), PROMPT, 5.0, model_index=1) == "from the second"
    assert Ensemble.models[0].answers == ["from the first"]  # never asked


def test_a_child_that_stalls_on_every_try_is_charged_as_hanging():
    stalled = Evaluation("timeout", {"reason": "stall"}, {"message": "no heartbeat for 120 s"}, reason="stall")
    for requeues, expected in ((0, "stalled"), (1, "stalled"), (2, "invalid")):
        attempt = DesignAttempt("baseline", "Mixer", PROMPT, child_code=IMPROVED, evaluation=stalled,
                                attempt_class="stalled", requeues=requeues)
        charge_if_hanging(attempt, requeue_limit=2)
        assert attempt.attempt_class == expected
    assert "stalled on each of its 3 tries" in attempt.message and "no heartbeat" in attempt.message
    llm_stall = DesignAttempt("baseline", "Mixer", PROMPT, attempt_class="stalled", requeues=5, failure="llm_error")
    charge_if_hanging(llm_stall, requeue_limit=2)
    assert llm_stall.attempt_class == "stalled"  # the endpoint's fault: the circuit breaker's business
