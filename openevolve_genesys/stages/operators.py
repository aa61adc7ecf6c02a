"""The combination stage's offline design agent: operators on the combining units, as an OpenEvolve LLM client.

It reads the seed program and ``Unit to mutate:`` from the prompt (as the base stage's offline mutator
does) and answers with a SEARCH/REPLACE diff of one unit of the combination template:

    Plan       swap_member (another pool member in one cell), combinator (single <-> gate <-> heads),
               interleave (one more cell in the layer cycle: a hybrid stack), drop (one cell fewer)
    Gate       its gate: data-dependent or static; when no cell uses a gate, a cell becomes one
    HeadSplit  the first member's share of the heads; when no cell splits heads, a cell becomes one

Members are drawn with weight 1/(rank+1) in the pool's order (m0, the best base design, first), so the
better base designs are combined more often. A plan's neighbourhood is small (a dozen children of a
one-cell plan over a pool of four), so the client remembers the children it proposed and draws again
rather than repeat one: a repeat would be a cache hit charged as a whole attempt. Answers are
deterministic given the seed, the call count, the prompt and the earlier answers of the same client.
"""

from __future__ import annotations

import ast
import hashlib
import random
from typing import Any, Sequence

from openevolve_genesys.evaluation.hashing import code_hash
from openevolve_genesys.evaluation.program import ProgramError, replace_class
from openevolve_genesys.mutations.client import PromptAnsweringLLM, format_mutation, parse_prompt
from openevolve_genesys.mutations.mutator import CUSTOM, Mutation
from openevolve_genesys.mutations.units import class_texts, normalise
from openevolve_genesys.stages.template import (
    COMBINATORS, GATE_VARIANTS, HEAD_SPLIT_VARIANTS, Cell, plan_text,
)

MODEL_NAME = "offline-combinator"
MAX_CYCLE = 4  # longer cycles than the deepest smoke/seed stacks would never repeat
# Tries for a child this client has not proposed before, first for the asked unit, then for any unit. Members
# are drawn with weights 1/rank, so the rarest child of a one-cell plan comes about once in 20 draws: 8x more
# tries for any unit make missing a child that exists about 1e-4 likely, where 24 missed it in 15% of runs.
DRAWS = 24
ANY_UNIT_DRAWS = 8 * DRAWS


def init_combination_client(model_cfg: Any) -> "CombinationMutationLLM":
    """OpenEvolve's ``init_client`` hook for the stage's offline agent."""
    return CombinationMutationLLM(model_cfg)


def pool_keys(source: str) -> list[str]:
    """The member keys of the program's ``POOL`` dict (outside the EVOLVE-BLOCK), in the pool's order."""
    for node in ast.parse(source).body:
        if isinstance(node, ast.Assign) and any(isinstance(t, ast.Name) and t.id == "POOL" for t in node.targets):
            if isinstance(node.value, ast.Dict):
                return [k.value for k in node.value.keys if isinstance(k, ast.Constant)]
    raise ValueError("the program has no POOL = {...} mapping: it is not a combination-stage program")


def read_cycle(source: str) -> list[Cell]:
    """``Plan.CYCLE`` of the program's EVOLVE-BLOCK as data."""
    plan = class_texts(source).get("Plan")
    if plan is None:
        raise ValueError("the EVOLVE-BLOCK has no Plan class")
    for node in ast.parse(plan).body[0].body:
        if isinstance(node, ast.Assign) and any(isinstance(t, ast.Name) and t.id == "CYCLE" for t in node.targets):
            try:
                cycle = [tuple(cell) for cell in ast.literal_eval(node.value)]
            except (ValueError, TypeError):
                break
            if cycle and all(c and c[0] in COMBINATORS and len(c) == 1 + COMBINATORS[c[0]] for c in cycle):
                return cycle
    raise ValueError("Plan.CYCLE is not a literal tuple of cells such as ('single', 'm0'); the offline "
                     "operators only edit plans in that form")


def _pick(keys: Sequence[str], rng: random.Random, avoid: Sequence[str] = ()) -> str:
    options = [(k, 1.0 / (rank + 1)) for rank, k in enumerate(keys) if k not in avoid] or [(keys[0], 1.0)]
    return rng.choices([k for k, _ in options], weights=[w for _, w in options])[0]


def _with_combinator(cell: Cell, kind: str, keys: Sequence[str], rng: random.Random) -> Cell:
    first = cell[1]
    if kind == "single":
        return ("single", rng.choice(cell[1:]))
    second = cell[2] if len(cell) == 3 else _pick(keys, rng, avoid=[first])
    return (kind, first, second)


