"""The tokens one LLM call received, and how a client shows them to the thread that made the call.

An attempt that runs to the end is counted by the server itself: the request asks for
``stream_options: {"include_usage": true}`` and the server sends ``usage`` in a last chunk. An attempt
cut short (stalled, failed mid-stream, cancelled by the caller) never gets that chunk, nor does one from a
server that ignores the option; it counts the chunks that carried text (answer or reasoning) instead.
Its prompt tokens, which a server bills once it has accepted the request, are then estimated as the
prompt's characters / 4 (the stall policy's rate estimate); an attempt the server never answered (a
refused connection, an HTTP error) is taken to have cost none.
OpenAI, vLLM, SGLang, llama.cpp and Ollama stream one token per chunk, so the fallback is exact there and
a lower bound on a server that batches tokens. (The stall policy keeps its own rate estimate, characters
/ 4, which does not depend on chunking; this count is for the accounting.)

Worker threads share one client, so what a call leaves on the client (``last_usage``, ``last_call``) is
kept per thread: each thread reads its own call's, never one that another thread finished in between.
"""

from __future__ import annotations

import math
import threading
from dataclasses import dataclass
from typing import Any, Mapping

from openevolve_genesys.llm.stall import TOKEN_CHARS, Progress


@dataclass(frozen=True)
class TokenCount:
    """The tokens one LLM call cost, as the controller records them with the attempt."""

    prompt: int = 0
    completion: int = 0
    estimated: bool = False  # part of the figure is an estimate (prompt characters / 4, or text chunks)

    @classmethod
    def from_usage(cls, usage: Mapping[str, Any] | None) -> "TokenCount":
        """From a client's ``last_usage`` (OpenEvolve's keys; None or missing keys count 0)."""
        usage = usage or {}
        return cls(int(usage.get("prompt_tokens") or 0), int(usage.get("completion_tokens") or 0),
                   bool(usage.get("estimated", False)))

    def __add__(self, other: "TokenCount") -> "TokenCount":
        """Two calls' tokens together (an attempt's first answer and its repair replies)."""
        return TokenCount(self.prompt + other.prompt, self.completion + other.completion,
                          self.estimated or other.estimated)


def estimate_tokens(chars: int) -> int:
    return math.ceil(chars / TOKEN_CHARS)


@dataclass
class CallTokens:
    """Tokens received by one call, summed over its attempts (retries included)."""

    prompt_estimate: int = 0  # the prompt's tokens by characters / 4, for attempts the server never counted
    prompt: int = 0  # the server's count, else prompt_estimate for each attempt it accepted
    completion: int = 0  # received: the server's count, else the text-carrying chunks
    estimated: bool = False  # part of the figure is an estimate: prompt characters or text chunks

    def add(self, progress: Progress) -> None:
        if progress.usage is not None:
            self.prompt += progress.usage[0]
            self.completion += progress.usage[1]
            return
        self.completion += progress.chunks
        if progress.accepted:
            self.prompt += self.prompt_estimate
        self.estimated = self.estimated or progress.chunks > 0 or (progress.accepted and self.prompt_estimate > 0)

    def usage(self, model: str) -> dict[str, Any]:
        """In the shape of OpenEvolve's ``last_usage`` (its stock client's keys), plus ``estimated``."""
        return {"prompt_tokens": self.prompt, "completion_tokens": self.completion,
                "total_tokens": self.prompt + self.completion, "model": model, "estimated": self.estimated}


def reported_usage(chunk: Any) -> tuple[int, int] | None:
    """(prompt, completion) tokens of a chunk that carries the server's ``usage``, else None."""
    usage = getattr(chunk, "usage", None)
    if usage is None:
        return None
    return int(getattr(usage, "prompt_tokens", 0) or 0), int(getattr(usage, "completion_tokens", 0) or 0)


class PerThread:
    """A client attribute whose value each thread sets and reads on its own (None until set)."""

    def __set_name__(self, owner: type, name: str) -> None:
        self.name = name

    def __get__(self, obj: Any, owner: type | None = None) -> Any:
        if obj is None:
            return self
        return getattr(_locals(obj), self.name, None)

    def __set__(self, obj: Any, value: Any) -> None:
        setattr(_locals(obj), self.name, value)


def _locals(obj: Any) -> threading.local:
    # setdefault on the instance dict is atomic under the GIL: two threads never get different locals.
    return obj.__dict__.setdefault("_per_thread", threading.local())
