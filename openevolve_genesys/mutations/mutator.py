"""The offline mutation operator: swap one unit of a program for another catalogue alternative.

``propose`` names what each unit currently is (by its docstring-free syntax tree; anything else is
"custom"), picks the requested unit or a random one, picks a different alternative and returns the
child together with the SEARCH/REPLACE pair that turns the seed into it: SEARCH is the unit's class
exactly as the seed spells it, REPLACE the alternative's class text.
"""

from __future__ import annotations

import functools
import random
from dataclasses import dataclass

from openevolve_genesys.evaluation.program import framework_path, replace_class
from openevolve_genesys.mutations.catalogue import catalogue, design_space_size
from openevolve_genesys.mutations.units import class_texts, normalise

__all__ = ["Design", "Mutation", "design_space_size", "enumerate_designs", "identify", "propose"]

CUSTOM = "custom"


@dataclass(frozen=True)
class Mutation:
    child_source: str
    unit: str
    operator: str  # "<unit>:<alternative>", e.g. "Coefficients:linear_l1"
    search: str  # the unit's class text exactly as in the seed
    replace: str  # the alternative's class text
    previous: str = CUSTOM  # the alternative the seed had for this unit


@dataclass(frozen=True)
class Design:
    choices: dict[str, str]  # unit -> alternative name
    source: str


@functools.lru_cache(maxsize=None)
def _names_by_key(framework: str) -> dict[str, dict[str, str]]:
    units = catalogue(framework)
    return {unit: {normalise(a.text): a.name for a in alternatives} for unit, alternatives in units.items()}


def identify(source: str, framework: str) -> dict[str, str]:
    """Unit -> the catalogue alternative ``source`` uses for it, ``"custom"`` when it matches none."""
    texts = class_texts(source)
    return {unit: names.get(normalise(texts[unit]), CUSTOM) if unit in texts else CUSTOM
            for unit, names in _names_by_key(framework).items()}


def propose(source: str, framework: str, *, unit: str | None, rng: random.Random) -> Mutation:
    """Swap ``unit`` (a random unit of ``source`` when None) for a different alternative of ``framework``."""
    units = catalogue(framework)
    if unit is not None and unit not in units:
        raise ValueError(f"the {framework} catalogue has no unit {unit!r}; units: {', '.join(units)}")
    texts = class_texts(source)
    present = [u for u in units if u in texts]
    if (unit is not None and unit not in texts) or not present:
        raise ValueError(f"the program's EVOLVE-BLOCK lacks the unit class {unit or 'of any unit'} of "
                         f"{framework} (it has {', '.join(texts) or 'no classes'}); a unit must stay one "
                         "top-level class of its name")
    chosen = unit if unit is not None else rng.choice(present)
    current = identify(source, framework)[chosen]
    options = [a for a in units[chosen] if a.name != current]
    alternative = rng.choice(options)
    child = replace_class(source, chosen, alternative.text)
    return Mutation(child_source=child, unit=chosen, operator=f"{chosen}:{alternative.name}",
                    search=texts[chosen], replace=alternative.text, previous=current)


def enumerate_designs(framework: str, n: int, rng: random.Random, *, base: str | None = None) -> list[Design]:
    """``n`` distinct designs drawn uniformly from the catalogue's product space, built on ``base``
    (the framework file when None)."""
    units = catalogue(framework)
    size = design_space_size(framework)
    if not 0 <= n <= size:
        raise ValueError(f"n must be in [0, {size}] (the {framework} design space), got {n}")
    source = base if base is not None else framework_path(framework).read_text()
    designs = []
    for index in rng.sample(range(size), n):
        choices, child = {}, source
        for unit, alternatives in units.items():
            index, pick = divmod(index, len(alternatives))
            choices[unit] = alternatives[pick].name
            child = replace_class(child, unit, alternatives[pick].text)
        designs.append(Design(choices, child))
    return designs