def mutate_plan(cycle: list[Cell], keys: Sequence[str], rng: random.Random, operator: str | None = None
                ) -> tuple[list[Cell], str]:
    """A changed cycle and the operator's name; ``operator`` forces one (else a random applicable one)."""
    applicable = ["swap_member", "combinator"] + (["interleave"] if len(cycle) < MAX_CYCLE else []) \
        + (["drop"] if len(cycle) > 1 else [])
    name = operator or rng.choice(applicable)
    cycle = list(cycle)
    i = rng.randrange(len(cycle))
    if name == "swap_member":
        slot = rng.randrange(1, len(cycle[i]))
        cell = list(cycle[i])
        cell[slot] = _pick(keys, rng, avoid=cycle[i][1:])
        cycle[i] = tuple(cell)
    elif name == "combinator":
        kind = rng.choice([k for k in COMBINATORS if k != cycle[i][0]])
        cycle[i] = _with_combinator(cycle[i], kind, keys, rng)
    elif name in ("gate", "heads"):  # a cell becomes this combinator (Gate and HeadSplit operators)
        cycle[i] = _with_combinator(cycle[i], name, keys, rng)
    elif name == "interleave":
        used = {k for cell in cycle for k in cell[1:]}
        cycle.insert(i + 1, ("single", _pick(keys, rng, avoid=sorted(used))))
    elif name == "drop":
        cycle.pop(i)
    else:
        raise ValueError(f"unknown plan operator {name!r}")
    return cycle, name


def _variant(source: str, unit: str, variants: dict[str, str], rng: random.Random) -> tuple[str, str, str]:
    """(new class text, its variant name, the current variant) for a unit with a small variant catalogue."""
    current = {normalise(text): name for name, text in variants.items()}.get(normalise(class_texts(source)[unit]),
                                                                             CUSTOM)
    name = rng.choice([n for n in variants if n != current])
    return variants[name], name, current


def propose(source: str, unit: str | None, rng: random.Random) -> Mutation:
    """One combination operator applied to ``source``; ``unit`` picks the family (Plan when None or unknown)."""
    texts = class_texts(source)
    keys = pool_keys(source)
    cycle = read_cycle(source)
    kinds = {cell[0] for cell in cycle}
    if unit == "Gate" and "gate" in kinds:
        text, name, previous = _variant(source, "Gate", GATE_VARIANTS, rng)
        return Mutation(replace_class(source, "Gate", text), "Gate", f"Gate:{name}", texts["Gate"], text, previous)
    if unit == "HeadSplit" and "heads" in kinds:
        text, name, previous = _variant(source, "HeadSplit", HEAD_SPLIT_VARIANTS, rng)
        return Mutation(replace_class(source, "HeadSplit", text), "HeadSplit", f"HeadSplit:{name}",
                        texts["HeadSplit"], text, previous)
    forced = {"Gate": "gate", "HeadSplit": "heads"}.get(unit or "")
    new_cycle, name = mutate_plan(cycle, keys, rng, forced)
    if new_cycle == cycle:  # e.g. a swap with a one-member pool: fall back to any change of the plan
        new_cycle, name = mutate_plan(cycle, keys, rng, "interleave" if len(cycle) < MAX_CYCLE else "drop")
    text = plan_text(new_cycle)
    return Mutation(replace_class(source, "Plan", text), "Plan", f"Plan:{name}", texts["Plan"], text)


class CombinationMutationLLM(PromptAnsweringLLM):
    """Answers design prompts of a combination stage with one combination operator's diff."""

    def __init__(self, model_cfg: Any = None):
        super().__init__(model_cfg)
        self.model = MODEL_NAME  # not the offline mutator's name: the accounting and credit tell them apart
        self.proposed: set[str] = set()  # code hashes of every child proposed so far (and of their seeds)

    def respond(self, prompt: str) -> str:
        """The answer to one user message; a prompt it cannot use gets an explanation without a diff."""
        self.calls += 1
        self.last_mutation = None
        seed, unit = parse_prompt(prompt)
        if seed is None:
            return "Offline combinator: the prompt holds no '## Seed program' block, so no change is proposed.\n"
        digest = hashlib.sha256(prompt.encode()).hexdigest()[:16]
        rng = random.Random(f"{self.random_seed}:{self.calls}:{digest}")
        try:
            mutation = self._new_child(seed, unit, rng)
        except (ProgramError, ValueError, SyntaxError) as err:
            return f"Offline combinator: cannot change the seed program ({type(err).__name__}: {err}); no change.\n"
        self.last_mutation = mutation
        return format_mutation(mutation)

    def _new_child(self, seed: str, unit: str | None, rng: random.Random) -> Mutation:
        """A child not proposed before: DRAWS tries for ``unit``, then ANY_UNIT_DRAWS for any unit, else a repeat."""
        self.proposed.add(code_hash(seed))
        seen: set[tuple[str, str]] = set()  # (unit, new class text) drawn in this call: each child hashed once
        mutation = None
        for asked in [unit] * DRAWS + [None] * ANY_UNIT_DRAWS:
            mutation = propose(seed, asked, rng)
            if (mutation.unit, mutation.replace) in seen:
                continue
            seen.add((mutation.unit, mutation.replace))
            key = code_hash(mutation.child_source)
            if key not in self.proposed:
                break
        self.proposed.add(code_hash(mutation.child_source))
        return mutation
