"""The two kinds of job the controller runs in its worker threads: a design attempt and a verification.

A design attempt asks the LLM (or the offline mutator) for a change of one unit (SEARCH/REPLACE blocks or,
in rewrite mode, the whole program), turns the answer into a child (controller/answer.py), enforces the EVOLVE-BLOCK against the framework template (OpenEvolve 0.4.0 never does this in its
workers), tunes the child's learning rate when tune mode is on, and evaluates the child at the smallest
rung at that rate. A child that fails a check of the program goes back to the same model for up to
``repair_rounds`` repair replies (controller/repair.py) before the attempt is charged. A verification evaluates an existing design at one more rung, at the design's rate,
or (a seed verification) again at a rung it has, at a further seed.
Both compare with the baseline at the baseline's own (tuned) rate, passed explicitly so that an engine's
remote evaluator, which never saw the controller's, compares with the same baseline. Both evaluate through the sandboxed ScalingLawEvaluator, so a hung or crashing program
costs one child process, never a worker.
"""

from __future__ import annotations

import asyncio
import time
from dataclasses import dataclass, field
from typing import Any, Callable, Literal, Sequence

from openevolve_genesys.controller.accounting import classify_evaluation
from openevolve_genesys.controller.answer import AnswerRules, child_from_answer, operator_name
from openevolve_genesys.controller.prompt_log import Reply, TokenUsage
from openevolve_genesys.controller.repair import RepairReply, RepairRound, check_failure, repair, repair_note
from openevolve_genesys.engine import Engine
from openevolve_genesys.evaluation.evaluator import Evaluation, ScalingLawEvaluator
from openevolve_genesys.evaluation.program import ProgramError
from openevolve_genesys.evaluation.tuning import TuneResult
from openevolve_genesys.prompts.repair import CheckFailure, RepairRequest, repair_prompt
from openevolve_genesys.llm.streaming import LLMRequestRejected, StreamingLLM, classify_llm_error
from openevolve_genesys.llm.usage import TokenCount
from openevolve_genesys.outcomes import AttemptClass, Failure

@dataclass
class DesignAttempt:
    seed_id: str
    unit: str
    prompt: dict[str, str]
    model: str = ""  # the model asked (chosen by the controller, so credit can tell models apart)
    model_index: int | None = None  # its position in the ensemble; None: the ensemble samples one
    quadrant: str | None = None  # the quadrant the seed came from (credit's explore/exploit arm)
    credit: dict[str, Any] | None = None  # what operator credit advised, when it is on
    response: str | None = None
    replies: list[Reply] = field(default_factory=list)  # every answer to the prompt with its tokens, in order
    operator: str = ""
    child_code: str | None = None
    failure: Failure | None = None  # why no child was evaluated
    message: str = ""
    evaluation: Evaluation | None = None
    llm_seconds: float = 0.0
    # what the LLM call cost (prompt and completion tokens), also when it stalled or failed (wasted then)
    usage: TokenCount = field(default_factory=TokenCount)
    seconds: float = 0.0
    notes: list[str] = field(default_factory=list)
    attempt_class: AttemptClass | Literal[""] = ""  # "": not classed yet
    requeues: int = 0  # how many times this same seed and prompt were re-queued after a stall or infra fault
    tune: TuneResult | None = None  # the learning-rate sweep, in tune mode
    repairs: list[RepairRound] = field(default_factory=list)  # the repair rounds of a child that failed a check

    @property
    def tokens(self) -> int:
        """Completion tokens the LLM sent for this attempt."""
        return self.usage.completion

    @property
    def learning_rate(self) -> float | None:
        """The rate the child trains at: its tuned one, or None for the profile's."""
        return self.tune.best_learning_rate if self.tune is not None else None


Tuner = Callable[[str], TuneResult]  # a program's source -> its learning-rate sweep, each trial its own job
# (runner, source, rungs) -> the evaluation at the rate swept in the same job (tuning.evaluate_tuned)
TunedEvaluate = Callable[[Any, str, list[str], str | None], Evaluation]  # runner, child, rungs, seed


def ask_llm(llm: Any, prompt: dict[str, str], timeout: float, model_index: int | None = None,
            history: Sequence[dict[str, str]] = ()) -> str:
    """One LLM call with a hard timeout, to the ensemble's model ``model_index`` (None: the ensemble's
    weighted draw); the model's own retries happen inside it. ``history``: earlier turns of the conversation."""
    client = _client(llm, model_index)
    messages = [*history, {"role": "user", "content": prompt["user"]}]

    async def call() -> str:
        return await client.generate_with_context(prompt["system"], messages)

    return asyncio.run(asyncio.wait_for(call(), timeout=timeout))


