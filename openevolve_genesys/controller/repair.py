"""Repair rounds: a child that fails a check of the program goes back to the model that wrote it, with the
check's message, until it passes or ``genesys.repair_rounds`` replies are spent.

A failed check (a syntax slip, a missing import, a wrong shape, a causality leak) is often one line away
from a working design, and charging it at once threw the idea away before the model ever saw why. A repair
is an LLM call, not an attempt: its tokens and seconds are the attempt's, and the attempt is charged once,
with its final child. Training's verdicts (a diverging or flat loss, a slow step) are the design's result,
not a slip, so they are not repaired; stalls and infra faults are re-queued as before.
"""

from __future__ import annotations

import time
from dataclasses import asdict, dataclass
from typing import Any, Callable, Iterable, Mapping

from openevolve_genesys.evaluation.evaluator import Evaluation
from openevolve_genesys.evaluation.program import ProgramError
from openevolve_genesys.llm.usage import TokenCount
from openevolve_genesys.outcomes import CheckKind, charged
from openevolve_genesys.prompts.repair import CheckFailure

# Checks of the program itself, run before or while building the model: what a corrected text can fix.
REPAIRABLE_CHECKS: frozenset[CheckKind] = frozenset({
    "syntax", "import", "evolve_block", "outside_block", "missing_mixer", "signature", "runtime", "shape",
    "dtype", "non_finite", "non_finite_grad", "causality", "param_count"})
MESSAGE_CHARS = 1000  # of a check's message kept in the history line (the prompt gets all of it)


def check_failure(evaluation: Evaluation) -> CheckFailure | None:
    """The failed check of an ``invalid`` evaluation when a corrected program could pass it, else None."""
    kind = evaluation.metrics.get("check")
    if evaluation.outcome != "invalid" or kind not in REPAIRABLE_CHECKS:
        return None
    return CheckFailure(str(kind), str(evaluation.artifacts.get("message") or ""))


@dataclass(frozen=True)
class RepairRound:
    """One repair reply, as the attempt's history line keeps it."""

    round: int  # 1-based
    kind: str  # the check the round was asked to fix
    message: str  # that check's message (first MESSAGE_CHARS)
    result: str  # what the reply led to: passed, a check's kind, an answer's (no_diff...), llm_error, stalled, infra
    fixed: bool  # the reply's child passed the checks
    tokens: int  # completion tokens of the reply
    seconds: float  # the whole round: the LLM call, applying the reply, evaluating the child
    llm_seconds: float
    detail: str = ""  # the failed call's error, or the answer path's message when it refused the reply
    prompt_tokens: int = 0  # the repair prompt's tokens (with the conversation it continues)

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)

    @classmethod
    def from_dict(cls, raw: Mapping[str, Any]) -> "RepairRound":
        return cls(**{key: raw[key] for key in cls.__dataclass_fields__ if key in raw})


@dataclass(frozen=True)
class RepairReply:
    """A repair call's answer; ``text`` is None when the call stalled or failed (``error`` says how)."""

    text: str | None
    usage: TokenCount
    seconds: float
    error: str = ""


Ask = Callable[[str, CheckFailure, CheckFailure | None, int], RepairReply]  # child, check, rejected, round
Apply = Callable[[str, str], str]  # (broken child, reply) -> repaired child; ProgramError when refused
Evaluate = Callable[[str], tuple[Evaluation, str]]  # child -> its evaluation and attempt class


def repair(child: str, check: CheckFailure, rounds: int, ask: Ask, apply: Apply,
           evaluate: Evaluate) -> tuple[str, list[RepairRound]]:
    """Up to ``rounds`` repair replies for ``child``; (the last evaluated child, the rounds).

    Stops at the first child that passes its checks, at a failure no text can fix (training's verdict, a
    stall or infra fault: the caller's attempt class says which) and at a failed LLM call, after which the
    attempt is charged with the last child's check failure."""
    done: list[RepairRound] = []
    rejected: CheckFailure | None = None
    for number in range(1, rounds + 1):
        start = time.perf_counter()
        reply = ask(child, check, rejected, number)

        def record(result: str, fixed: bool = False, detail: str = "") -> None:
            done.append(RepairRound(number, check.kind, check.message[:MESSAGE_CHARS], result, fixed,
                                    reply.usage.completion, time.perf_counter() - start, reply.seconds,
                                    detail[:MESSAGE_CHARS], reply.usage.prompt))

        if reply.text is None:
            record("llm_error", detail=reply.error)
            break
        try:
            candidate = apply(child, reply.text)
        except ProgramError as err:  # the same answer path as the first reply: its message is fed back
            rejected = CheckFailure(err.kind, err.message)
            record(err.kind, detail=err.message)
            continue
        evaluation, attempt_class = evaluate(candidate)
        child, rejected = candidate, None
        failure = check_failure(evaluation)
        if failure is None:
            record("passed" if charged(attempt_class) else attempt_class, charged(attempt_class))
            break
        record(failure.kind)
        check = failure
    return child, done


def repair_note(rounds: list[RepairRound]) -> str:
    """The line the model's feedback and the log get about an attempt's repairs."""
    steps = "; ".join(f"round {r.round}: {r.kind} -> {r.result}" for r in rounds)
    verdict = "repaired" if rounds[-1].fixed else "not repaired"
    return f"{verdict} in {len(rounds)} repair round(s) ({steps})"


@dataclass
class RepairStats:
    """What repair rounds did over a run, folded from its history lines (``repairs``, absent in older ones)."""

    attempts: int = 0  # attempts with at least one repair round
    rounds: int = 0
    saved: int = 0  # charged attempts whose first child failed a check and whose final child passed
    tokens: int = 0
    seconds: float = 0.0

    def record(self, event: Mapping[str, Any], charged: bool) -> None:
        rounds = [RepairRound.from_dict(r) for r in event.get("repairs") or ()]
        if not rounds:
            return
        self.attempts += 1
        self.rounds += len(rounds)
        self.saved += charged and rounds[-1].fixed
        self.tokens += sum(r.tokens for r in rounds)
        self.seconds += sum(r.seconds for r in rounds)

    def to_dict(self) -> dict[str, Any]:
        return {"attempts": self.attempts, "rounds": self.rounds, "saved": self.saved, "tokens": self.tokens,
                "seconds": round(self.seconds, 2)}

    @classmethod
    def of(cls, events: Iterable[Mapping[str, Any]], charged: Callable[[str], bool]) -> "RepairStats":
        stats = cls()
        for event in events:
            if event.get("type") == "design":
                stats.record(event, charged(event["class"]))
        return stats
