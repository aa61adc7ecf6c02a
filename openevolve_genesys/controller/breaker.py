"""The circuit breaker: a run whose LLM calls keep failing stops, saved, with one message saying what to fix.

Stalled and infra calls are never charged (controller/accounting.py), so a mistyped ``api_base``, a wrong
key or model name, or a dead network made a run loop forever, creating new attempts that all fail the same
way. After ``llm.max_consecutive_failures`` such calls in a row across the ensemble (any answer resets the
count) the run stops; ``--resume`` continues it once the endpoint is fixed.
"""

from __future__ import annotations

from dataclasses import dataclass

from openevolve_genesys.strict import ConfigError

BREAKER_KEYS = frozenset({"max_consecutive_failures"})  # this project's keys in OpenEvolve's llm section


@dataclass(frozen=True)
class BreakerSettings:
    max_consecutive_failures: int = 5  # stalled or infra LLM calls in a row before the run stops; 0: never

    def __post_init__(self) -> None:
        value = self.max_consecutive_failures
        if not isinstance(value, int) or isinstance(value, bool) or value < 0:
            raise ValueError(f"max_consecutive_failures must be a whole number >= 0 (0 never stops the run), "
                             f"got {value!r}")


class LLMEndpointDown(ConfigError):
    """The design agent's endpoint failed every call of a streak: the run was saved and stopped."""


@dataclass
class CircuitBreaker:
    settings: BreakerSettings
    streak: int = 0

    def answered(self) -> None:
        self.streak = 0

    def failed(self, error: str, model: str, api_base: str) -> None:
        """Count one stalled or infra call; raise LLMEndpointDown when the streak reaches the limit."""
        self.streak += 1
        limit = self.settings.max_consecutive_failures
        if limit and self.streak >= limit:
            raise LLMEndpointDown(
                f"the LLM endpoint {api_base or '(default)'} (model {model!r}) failed {self.streak} calls in a row "
                f"(llm.max_consecutive_failures={limit}); last error: {error[:300]}. Likely fix: {likely_fix(error)}. "
                "The run is saved: fix it and run again with --resume")


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
