"""Attempt accounting: what an attempt's outcome says about the design, and what it costs the budget.

Four classes (outcomes.AttemptClass). ``ok`` and ``invalid`` (the design's fault: a failed check, no usable diff, too slow) are
real attempts and draw from the attempt budget (``max_iterations`` counts attempts, not submissions).
``stalled`` (the LLM or the training stopped making progress) and ``infra`` (endpoint unreachable, HTTP
5xx/429, a killed or out-of-memory worker) say nothing about the design: the job is re-queued with the same
seed and prompt up to ``requeue_limit`` times, then quarantined with its reason, and never charged and
never held against a design's utility.
"""

from __future__ import annotations

from collections import Counter
from dataclasses import dataclass, field
from typing import Any, Mapping

from openevolve_genesys.controller.cost import Price, Spend
from openevolve_genesys.evaluation.evaluator import Evaluation
from openevolve_genesys.evaluation.timing import add_timing
from openevolve_genesys.llm.usage import TokenCount
from openevolve_genesys.outcomes import ATTEMPT_CLASSES, CHARGED, AttemptClass, attempt_class


def classify_evaluation(evaluation: Evaluation) -> AttemptClass:
    """The class of an attempt whose evaluation this is: its outcome and the sandbox's reason for it."""
    return attempt_class(evaluation.outcome, evaluation.reason)


@dataclass
class ModelStats:
    """Counters for one design agent (LLM model) or for the tune trials."""

    submissions: int = 0
    outcomes: Counter = field(default_factory=Counter)
    requeued: int = 0
    quarantined: int = 0
    wasted_seconds: float = 0.0  # wall time of stalled and infra attempts
    seconds: float = 0.0
    tokens: int = 0  # completion tokens the LLM sent (controller/jobs.py: the server's count, else streamed chunks)
    wasted_tokens: int = 0  # of those, the ones sent to stalled and infra attempts (received before the cut)
    prompt_tokens: int = 0  # prompt tokens of every call, failed and stalled ones included (they are billed)
    estimated_calls: int = 0  # calls whose figure is partly an estimate (llm/usage.py)

    def to_dict(self, charge_all: bool = False, price: Price | None = None) -> dict[str, Any]:
        stalls = self.outcomes["stalled"]
        charged = self.submissions if charge_all else sum(self.outcomes[c] for c in CHARGED)
        return {"submissions": self.submissions, "outcomes": {c: self.outcomes[c] for c in ATTEMPT_CLASSES},
                "charged": charged, "requeued": self.requeued,
                "quarantined": self.quarantined, "stall_rate": stalls / self.submissions if self.submissions else 0.0,
                "wasted_seconds": round(self.wasted_seconds, 2), "seconds": round(self.seconds, 2),
                "tokens": self.tokens, "wasted_tokens": self.wasted_tokens, "prompt_tokens": self.prompt_tokens,
                "estimated_calls": self.estimated_calls,
                "cost": None if price is None else price.cost(self.prompt_tokens, self.tokens)}


