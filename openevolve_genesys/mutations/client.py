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

For tests and benchmarks of repair rounds, ``break_rate`` (``genesys.offline_break_rate``) is the share of
answers broken on purpose: a syntax slip or a wrong name in the REPLACE text. Given a repair prompt
(prompts/repair.py) for a child it broke, it answers with a block turning the broken text back into the
unbroken one; for any other child it answers without a diff.
"""

from __future__ import annotations

import dataclasses
import hashlib
import random
import re
from abc import abstractmethod
from typing import Any

from openevolve.llm.base import LLMInterface

from openevolve_genesys.evaluation.program import ProgramError, detect_framework
from openevolve_genesys.mutations.catalogue import catalogue
from openevolve_genesys.mutations.mutator import Mutation, propose
from openevolve_genesys.prompts.repair import CHILD_HEADING

MODEL_NAME = "offline-mutator"
_SEED_HEADING = re.compile(r"^#{1,3}[ \t]*(?:Seed program|Current Program)[ \t]*$", re.MULTILINE | re.IGNORECASE)
_FENCE = re.compile(r"```[\w+-]*[ \t]*\n(.*?)\n[ \t]*```", re.DOTALL)
_UNIT_LINE = re.compile(r"^[ \t]*Unit to mutate:[ \t]*`?([^`\s]*)`?", re.MULTILINE)


def init_offline_client(model_cfg: Any, break_rate: float = 0.0) -> "OfflineMutationLLM":
    """OpenEvolve's ``init_client`` hook: ``LLMModelConfig(name=..., init_client=init_offline_client)``
    (``functools.partial(init_offline_client, break_rate=...)`` breaks that share of the answers)."""
    return OfflineMutationLLM(model_cfg, break_rate=break_rate)


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

    def __init__(self, model_cfg: Any = None, break_rate: float = 0.0):
        super().__init__(model_cfg)
        if not 0 <= break_rate <= 1:
            raise ValueError(f"break_rate must be a probability in [0, 1], got {break_rate!r}")
        self.break_rate = break_rate
        self.last_operator: str | None = None
        self.last_break: str | None = None  # how the last answer was broken: syntax, name, or None
        # broken REPLACE text -> the unbroken one, for the repair prompts to come. Worker threads share a client:
        # one insertion or one list() of the items is atomic under the GIL, and the client must pickle (no lock).
        self._broken: dict[str, str] = {}

    def respond(self, prompt: str) -> str:
        """The answer to one user message; never raises for a bad prompt (the reply explains instead)."""
        self.calls += 1
        self.last_operator, self.last_mutation, self.last_break = None, None, None
        if CHILD_HEADING in prompt:
            return self._repair(prompt)
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
        if self.break_rate and rng.random() < self.break_rate:
            mutation = self._broken_version(mutation, rng)
        return format_mutation(mutation, notes)

    def _broken_version(self, mutation: Mutation, rng: random.Random) -> Mutation:
        """The mutation with its REPLACE text broken, remembered so that a repair prompt can undo it."""
        kinds = [kind for kind, broken in (("syntax", _syntax_slip), ("name", _wrong_name))
                 if broken(mutation.replace) is not None]
        if not kinds:
            return mutation
        self.last_break = rng.choice(kinds)
        replace = (_syntax_slip if self.last_break == "syntax" else _wrong_name)(mutation.replace) or ""
        self._broken[replace] = mutation.replace
        return dataclasses.replace(mutation, replace=replace)

    def _repair(self, prompt: str) -> str:
        """A block undoing the break of a child this client broke, else an answer without a diff."""
        heading = prompt.index(CHILD_HEADING)
        fence = _FENCE.search(prompt, heading)
        child = fence.group(1) if fence else ""
        found = next(((broken, fixed) for broken, fixed in list(self._broken.items()) if broken in child), None)
        if found is None:
            return "Offline mutator: this child was not broken by me, so I have no repair to propose.\n"
        broken, fixed = found
        return "\n".join(["Operator: repair:offline", "<<<<<<< SEARCH", broken, "=======", fixed,
                          ">>>>>>> REPLACE"]) + "\n"


def _syntax_slip(text: str) -> str | None:
    """``text`` with an opening parenthesis never closed on its first ``return`` line (None: no such line)."""
    lines = text.split("\n")
    for i, line in enumerate(lines):
        head, sep, rest = line.partition("return ")
        if sep and not head.strip():
            lines[i] = f"{head}return ({rest}"
            return "\n".join(lines)
    return None


def _wrong_name(text: str) -> str | None:
    """``text`` with its first ``jnp.`` call made through an undefined module name (None: it has none)."""
    return text.replace("jnp.", "jnp_undefined.", 1) if "jnp." in text else None