def tokens_received(llm: Any, model_index: int | None, error: BaseException | None = None) -> TokenCount:
    """Prompt and completion tokens of this thread's last ``ask_llm`` (0 when the client keeps no count).

    The streaming client keeps the count of every call per thread, failed or cut by ``ask_llm``'s time
    limit included. OpenEvolve's ensemble and stock client update ``last_usage`` only after a success, so
    after a failure theirs is an earlier call's: then only the error's own count (``LLMCallError.tokens``,
    completion only) is trusted."""
    client = _client(llm, model_index)
    if error is None or isinstance(client, StreamingLLM):
        return TokenCount.from_usage(getattr(client, "last_usage", None))
    return TokenCount(completion=int(getattr(error, "tokens", 0) or 0))


def usage_reported(llm: Any, model_index: int | None) -> TokenUsage | None:
    """The tokens of this thread's last successful ``ask_llm`` as the client reported them (None: no count)."""
    return TokenUsage.from_client(getattr(_client(llm, model_index), "last_usage", None))


def _client(llm: Any, model_index: int | None) -> Any:
    return llm if model_index is None else llm.models[model_index]


def apply_response(seed_code: str, response: str, template: str, policy: str,
                   rules: AnswerRules | None = None) -> tuple[str, list[str]]:
    """The child program a response describes, with the template's text outside the EVOLVE-BLOCK, and the
    notes the model's feedback gets (controller/answer.py reads the answer)."""
    child = child_from_answer(seed_code, response, template, rules or AnswerRules(), policy)
    return child.code, list(child.notes)


def run_design_attempt(attempt: DesignAttempt, seed_code: str, llm: Any, llm_timeout: float,
                       evaluator: ScalingLawEvaluator, rungs: list[str], engine: Engine | None = None,
                       tuner: Tuner | None = None, tuned: TunedEvaluate | None = None,
                       rules: AnswerRules | None = None, repair_rounds: int = 0) -> DesignAttempt:
    """Ask, apply, enforce, tune, evaluate, repair. ``engine`` runs the evaluation (default: the evaluator,
    in process); ``tuner`` (tune mode) sweeps the child's learning rate first, outside the attempt budget;
    ``tuned`` (tune mode, ``tune.same_job``) sweeps and evaluates in one job instead; ``rules`` say how
    answers are read (rewrite mode, max_code_length); ``repair_rounds`` bounds the repair replies."""
    start = time.perf_counter()
    error: Exception | None = None
    try:
        attempt.response = ask_llm(llm, attempt.prompt, llm_timeout, attempt.model_index)
        attempt.replies.append(Reply(attempt.response, usage_reported(llm, attempt.model_index)))
    except LLMRequestRejected:
        raise  # 400/401/404: every attempt would fail the same way; the run stops with the endpoint's message
    except Exception as err:  # stalls, timeouts, HTTP errors, refused connections: classified below
        error = err
        attempt.failure, attempt.message = "llm_error", f"{type(err).__name__}: {err}"
        attempt.attempt_class = classify_llm_error(err)
    attempt.usage = tokens_received(llm, attempt.model_index, error)
    attempt.llm_seconds = time.perf_counter() - start
    attempt.model = attempt.model or _model_name(llm)
    if attempt.response is not None:
        attempt.operator = operator_name(attempt.response, attempt.unit)
        try:
            attempt.child_code, attempt.notes = apply_response(
                seed_code, attempt.response, evaluator.template, evaluator.settings.outside_edits, rules)
        except ProgramError as err:
            attempt.failure, attempt.message = err.kind, err.message
    if attempt.child_code is not None:
        _evaluate_child(attempt, attempt.child_code, seed_code, evaluator, rungs, engine, tuner, tuned)
        failure = check_failure(attempt.evaluation)
        if failure is not None and repair_rounds > 0:
            _repair(attempt, failure, seed_code, llm, llm_timeout, evaluator, repair_rounds, rules,
                    lambda code: _evaluate_child(attempt, code, seed_code, evaluator, rungs, engine, tuner, tuned))
    elif not attempt.attempt_class:
        attempt.attempt_class = "invalid"  # an answer without a usable diff is a real, failed attempt
    attempt.seconds = time.perf_counter() - start
    return attempt


def _evaluate_child(attempt: DesignAttempt, code: str, seed_code: str, evaluator: ScalingLawEvaluator,
                    rungs: list[str], engine: Engine | None, tuner: Tuner | None,
                    tuned: TunedEvaluate | None) -> tuple[Evaluation, AttemptClass]:
    """Tune (in tune mode) and evaluate ``code`` as the attempt's child; its evaluation and class. The seed's
    code goes with it, so the sandbox screens a child that computes what its seed does before any training.

    A child failing its checks is never swept: in one job the checks run before the sweep, and with a job
    per trial the sweep stops at the first trial's failed check (evaluation/tuning.py)."""
    if tuned is not None:
        attempt.evaluation = tuned(engine or evaluator, code, rungs, seed_code)
        attempt.tune = attempt.evaluation.tune
    else:
        if tuner is not None:
            attempt.tune = tuner(code)
        attempt.evaluation = (engine or evaluator).evaluate(
            code, rungs, learning_rate=attempt.learning_rate, baseline_learning_rate=evaluator.baseline_learning_rate,
            seed_source=seed_code)
    attempt.attempt_class = classify_evaluation(attempt.evaluation)
    return attempt.evaluation, attempt.attempt_class


