"""What a design attempt said to the design agent and what it answered, kept with the design.

OpenEvolve keeps this per program (``ProgramDatabase.log_prompt``, ``Program.prompts`` in every
checkpoint's ``programs/<id>.json``) in the shape ``{template_key: {"system", "user", "responses",
"token_usage"}}``, which its visualizer shows on every program page. The run writes it into each design
event of ``history.jsonl``, so a resumed run rebuilds it like every other part of a design. An attempt may
hear several replies to one prompt (one per call); each is appended with the tokens it cost.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any, Literal, Mapping

TemplateKey = Literal["diff_user", "full_rewrite_user"]  # OpenEvolve's names for the two kinds of prompt


@dataclass(frozen=True)
class TokenUsage:
    """Tokens of one or more LLM calls, as the server (or the streaming client's fallback count) reported."""

    prompt_tokens: int = 0
    completion_tokens: int = 0
    total_tokens: int = 0

    @classmethod
    def from_client(cls, usage: Mapping[str, Any] | None) -> "TokenUsage | None":
        """A client's ``last_usage`` (OpenEvolve's keys), or None when the client reported none."""
        if not usage:
            return None
        prompt, completion = int(usage.get("prompt_tokens") or 0), int(usage.get("completion_tokens") or 0)
        return cls(prompt, completion, int(usage.get("total_tokens") or prompt + completion))

    def __add__(self, other: "TokenUsage") -> "TokenUsage":
        return TokenUsage(self.prompt_tokens + other.prompt_tokens, self.completion_tokens + other.completion_tokens,
                          self.total_tokens + other.total_tokens)

    def to_dict(self) -> dict[str, int]:
        return {"prompt_tokens": self.prompt_tokens, "completion_tokens": self.completion_tokens,
                "total_tokens": self.total_tokens}


@dataclass(frozen=True)
class Reply:
    text: str
    usage: TokenUsage | None = None  # None: the client reported no usage (the offline mutator)


@dataclass(frozen=True)
class PromptLog:
    template_key: TemplateKey
    system: str
    user: str
    replies: tuple[Reply, ...] = ()

    def with_reply(self, reply: Reply) -> "PromptLog":
        return PromptLog(self.template_key, self.system, self.user, (*self.replies, reply))

    @property
    def token_usage(self) -> TokenUsage | None:
        """The replies' tokens summed; None when no reply reported any."""
        reported = [r.usage for r in self.replies if r.usage is not None]
        return sum(reported[1:], reported[0]) if reported else None

    def to_dict(self) -> dict[str, Any]:
        """For history.jsonl: every reply with its own usage."""
        return {"template_key": self.template_key, "system": self.system, "user": self.user,
                "replies": [{"text": r.text, "usage": r.usage.to_dict() if r.usage else None} for r in self.replies]}

    @classmethod
    def from_dict(cls, raw: Mapping[str, Any]) -> "PromptLog":
        replies = tuple(Reply(r["text"], TokenUsage(**r["usage"]) if r.get("usage") else None)
                        for r in raw.get("replies") or [])
        return cls(raw["template_key"], raw["system"], raw["user"], replies)


def template_key(rewrite: bool) -> TemplateKey:
    """OpenEvolve's template key for a prompt asking for a whole program (rewrite) or SEARCH/REPLACE blocks."""
    return "full_rewrite_user" if rewrite else "diff_user"
