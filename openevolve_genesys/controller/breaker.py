"""The circuit breaker: a run whose jobs keep failing without being charged stops, saved, with one message.

Stalled and infra jobs are never charged (controller/accounting.py), so a mistyped ``api_base``, a wrong
key or model name, or a dead network made a run loop forever, creating new attempts that all fail the same
way. Two triggers stop it; ``--resume`` continues it once the cause is fixed:

- a streak: ``llm.max_consecutive_failures`` stalled or infra LLM calls in a row across the ensemble (any
  answer resets the count). This catches an endpoint that is down.
- a share: the wall time of stalled and infra jobs (LLM calls and evaluations alike) exceeds
  ``llm.max_uncharged_share`` of the worker time since the run (or its resume) started, once that is
  ``llm.uncharged_min_seconds`` long. This catches what the streak cannot: an endpoint that stalls every
  other call, or evaluations that keep dying, so that most of the machine's time buys nothing. Worker
  time is wall time times the worker slots, so the share stays between 0 and 1 whatever the parallelism.
  The clock starts with the resumed session, so a resume after a fix is not stopped by the old waste.

The default share, 0.5, stops a run that wastes more than it spends on designs; the default minimum,
600 s, is ten default first-token cuts (``genesys.stall.first_token_seconds`` = 60 s), so one slow start
or a short outage at the beginning cannot trip it.
"""

from __future__ import annotations

from dataclasses import dataclass

from openevolve_genesys.strict import ConfigError, finite_number

# this project's keys in OpenEvolve's llm section
BREAKER_KEYS = frozenset({"max_consecutive_failures", "max_uncharged_share", "uncharged_min_seconds"})


@dataclass(frozen=True)
class BreakerSettings:
    max_consecutive_failures: int = 5  # stalled or infra LLM calls in a row before the run stops; 0: never
    # stalled and infra jobs' share of the worker time (wall time x workers) above which the run stops; 0: never
    max_uncharged_share: float = 0.5
    uncharged_min_seconds: float = 600.0  # wall time of the run (or its resume) before the share can stop it

    def __post_init__(self) -> None:
        value = self.max_consecutive_failures
        if not isinstance(value, int) or isinstance(value, bool) or value < 0:
            raise ValueError(f"max_consecutive_failures must be a whole number >= 0 (0 never stops the run), "
                             f"got {value!r}")
        share = self.max_uncharged_share
        if not finite_number(share) or not 0 <= share < 1:
            raise ValueError(f"max_uncharged_share must be a number in [0, 1) (0 never stops the run), got {share!r}")
        seconds = self.uncharged_min_seconds
        if not finite_number(seconds) or seconds < 0:
            raise ValueError(f"uncharged_min_seconds must be a number of seconds >= 0, got {seconds!r}")


class BreakerTripped(ConfigError):
    """The circuit breaker stopped the run (saved) because its jobs kept failing without being charged."""


class LLMEndpointDown(BreakerTripped):
    """The design agent's endpoint failed too often: the run was saved and stopped."""


@dataclass(frozen=True)
class Failure:
    """The last stalled or infra job: an LLM call (with its endpoint) or an evaluation."""

    error: str
    model: str = ""
    api_base: str = ""
    llm: bool = True


@dataclass(frozen=True)
class Session:
    """This process's part of the run, as the breaker's share trigger judges it (a resume starts a new one)."""

    started: float  # time.monotonic() when the loop started
    uncharged_seconds: float  # the accounting's uncharged seconds by then (earlier sessions' waste)
    slots: int  # worker slots: jobs in flight at once


@dataclass
class CircuitBreaker:
    settings: BreakerSettings
    streak: int = 0
    last: Failure | None = None

    def answered(self) -> None:
        self.streak = 0

    def failed(self, error: str, model: str, api_base: str) -> None:
        """Count one stalled or infra call; raise LLMEndpointDown when the streak reaches the limit."""
        self.streak += 1
        self.last = Failure(error, model, api_base)
        limit = self.settings.max_consecutive_failures
        if limit and self.streak >= limit:
            raise LLMEndpointDown(
                f"the LLM endpoint {api_base or '(default)'} (model {model!r}) failed {self.streak} calls in a row "
                f"(llm.max_consecutive_failures={limit}); last error: {error[:300]}. Likely fix: {likely_fix(error)}. "
                "The run is saved: fix it and run again with --resume")

    def evaluation_failed(self, error: str) -> None:
        """Note a stalled or infra evaluation, which the share trigger names if it is the last failure."""
        self.last = Failure(error, llm=False)

    def check_share(self, uncharged_seconds: float, wall_seconds: float, slots: int) -> None:
        """Raise BreakerTripped when stalled and infra jobs took more than the allowed share of the worker
        time (``wall_seconds`` x ``slots``) since the session started; never before the minimum wall time."""
        limit = self.settings.max_uncharged_share
        if not limit or wall_seconds < self.settings.uncharged_min_seconds or wall_seconds <= 0:
            return
        share = uncharged_seconds / (wall_seconds * max(slots, 1))
        if share <= limit:
            return
        spent = (f"stalled and infra jobs took {uncharged_seconds:.0f} s, {share:.0%} of the {wall_seconds:.0f} s x "
                 f"{max(slots, 1)} worker time since the run started (llm.max_uncharged_share={limit:g})")
        last = self.last or Failure("none recorded")
        saved = "The run is saved: fix it and run again with --resume"
        if last.llm:
            raise LLMEndpointDown(
                f"the LLM endpoint {last.api_base or '(default)'} (model {last.model!r}): {spent}; last error: "
                f"{last.error[:300]}. Likely fix: {likely_fix(last.error)}. {saved}")
        raise BreakerTripped(
            f"{spent}; the last was an evaluation: {last.error[:300]}. Likely fix: evaluations stall or die on "
            "this machine (memory, a busy or hung device, a lost Ray worker): lower genesys.workers, check "
            f"genesys.sandbox and genesys.engine. {saved}")


def likely_fix(error: str) -> str:
    """The fix an error message points to (the exception type and text of the last failed call)."""
    text = error.lower()
    if "connection" in text and ("refused" in text or "connect" in text) or "name or service" in text:
        return ("nothing answers at that address: check llm.api_base (scheme, host, port and the /v1 suffix), that "
                "the server is running, and the network or proxy between them")
    if "first_token_seconds" in text or "idle_seconds" in text or "timeout" in text or "timed out" in text:
        return ("the server accepts the request but sends no answer in time: check that it serves the model "
                "named in llm.models, its load, or raise genesys.stall.first_token_seconds or llm.timeout")
    if "429" in text or "rate" in text:
        return "the endpoint is rate-limiting: lower genesys.workers, raise llm.retry_delay, or check the plan's quota"
    if "401" in text or "403" in text or "api key" in text or "auth" in text:
        return "check the API key (llm.api_key or $OPENAI_API_KEY)"
    return "check llm.api_base, the API key, the model name in llm.models, and the network"

