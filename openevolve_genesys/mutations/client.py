"""The offline mutation library as an OpenEvolve 0.4.0 LLM client, used when no key or endpoint is configured.

OpenEvolve builds a client through ``LLMModelConfig.init_client(model_cfg)`` in every worker (spawned
processes pickle the callable, so ``init_offline_client`` lives at module level) and calls
``generate_with_context``. The client reads the seed program (the fenced block under ``## Seed
program``, or OpenEvolve's own ``# Current Program``) and ``Unit to mutate: <Name>`` from the last
user message, and answers in OpenEvolve's diff format:

    Operator: <unit>:<alternative>
    <<<<<<< SEARCH
    <the unit's class as in the seed>
    =======
    <the alternative's class>
    >>>>>>> REPLACE

A prompt it cannot use gets an explanation without diff markers, which OpenEvolve counts as "no valid
diffs" instead of a crash. Answers are deterministic given the seed (``model_cfg.random_seed``, else 0),
the call counter and the prompt.
"""

from __future__ import annotations

import hashlib
import random
import re
from abc import abstractmethod
from typing import Any

from openevolve.llm.base import LLMInterface

from openevolve_genesys.evaluation.program import ProgramError, detect_framework
from openevolve_genesys.mutations.catalogue import catalogue
from openevolve_genesys.mutations.mutator import Mutation, propose

MODEL_NAME = "offline-mutator"
_SEED_HEADING = re.compile(r"^#{1,3}[ \t]*(?:Seed program|Current Program)[ \t]*$", re.MULTILINE | re.IGNORECASE)
_FENCE = re.compile(r"```[\w+-]*[ \t]*\n(.*?)\n[ \t]*```", re.DOTALL)
_UNIT_LINE = re.compile(r"^[ \t]*Unit to mutate:[ \t]*`?([^`\s]*)`?", re.MULTILINE)


def init_offline_client(model_cfg: Any) -> "OfflineMutationLLM":
    """OpenEvolve's ``init_client`` hook: ``LLMModelConfig(name=..., init_client=init_offline_client)``."""
    return OfflineMutationLLM(model_cfg)


def parse_prompt(text: str) -> tuple[str | None, str | None]:
    """(seed program, unit name) from a design prompt; None for what the prompt does not hold."""
    seed = None
    heading = _SEED_HEADING.search(text)
    if heading:
        fence = _FENCE.search(text, heading.end())
        if fence:
            seed = fence.group(1) + "\n"
    unit = _UNIT_LINE.search(text)
    return seed, (unit.group(1) or None) if unit else None


def format_mutation(mutation: Mutation, notes: list[str] | None = None) -> str:
    lines = [f"Operator: {mutation.operator}", "<<<<<<< SEARCH", mutation.search, "=======", mutation.replace,
             ">>>>>>> REPLACE"]
    lines += [f"Note: {note}" for note in notes or []]
    return "\n".join(lines) + "\n"


class PromptAnsweringLLM(LLMInterface):
    """An OpenEvolve LLM client without a network: ``respond`` answers the last user message.

    ``model`` is what OpenEvolve's ensemble logs (``vars(client)["model"]``); ``random_seed`` comes from the
    model config so that a run's answers are reproducible."""

    def __init__(self, model_cfg: Any = None):
        self.model = MODEL_NAME  # an instance attribute: OpenEvolve's ensemble logs vars(client)["model"]
        self.random_seed = int(getattr(model_cfg, "random_seed", None) or 0)
        self.calls = 0
        self.last_mutation: Mutation | None = None
        self.last_usage: dict[str, Any] | None = None

    async def generate(self, prompt: str, **kwargs: Any) -> str:
        return self.respond(prompt)

    async def generate_with_context(self, system_message: str, messages: list[dict[str, str]], **kwargs: Any) -> str:
        users = [m.get("content", "") for m in messages if m.get("role", "user") == "user"]
        return self.respond(users[-1] if users else "")

    @abstractmethod
    def respond(self, prompt: str) -> str:
        """The answer to one user message."""


class OfflineMutationLLM(PromptAnsweringLLM):
    """Answers design prompts by swapping one unit for a catalogue alternative; ``last_operator`` says which."""

    def __init__(self, model_cfg: Any = None):
        super().__init__(model_cfg)
        self.last_operator: str | None = None

    def respond(self, prompt: str) -> str:
        """The answer to one user message; never raises for a bad prompt (the reply explains instead)."""
        self.calls += 1
        self.last_operator, self.last_mutation = None, None
        seed, unit = parse_prompt(prompt)
        if seed is None:
            return ("Offline mutator: the prompt holds no seed program (expected a line '## Seed program' "
                    "followed by a ```python fenced block), so no change is proposed.\n")
        digest = hashlib.sha256(prompt.encode()).hexdigest()[:16]
        rng = random.Random(f"{self.random_seed}:{self.calls}:{digest}")
        notes = []
        try:
            framework = detect_framework(seed)
            units = catalogue(framework)
            if unit is not None and unit not in units:
                notes.append(f"unit {unit!r} has no offline catalogue (units: {', '.join(units)}); "
                             "a random unit was mutated instead")
                unit = None
            mutation = propose(seed, framework, unit=unit, rng=rng)
        except (ProgramError, ValueError, SyntaxError) as err:
            return f"Offline mutator: cannot mutate the seed program ({type(err).__name__}: {err}); no change.\n"
        self.last_operator, self.last_mutation = mutation.operator, mutation
        return format_mutation(mutation, notes)
