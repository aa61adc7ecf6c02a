"""When a streaming LLM call counts as stalled: the policy, and the progress of one attempt judged against it.

Three rules, whichever fires first: no text within ``first_token_seconds`` of sending the request; no
text for ``idle_seconds``; or, once ``grace_seconds`` have passed since the first text, an average rate
since the first text under ``min_tokens_per_second``. The rate is averaged from the first token rather
than over a sliding window so that one slow patch in an otherwise healthy stream is not a stall (the
idle rule catches a stream that really stops). Tokens are estimated as streamed characters / 4 (answer
plus reasoning text): chunk sizes depend on the server, characters do not, and 4 characters per token is
the usual BPE average for code and English.
"""

from __future__ import annotations

import math
import time
from dataclasses import dataclass

from openevolve_genesys.strict import finite_number

TOKEN_CHARS = 4  # streamed characters per estimated token


@dataclass(frozen=True)
class StallPolicy:
    """When a streaming call counts as making no progress. Tokens are streamed characters / 4."""

    first_token_seconds: float = 60.0  # from sending the request to the first text (includes prompt processing)
    idle_seconds: float = 20.0  # longest gap between two pieces of text
    min_tokens_per_second: float = 0.0  # floor on the average rate since the first token; 0 disables it
    grace_seconds: float = 10.0  # the rate floor applies only this long after the first token

    def __post_init__(self) -> None:
        for name, positive in (("first_token_seconds", True), ("idle_seconds", True),
                               ("min_tokens_per_second", False), ("grace_seconds", False)):
            value = getattr(self, name)
            if not finite_number(value) or value < 0 or (positive and value == 0):
                bound = "> 0" if positive else ">= 0"
                raise ValueError(f"StallPolicy.{name} must be a finite number {bound}, got {value!r}")


@dataclass
class Progress:
    """Text received by one attempt, and when: what the stall policy is judged on (and what the attempt cost)."""

    started: float
    chars: int = 0
    first_at: float | None = None
    last_at: float | None = None
    chunks: int = 0  # chunks that carried text: the token count of an attempt the server never counted
    usage: tuple[int, int] | None = None  # the server's own (prompt, completion) tokens, sent after the last chunk
    accepted: bool = False  # the server answered the request with a stream (it has read, and bills, the prompt)

    @property
    def tokens(self) -> int:
        return math.ceil(self.chars / TOKEN_CHARS)

    def add(self, chars: int, now: float) -> None:
        if chars:
            self.chars += chars
            self.chunks += 1
            self.first_at = now if self.first_at is None else self.first_at
            self.last_at = now

    def deadline(self, policy: StallPolicy, timeout: float | None) -> tuple[float, str]:
        """The moment the attempt counts as stalled unless more text arrives first, and which rule fires."""
        if self.first_at is None:
            rules = [(self.started + policy.first_token_seconds, "first_token")]
        else:
            rules = [(self.last_at + policy.idle_seconds, "idle")]
            if policy.min_tokens_per_second > 0:
                # The average since the first token stays at or above the floor until chars/4/floor seconds.
                floor_at = self.chars / TOKEN_CHARS / policy.min_tokens_per_second
                rules.append((self.first_at + max(policy.grace_seconds, floor_at), "rate"))
        if timeout:
            rules.append((self.started + timeout, "timeout"))
        return min(rules)

    def explain(self, rule: str, policy: StallPolicy, timeout: float | None) -> str:
        if rule == "first_token":
            return (f"no token within first_token_seconds={policy.first_token_seconds:g} "
                    "(raise it if the model is only slow to start, e.g. a long prompt or a cold server)")
        if rule == "idle":
            return f"no token for idle_seconds={policy.idle_seconds:g} after {self.tokens} tokens"
        if rule == "rate":
            rate = self.chars / TOKEN_CHARS / max(time.monotonic() - self.first_at, 1e-9)
            return (f"the rate fell to {rate:.1f} tokens/s, under min_tokens_per_second="
                    f"{policy.min_tokens_per_second:g} (checked after grace_seconds={policy.grace_seconds:g})")
        return (f"still streaming when the per-attempt timeout of {timeout:g} s ran out "
                "(raise llm.timeout or lower max_tokens)")