@dataclass
class Accounting:
    requeue_limit: int = 2
    charge_all: bool = False  # OpenEvolve's stock accounting, kept for A/B benchmarks: every submission counts
    models: dict[str, ModelStats] = field(default_factory=dict)
    verification: ModelStats = field(default_factory=ModelStats)
    tuning: dict[str, float] = field(default_factory=lambda: {"trials": 0, "seconds": 0.0, "designs": 0})
    time: dict[str, float] = field(default_factory=dict)  # seconds by phase (evaluation/timing.py), all jobs
    prices: Mapping[str, Price] = field(default_factory=dict)  # by model name (genesys.cost.prices)

    def record_time(self, timing: dict[str, float] | None, llm_seconds: float = 0.0) -> None:
        """Sum a job's phases (absent in histories older than time accounting) and its wait for the LLM."""
        add_timing(self.time, {**(timing or {}), **({"llm": llm_seconds} if llm_seconds else {})})

    def record(self, model: str, outcome: AttemptClass, *, seconds: float, tokens: TokenCount = TokenCount(),
               requeued: bool = False, quarantined: bool = False) -> None:
        stats = self.models.setdefault(model or "unknown", ModelStats())
        _count(stats, outcome, seconds, tokens, requeued, quarantined)

    def record_verification(self, outcome: AttemptClass, *, seconds: float, requeued: bool = False,
                            quarantined: bool = False) -> None:
        _count(self.verification, outcome, seconds, TokenCount(), requeued, quarantined)

    def record_tuning(self, trials: int, seconds: float) -> None:
        self.tuning["trials"] += trials
        self.tuning["seconds"] += seconds
        self.tuning["designs"] += 1

    def charges(self, attempt_class: AttemptClass) -> bool:
        """Whether an attempt of this class draws from the attempt budget (and is never re-queued)."""
        return self.charge_all or attempt_class in CHARGED

    @property
    def charged(self) -> int:
        return sum(n for stats in self.models.values() for c, n in stats.outcomes.items() if self.charges(c))

    @property
    def uncharged_seconds(self) -> float:
        """Wall time of stalled and infra jobs, design attempts and verifications alike."""
        return sum(s.wasted_seconds for s in self.models.values()) + self.verification.wasted_seconds

    def spend(self) -> Spend:
        """Tokens and cost of every LLM call so far, over all models (a model without a price costs 0)."""
        models = self.models.items()
        return Spend(prompt_tokens=sum(s.prompt_tokens for _, s in models),
                     completion_tokens=sum(s.tokens for _, s in models),
                     cost=sum(self.prices[n].cost(s.prompt_tokens, s.tokens) for n, s in models if n in self.prices),
                     estimated=any(s.estimated_calls for _, s in models))

    def summary(self) -> dict[str, Any]:
        spend = self.spend()
        return {"charged_attempts": self.charged, "requeue_limit": self.requeue_limit,
                "accounting": "stock" if self.charge_all else "genesys",
                "models": {name: stats.to_dict(self.charge_all, self.prices.get(name))
                           for name, stats in self.models.items()},
                "spend": {"prompt_tokens": spend.prompt_tokens, "completion_tokens": spend.completion_tokens,
                          "total_tokens": spend.total_tokens, "cost": spend.cost if self.prices else None,
                          "estimated": spend.estimated},
                "verification": self.verification.to_dict(),
                "tuning": {**self.tuning, "seconds": round(self.tuning["seconds"], 2)},
                "time": dict(self.time)}

    def summary_lines(self) -> list[str]:
        lines = []
        for name, stats in self.models.items():
            d = stats.to_dict(self.charge_all, self.prices.get(name))
            cost = "unpriced" if d["cost"] is None else f"${d['cost']:.4f}"
            estimated = f", {d['estimated_calls']} calls estimated" if d["estimated_calls"] else ""
            lines.append(f"{name}: {d['submissions']} submissions, {d['charged']} charged "
                         f"({d['outcomes']['ok']} ok, {d['outcomes']['invalid']} invalid), "
                         f"{d['outcomes']['stalled']} stalled ({d['stall_rate']:.0%}), {d['outcomes']['infra']} infra, "
                         f"{d['requeued']} re-queued, {d['quarantined']} quarantined, "
                         f"{d['wasted_seconds']:.0f} s wasted, {d['prompt_tokens']} prompt + {d['tokens']} "
                         f"completion tokens ({d['wasted_tokens']} completion wasted{estimated}), {cost}")
        if len(self.models) > 1:
            lines.append(f"all models: {self.spend().line()}")
        v = self.verification.to_dict()
        lines.append(f"verification: {v['submissions']} jobs, {v['outcomes']['ok']} ok, {v['outcomes']['invalid']} "
                     f"invalid, {v['outcomes']['stalled']} stalled, {v['outcomes']['infra']} infra, "
                     f"{v['requeued']} re-queued, {v['wasted_seconds']:.0f} s wasted")
        if self.tuning["trials"]:
            lines.append(f"tuning: {self.tuning['trials']} trials for {self.tuning['designs']} designs, "
                         f"{self.tuning['seconds']:.0f} s (not charged to the attempt budget)")
        if self.time:
            lines.append("time: " + time_line(self.time))
        return lines


def time_line(time: dict[str, float]) -> str:
    """Seconds by phase and training's share of all the phases, as one line."""
    total = sum(time.values())
    parts = ", ".join(f"{phase} {seconds:.0f} s" for phase, seconds in time.items() if seconds >= 0.5)
    share = time.get("train", 0.0) / total if total else 0.0
    return f"{parts} (training {share:.0%} of {total:.0f} s)"


def _count(stats: ModelStats, outcome: AttemptClass, seconds: float, tokens: TokenCount, requeued: bool,
           quarantined: bool) -> None:
    if outcome not in ATTEMPT_CLASSES:
        raise ValueError(f"unknown attempt class {outcome!r}; the classes are {', '.join(ATTEMPT_CLASSES)} "
                         "(outcomes.AttemptClass)")
    stats.submissions += 1
    stats.outcomes[outcome] += 1
    stats.seconds += seconds
    stats.tokens += tokens.completion
    stats.prompt_tokens += tokens.prompt
    stats.estimated_calls += tokens.estimated
    stats.requeued += requeued
    stats.quarantined += quarantined
    if outcome not in CHARGED:
        stats.wasted_seconds += seconds
        stats.wasted_tokens += tokens.completion
