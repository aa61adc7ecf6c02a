"""Per-framework catalogues of unit alternatives: ``catalogue(framework)`` -> unit -> alternatives, baseline first.

Each framework module writes its own units; ``shared`` holds the input maps and readouts common to all three.
Catalogues are built once per process (they read the framework files for the baselines).
"""

from __future__ import annotations

import functools
import math
from types import MappingProxyType
from typing import Mapping

from openevolve_genesys.evaluation.program import framework_path
from openevolve_genesys.mutations.catalogue import coefficient_dynamics, matrix_mixer, test_time_regression
from openevolve_genesys.mutations.catalogue.base import Alternative
from openevolve_genesys.mutations.units import normalise

__all__ = ["Alternative", "catalogue", "design_space_size"]

_MODULES = {
    "coefficient_dynamics": coefficient_dynamics,
    "test_time_regression": test_time_regression,
    "matrix_mixer": matrix_mixer,
}


@functools.lru_cache(maxsize=None)
def catalogue(framework: str) -> Mapping[str, tuple[Alternative, ...]]:
    """Unit -> its alternatives for ``framework``, in the framework file's unit order; names and texts are unique."""
    framework_path(framework)  # raises a clear error for an unknown framework
    units = _MODULES[framework].alternatives()
    for unit, alternatives in units.items():
        names = [a.name for a in alternatives]
        if len(set(names)) != len(names):
            raise ValueError(f"{framework} catalogue: duplicate alternative names for {unit}: {names}")
        keys = {normalise(a.text) for a in alternatives}
        if len(keys) != len(alternatives):
            raise ValueError(f"{framework} catalogue: two alternatives of {unit} are the same code")
        wrong = [a.name for a in alternatives if a.unit != unit]
        if wrong:
            raise ValueError(f"{framework} catalogue: alternatives {wrong} of {unit} define another class")
    return MappingProxyType({unit: tuple(alternatives) for unit, alternatives in units.items()})


def design_space_size(framework: str) -> int:
    """How many designs the catalogue spans: the product of the per-unit choice counts."""
    return math.prod(len(alternatives) for alternatives in catalogue(framework).values())
