"""What the design agent's calls cost, and the caps that stop a run when it has spent enough.

``genesys.cost`` holds the prices of the ensemble's models, by name, in US dollars per million prompt
and per million completion tokens (the way providers publish them), and two caps, both off by default:
``max_total_tokens`` (prompt plus completion, every model) and ``max_cost``. Every call counts, stalled
and failed ones too: the server bills what it processed whether or not the answer was usable. A model
without a price costs nothing here and its tokens still count towards ``max_total_tokens``.

A cap is the user's choice, not a failure: once reached, the run schedules no new job, lets the ones in
flight finish and be recorded, saves, and ends as a finished run does. The totals are folded from
``history.jsonl`` (every design line carries its tokens), so ``--resume`` sees what was spent: with the
same cap it stops at once, with a larger one it goes on.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any, Iterable, Mapping

from openevolve_genesys.strict import ConfigError, build, field_names, finite_number, reject_unknown

PER_TOKENS = 1_000_000  # prices are per million tokens


@dataclass(frozen=True)
class Price:
    """One model's price in US dollars per million tokens."""

    prompt: float = 0.0  # per million prompt (input) tokens
    completion: float = 0.0  # per million completion (output) tokens

    def __post_init__(self) -> None:
        for name in ("prompt", "completion"):
            value = getattr(self, name)
            if not finite_number(value) or value < 0:
                raise ValueError(f"{name} must be a finite number >= 0 (US dollars per million tokens), "
                                 f"got {value!r}")

    def cost(self, prompt_tokens: int, completion_tokens: int) -> float:
        return (prompt_tokens * self.prompt + completion_tokens * self.completion) / PER_TOKENS


@dataclass(frozen=True)
class CostSettings:
    """The ``genesys.cost`` section: prices by model name and the run's spending caps."""

    # model name (as in llm.models[].name) -> {prompt, completion}: US dollars per million tokens
    prices: Mapping[str, Price] = field(default_factory=dict)
    max_total_tokens: int | None = None  # prompt plus completion tokens of every call; null: no cap
    max_cost: float | None = None  # US dollars by the prices; null: no cap

    def __post_init__(self) -> None:
        tokens, cost = self.max_total_tokens, self.max_cost
        if tokens is not None and (not isinstance(tokens, int) or isinstance(tokens, bool) or tokens < 1):
            raise ValueError(f"max_total_tokens must be a whole number >= 1, or null for no cap; got {tokens!r}")
        if cost is not None and (not finite_number(cost) or cost <= 0):
            raise ValueError(f"max_cost must be a number > 0 (US dollars), or null for no cap; got {cost!r}")
        if cost is not None and not self.prices:
            raise ValueError("max_cost needs prices: set genesys.cost.prices.<model>: {prompt: ..., "
                             "completion: ...} for the models of llm.models")

    @classmethod
    def from_dict(cls, raw: Mapping[str, Any]) -> "CostSettings":
        reject_unknown(raw, field_names(cls), "genesys.cost")
        prices_raw = raw.get("prices") or {}
        if not isinstance(prices_raw, Mapping):
            raise ConfigError("genesys.cost.prices must map model names to {prompt: ..., completion: ...}, got "
                              f"{type(prices_raw).__name__}")
        prices = {str(name): build(Price, price or {}, f"genesys.cost.prices.{name}")
                  for name, price in prices_raw.items()}
        return build(cls, {**raw, "prices": prices}, "genesys.cost")

    def check_models(self, models: Iterable[str]) -> None:
        """A price must name a model of the ensemble: a misspelt name would price nothing and cap nothing."""
        names = sorted(set(models))
        for name in self.prices:
            if name not in names:
                raise ConfigError(f"genesys.cost.prices names model {name!r}, which is not in llm.models "
                                  f"({', '.join(names) or 'none'}); use a model's name exactly as written there")

    def cap_reached(self, spend: "Spend") -> str | None:
        """Which cap the totals reached, with the totals, as one line; None while both are below."""
        if self.max_total_tokens is not None and spend.total_tokens >= self.max_total_tokens:
            return f"genesys.cost.max_total_tokens={self.max_total_tokens} reached: {spend.line()}"
        if self.max_cost is not None and spend.cost >= self.max_cost:
            return f"genesys.cost.max_cost={self.max_cost:g} reached: {spend.line()}"
        return None


@dataclass(frozen=True)
class Spend:
    """The tokens and cost of every LLM call of a run so far."""

    prompt_tokens: int = 0
    completion_tokens: int = 0
    cost: float = 0.0
    estimated: bool = False  # part of the tokens are estimates (llm/usage.py)

    @property
    def total_tokens(self) -> int:
        return self.prompt_tokens + self.completion_tokens

    def line(self) -> str:
        about = " (partly estimated)" if self.estimated else ""
        return (f"{self.prompt_tokens} prompt + {self.completion_tokens} completion = {self.total_tokens} tokens"
                f"{about}, ${self.cost:.4f}")