def _repair(attempt: DesignAttempt, failure: CheckFailure, seed_code: str, llm: Any, llm_timeout: float,
            evaluator: ScalingLawEvaluator, rounds: int, rules: AnswerRules | None,
            evaluate: Callable[[str], tuple[Evaluation, AttemptClass]]) -> None:
    """Repair rounds with the attempt's own model; their tokens and LLM seconds are the attempt's."""
    rewrite = rules.rewrite if rules is not None else False
    # The model sees its own first answer: the repair continues that conversation.
    history = [{"role": "user", "content": attempt.prompt["user"]},
               {"role": "assistant", "content": attempt.response or ""}]
    spent: list[TokenCount] = []  # every repair call's tokens, failed calls' too

    def ask(child: str, check: CheckFailure, rejected: CheckFailure | None, number: int) -> RepairReply:
        request = RepairRequest(child, seed_code, check, attempt.unit, number, rounds, rewrite, rejected)
        prompt = {"system": attempt.prompt["system"], "user": repair_prompt(request)}
        start = time.perf_counter()
        try:
            text = ask_llm(llm, prompt, llm_timeout, attempt.model_index, history)
        except Exception as err:  # stalled, refused, failed: stop repairing, the last check failure stands
            spent.append(tokens_received(llm, attempt.model_index, err))
            return RepairReply(None, spent[-1], time.perf_counter() - start, f"{type(err).__name__}: {err}")
        spent.append(tokens_received(llm, attempt.model_index))
        attempt.replies.append(Reply(text, usage_reported(llm, attempt.model_index)))
        return RepairReply(text, spent[-1], time.perf_counter() - start)

    def apply(child: str, reply: str) -> str:
        return apply_response(child, reply, evaluator.template, evaluator.settings.outside_edits, rules)[0]

    attempt.child_code, attempt.repairs = repair(attempt.child_code or "", failure, rounds, ask, apply, evaluate)
    attempt.usage = sum(spent, attempt.usage)
    attempt.llm_seconds += sum(r.llm_seconds for r in attempt.repairs)
    attempt.notes = [*attempt.notes, repair_note(attempt.repairs)]


def charge_if_hanging(attempt: DesignAttempt, requeue_limit: int) -> None:
    """A child whose evaluation stalled on its last allowed try is charged ``invalid``: the design hangs.

    A stall says nothing about a design once (a slow worker, a busy device), so it is re-queued; the same
    child stalling every time is its own fault (an infinite loop does), and left uncharged it would let a run
    of hanging children never spend its budget."""
    if attempt.attempt_class == "stalled" and attempt.evaluation is not None and attempt.requeues >= requeue_limit:
        attempt.attempt_class = "invalid"
        why = attempt.evaluation.artifacts.get("message", "")
        attempt.message = (f"its evaluation stalled on each of its {attempt.requeues + 1} tries, so the design "
                           f"is taken to hang: {why}")[:2000]


@dataclass
class Verification:
    design_id: str
    rung: str
    evaluation: Evaluation | None = None
    seconds: float = 0.0
    attempt_class: AttemptClass | Literal[""] = ""  # "": not classed yet
    requeues: int = 0
    learning_rate: float | None = None  # the design's tuned rate; None: the profile's
    seed: int = 0  # 0: a new rung at the run's seed; k > 0: a seed verification at the run's seed + k


def run_verification(job: Verification, code: str, evaluator: ScalingLawEvaluator | Engine,
                     baseline_learning_rate: float | None = None, run_seed: int = 0) -> Verification:
    """Train the design at ``job.rung``. A seed verification trains at ``run_seed + job.seed`` as a ``trial`` (a
    TrainConfig change, as the baseline's seeds are), so the fitness cache keeps it apart from seed 0's result."""
    start = time.perf_counter()
    seed = {"trial": {"seed": run_seed + job.seed}} if job.seed else {}
    job.evaluation = evaluator.evaluate(code, [job.rung], learning_rate=job.learning_rate,
                                        baseline_learning_rate=baseline_learning_rate, **seed)
    job.attempt_class = classify_evaluation(job.evaluation)
    job.seconds = time.perf_counter() - start
    return job


def _model_name(llm: Any) -> str:
    models = getattr(llm, "models", None) or [llm]
    return ",".join(str(getattr(m, "model", type(m).__name__)) for m in models)
