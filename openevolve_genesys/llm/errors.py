"""The failures of an LLM call, and the attempt class each one puts a design attempt in.

Shared by the streaming client, which raises the ``LLMCallError`` family, and the controller, which also
meets the raw SDK and asyncio errors of OpenEvolve's stock client.
"""

from __future__ import annotations

import json
from typing import Any

import openai

from openevolve_genesys.outcomes import AttemptClass

RETRYABLE_STATUS = frozenset({408, 409, 429})  # plus every 5xx: the statuses OpenAI's own SDK retries


class LLMCallError(Exception):
    """An LLM call that produced no answer; ``seconds`` of wall time were wasted, ``tokens`` received."""

    def __init__(self, message: str, seconds: float = 0.0, tokens: int = 0, model: str = "", api_base: str = ""):
        super().__init__(message)
        self.seconds, self.tokens, self.model, self.api_base = float(seconds), int(tokens), model, api_base

    def __reduce__(self) -> tuple[Any, ...]:  # keep the fields across processes (the default keeps only args)
        return type(self), (str(self), self.seconds, self.tokens, self.model, self.api_base)


class LLMStalled(LLMCallError):
    """The model stopped making progress (policy cut); not the design's fault, re-queue the attempt."""


class LLMUnavailable(LLMCallError):
    """The endpoint failed (unreachable, HTTP 5xx/429, malformed stream) on every attempt."""


class LLMRequestRejected(LLMCallError):
    """The endpoint refused the request itself (HTTP 400, 401, 404, ...): a configuration error."""


def classify_llm_error(exc: BaseException) -> AttemptClass:
    """The attempt class of a failed LLM call: stalled, infra, or invalid (the request or code is at fault)."""
    if isinstance(exc, LLMStalled):
        return "stalled"
    if isinstance(exc, LLMUnavailable):
        return "infra"
    if isinstance(exc, openai.APITimeoutError):  # before APIConnectionError, its base class
        return "infra" if connect_timeout(exc) else "stalled"
    if isinstance(exc, TimeoutError):  # asyncio.TimeoutError is TimeoutError since Python 3.11
        return "stalled"
    if isinstance(exc, openai.APIStatusError):
        return "infra" if retryable(exc.status_code) else "invalid"
    # Connection failures, error events inside a stream, unparsable bodies (the stock client lets json raise).
    if isinstance(exc, (openai.APIError, ConnectionError, json.JSONDecodeError)):
        return "infra"
    return "invalid"  # LLMRequestRejected (HTTP 400/401/404: the configuration) and any other bug


def retryable(status: int) -> bool:
    return status in RETRYABLE_STATUS or status >= 500


def connect_timeout(err: BaseException) -> bool:
    # The SDK wraps its HTTP library's ConnectTimeout (httpx or httpx2 by version): match the name, not the module.
    return type(err.__cause__).__name__ == "ConnectTimeout"
