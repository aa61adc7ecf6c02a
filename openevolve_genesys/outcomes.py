"""The one vocabulary of how a job ended, from the sandbox up to the attempt budget.

Five fields, each with its own values, so that no field mixes another's (docs/architecture.md has the
table of who sets each field and whether the attempt is charged):

- ``Outcome`` (an Evaluation's and the sandbox's ``outcome``): how the evaluation ended;
- ``Reason`` (the sandbox's ``reason``, an Evaluation's ``reason``): the finer cause of that outcome;
- ``Check`` (an evaluation's ``metrics["check"]``): which check the design failed, or when none ran to a
  verdict, the outcome again (the field is never empty on a failed evaluation, so feedback can name it);
- ``Failure`` (a design attempt's ``failure``): why no child was evaluated at all;
- ``AttemptClass`` (history's ``class``): what the outcome says about the design and the budget.

Plain strings at run time (Literal types): history.jsonl and summary.json hold them as they are, so a
history written before these types existed reads the same.
"""

from __future__ import annotations

from typing import Literal, get_args

Outcome = Literal[
    "ok",  # the job returned its result
    "invalid",  # the design's fault: a failed check, an exception, the program ended the process
    "timeout",  # a limit of time: no heartbeat (stall), the wall clock or the CPU time
    "crashed",  # not the design's fault as far as anyone can tell: killed, out of memory, the sandbox failed
]
Reason = Literal[
    "ok",
    "design_invalid",  # a check raised DesignInvalid (its kind is the Check)
    "exception",  # the program raised anything else
    "exit",  # the program called sys.exit or os._exit
    "stall",  # no heartbeat for heartbeat_seconds (startup_seconds before the first)
    "wall",  # over the wall-clock limit
    "cpu",  # over the CPU-time limit
    "memory",  # over the memory limit, or out of memory inside the job
    "signal",  # killed by a signal (the OOM killer, a lost Ray worker)
    "startup",  # the sandbox could not start the job
    "protocol",  # the child's messages broke the pipe protocol
]
CheckKind = Literal[
    # loading the program (evaluation/program.py)
    "evolve_block", "outside_block", "syntax", "import", "missing_mixer",
    # the isolated checks (evaluation/checks.py) and the no-op screen (evaluation/noop.py)
    "signature", "runtime", "shape", "dtype", "non_finite", "non_finite_grad", "causality", "param_count",
    "step_time", "no_change",
    # training (evaluation/checks.py's check_learning)
    "loss_exploded", "loss_not_falling",
]
Check = CheckKind | Literal["invalid", "timeout", "crashed"]  # the outcome when no check decided
Failure = Literal[
    "llm_error",  # the LLM call failed (its class, stalled or infra or invalid, is the attempt's)
    "no_diff",  # the answer held no change that applied
    "too_long",  # the child is over max_code_length
] | CheckKind  # the parent's own reading of the child failed: no_change, outside_block, evolve_block, syntax
AttemptClass = Literal[
    "ok",  # a result: charged
    "invalid",  # the design's fault: charged, never re-queued
    "stalled",  # the LLM or the training stopped making progress: re-queued, not charged
    "infra",  # endpoint down, HTTP 5xx/429, a killed or out-of-memory worker: re-queued, not charged
]

OUTCOMES: tuple[Outcome, ...] = get_args(Outcome)
REASONS: tuple[Reason, ...] = get_args(Reason)
CHECK_KINDS: tuple[CheckKind, ...] = get_args(CheckKind)
FAILURES: tuple[str, ...] = ("llm_error", "no_diff", "too_long", *CHECK_KINDS)
ATTEMPT_CLASSES: tuple[AttemptClass, ...] = get_args(AttemptClass)
CHARGED: frozenset[AttemptClass] = frozenset({"ok", "invalid"})

# A heartbeat that stops is a stall whatever its cause: re-queued, and charged as hanging if it keeps happening.
_STALLED_REASONS: frozenset[Reason] = frozenset({"stall", "startup"})
_INFRA_REASONS: frozenset[Reason] = frozenset({"memory", "signal", "protocol"})


def attempt_class(outcome: Outcome, reason: Reason | None) -> AttemptClass:
    """The class of an evaluation that ended with ``outcome`` for ``reason`` (None: a record that kept none)."""
    if outcome == "ok":
        return "ok"
    if reason in _STALLED_REASONS:
        return "stalled"
    if reason in _INFRA_REASONS or outcome == "crashed":
        return "infra"
    return "invalid"  # a failed check, an exception, over the wall-clock or CPU-time limit


def charged(cls: AttemptClass) -> bool:
    """Whether an attempt of this class draws from the attempt budget (genesys accounting)."""
    return cls in CHARGED

