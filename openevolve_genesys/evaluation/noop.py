"""No-op screening: how far a child's probe outputs are from its seed's, and whether that is too close to train.

The distance is the largest relative RMS difference of the fixed probe's numbers (hashing.functional_probe),

    d = max over layer slots and over a in {y, y_after_step} of  ||a_child - a_seed|| / ||a_seed||

with ||.|| the Frobenius norm over the whole probe batch. ``y`` is the output on the fixed inputs and
``y_after_step`` the output after one SGD step on the fixed loss, so a change that agrees at initialisation but
learns differently (a zero-initialised gate in front of a changed branch) is not at distance 0. Relative, because
the three frameworks' outputs differ in scale, and an RMS over the batch rather than a maximum, because a no-op
edit moves every element by rounding (reassociation, about 1e-7 relative) while a real change moves the function
as a whole.

The comparison means "the same function" only at the same parameters. Both programs are built with the same key
(``nnx.Rngs(seed)``), so a child that keeps the seed's parameters (renamed attributes included) starts from the
same values; a child that adds, removes, reshapes or re-initialises a parameter starts elsewhere, and its
outputs differ because of that, not because of what it computes. Such a child is never a no-op candidate
(``params_match`` is False): its distance is still recorded, for the report, but never screens it out.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from typing import Any

import numpy as np

from openevolve_genesys.evaluation.hashing import FunctionalProbe, MixerProbe


@dataclass(frozen=True)
class ProbeDistance:
    distance: float  # inf when a probe output is not finite or the two programs' slots do not correspond
    params_match: bool  # the child's initial parameters are the seed's (as a multiset of exact values)

    def is_noop(self, tolerance: float) -> bool:
        """Whether a child at this distance computes its seed's function, to ``tolerance``."""
        return self.params_match and self.distance <= tolerance

    def to_dict(self) -> dict[str, Any]:
        # JSON has no infinity that every reader accepts: a distance that says nothing is null.
        return {"distance": self.distance if math.isfinite(self.distance) else None,
                "params_match": self.params_match}


def relative_rms(child: np.ndarray, seed: np.ndarray) -> float:
    """||child - seed|| / ||seed||; 0 for two zero arrays, inf for a change of a zero array or non-finite values."""
    child, seed = np.asarray(child, np.float64), np.asarray(seed, np.float64)
    if child.shape != seed.shape:
        return math.inf
    diff = float(np.linalg.norm(child - seed))
    norm = float(np.linalg.norm(seed))
    if not (math.isfinite(diff) and math.isfinite(norm)):
        return math.inf
    if norm == 0.0:
        return 0.0 if diff == 0.0 else math.inf
    return diff / norm


def probe_distance(child: FunctionalProbe, seed: FunctionalProbe) -> ProbeDistance:
    """The distance of ``child``'s probe from ``seed``'s, both taken with the same options (see the module doc)."""
    if child.options != seed.options:
        raise ValueError(f"probes taken with different (d_model, n_heads, seq_len, batch, seed): {child.options} "
                         f"vs {seed.options}; take both with the same options")
    pairs = _pairs(child, seed)
    if pairs is None:
        return ProbeDistance(math.inf, False)
    distance = max(max(relative_rms(c.y, s.y), relative_rms(c.y_after_step, s.y_after_step)) for c, s in pairs)
    params_match = all(c.init_digests == s.init_digests for c, s in pairs)
    return ProbeDistance(distance, params_match)


def _pairs(child: FunctionalProbe, seed: FunctionalProbe) -> list[tuple[MixerProbe, MixerProbe]] | None:
    """The slots to compare: the same (layer, n_layers) slots, or a plain program against every slot of a
    layer-aware one (a stack of one function is that function in every layer); None when they do not match."""
    if child.slots.keys() == seed.slots.keys():
        return [(child.slots[k], seed.slots[k]) for k in child.slots]
    if list(child.slots) == [None]:
        return [(child.slots[None], s) for s in seed.slots.values()]
    if list(seed.slots) == [None]:
        return [(c, seed.slots[None]) for c in child.slots.values()]
    return None


def noop_message(distance: ProbeDistance, tolerance: float) -> str:
    """The feedback a screened child gets: what was measured and what to do instead."""
    return (f"your change leaves the layer's outputs within {distance.distance:.2g} (relative RMS, tolerance "
            f"{tolerance:g}) of the seed's on the probe: on fixed inputs and the same initial parameters it computes "
            "the same function and learns the same way (renamed variables, comments, reordered or reassociated "
            "arithmetic change nothing the model computes), so it was not trained; change what the unit computes")
