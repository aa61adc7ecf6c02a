"""A simulated landscape: every design of one framework's mutation space, each with a latent scaling law.

A design is one alternative per unit of the offline catalogue (``openevolve_genesys.mutations``), numbered
in the mixed radix ``enumerate_designs`` uses (first unit least significant), so design 0 is the baseline.
Its true law is ``L(N) = E + A N^-alpha`` with additive per-(unit, alternative) effects, so designs that
share alternatives scale alike (Genesys's premise that a unit's effect carries over between seeds):

    ln A  = ln A0  + sum_u (level_u + cross_u) + idiosyncratic
    alpha = alpha0 + sum_u (cross_u / ln N_cross + exponent_u)
    E     = E0     + sum_u e_u

``cross`` is the part that makes curves cross: a positive ``cross`` raises the prefactor (worse at small
N) and the exponent just enough that the two cancel at ``N_cross``, so it pays off only above it; a
negative one is better on the ladder and worse at the target. ``level`` shifts the curve at every N.
With ``sigma_cross = 0`` the landscape is "aligned": the ladder ranks designs as the target does, up to
the small independent ``exponent`` effects.
"""

from __future__ import annotations

import math
from dataclasses import dataclass, replace

import numpy as np

from openevolve_genesys.evaluation.program import framework_path
from openevolve_genesys.mutations.catalogue import catalogue
from openevolve_genesys.mutations.units import class_texts

# Non-embedding N of the smoke profile's four rungs (training.model.count_parameters on the baseline of
# every framework; the catalogue keeps N within 10% of these).
SMOKE_N = (25_472, 56_640, 150_080, 335_712)
RUNG_NAMES = ("r0", "r1", "r2", "r3")


@dataclass(frozen=True)
class LandscapeSpec:
    framework: str = "coefficient_dynamics"
    # Baseline law: 6.0 nats at r0, 5.2 at r3 and 4.67 at the target; d ln L / d ln N of -0.06 to -0.04,
    # the range of small LMs (Kaplan et al. 2020, alpha_N = 0.076).
    e0: float = 3.0
    alpha0: float = 0.12
    reducible_at_r0: float = 3.0  # A0 is set so that A0 * N_r0^-alpha0 = this
    sigma_level: float = 0.04  # per (unit, alternative): ln A shift at every N
    sigma_cross: float = 0.15  # per (unit, alternative): ln A shift cancelled by the exponent at n_cross
    n_cross: float = 200_000.0
    sigma_exponent: float = 0.002  # per (unit, alternative): independent exponent effect
    sigma_e: float = 0.01  # per (unit, alternative): irreducible-loss effect, nats
    sigma_design: float = 0.02  # per design: idiosyncratic ln A (units interact a little)
    invalid_fraction: float = 0.15
    noise_sd: float = 0.005  # sd of ln(observed / true loss) of one training run
    rung_n: tuple[int, ...] = SMOKE_N
    target_factor: float = 10.0

    def aligned(self) -> "LandscapeSpec":
        """The same landscape without crossing effects: the ladder's ranking carries to the target."""
        return replace(self, sigma_cross=0.0)


class Landscape:
    """All designs' true laws for one seed; observations are deterministic per (seed, design, rung)."""

    def __init__(self, spec: LandscapeSpec, seed: int):
        if not 0 <= spec.invalid_fraction < 1 or spec.noise_sd < 0:
            raise ValueError("invalid_fraction must be in [0, 1) and noise_sd >= 0")
        self.spec = spec
        self.seed = seed
        units = catalogue(spec.framework)
        self.units: tuple[str, ...] = tuple(units)
        self.alternatives: tuple[tuple[str, ...], ...] = tuple(tuple(a.name for a in alts) for alts in units.values())
        self.radix = np.array([len(a) for a in self.alternatives], dtype=np.int64)
        self.size = int(np.prod(self.radix))
        self.rung_n = np.asarray(spec.rung_n, dtype=float)
        self.rungs = RUNG_NAMES[: len(spec.rung_n)]
        self.target_n = spec.target_factor * float(self.rung_n[-1])
        # Compute of one training, proportional to N (r0 = 1 unit).
        self.costs: tuple[float, ...] = tuple(float(n / self.rung_n[0]) for n in self.rung_n)

        rng = np.random.default_rng([seed, 0x5E1EC7])
        ln_a, alpha, e = self._laws(rng)
        self.ln_a, self.alpha, self.e = ln_a, alpha, e
        self.valid = rng.random(self.size) >= spec.invalid_fraction
        self.valid[0] = True  # the baseline is the framework file, which trains
        self.target_loss = self.true_loss(np.arange(self.size), self.target_n)
        valid_ids = np.flatnonzero(self.valid)
        self.best = int(valid_ids[np.argmin(self.target_loss[valid_ids])])
        self._sources = _SourceTemplate(spec.framework, self.units)

    def _laws(self, rng: np.random.Generator) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
        s = self.spec
        digits = self.digits(np.arange(self.size))
        ln_a = np.full(self.size, math.log(s.reducible_at_r0) + s.alpha0 * math.log(s.rung_n[0]))
        alpha = np.full(self.size, s.alpha0)
        e = np.full(self.size, s.e0)
        for u, k in enumerate(self.radix):
            level, cross = rng.normal(0, s.sigma_level, k), rng.normal(0, s.sigma_cross, k)
            exponent, e_shift = rng.normal(0, s.sigma_exponent, k), rng.normal(0, s.sigma_e, k)
            for effect in (level, cross, exponent, e_shift):
                effect[0] = 0.0  # the baseline's own alternative defines the zero
            pick = digits[:, u]
            ln_a += level[pick] + cross[pick]
            alpha += cross[pick] / math.log(s.n_cross) + exponent[pick]
            e += e_shift[pick]
        jitter = rng.normal(0, s.sigma_design, self.size)
        jitter[0] = 0.0
        return ln_a + jitter, alpha, e

    # -- designs ---------------------------------------------------------------------------------
    def digits(self, designs: np.ndarray) -> np.ndarray:
        """[n, units] alternative index per unit of each design number."""
        rest = np.asarray(designs, dtype=np.int64).copy()
        out = np.empty((rest.size, len(self.radix)), dtype=np.int64)
        for u, k in enumerate(self.radix):
            rest, out[:, u] = np.divmod(rest, k)
        return out

    def number(self, digits: np.ndarray) -> int:
        return int(np.sum(np.asarray(digits) * np.concatenate([[1], np.cumprod(self.radix[:-1])])))

    def mutate(self, design: int, rng: np.random.Generator, unit: int | None = None) -> int:
        """The shared mutation operator: ``design`` with one unit (random unless given) swapped for another
        alternative drawn uniformly."""
        digits = self.digits(np.array([design]))[0]
        u = int(rng.integers(len(self.radix))) if unit is None else unit
        choice = int(rng.integers(self.radix[u] - 1))
        digits[u] = choice + (choice >= digits[u])  # any alternative but the current one
        return self.number(digits)

    def choices(self, design: int) -> dict[str, str]:
        digits = self.digits(np.array([design]))[0]
        return {unit: self.alternatives[u][d] for u, (unit, d) in enumerate(zip(self.units, digits))}

    def source(self, design: int) -> str:
        """The design's program text, as the offline mutator would write it (for code-based features)."""
        return self._sources.build(self.digits(np.array([design]))[0])

    # -- losses ----------------------------------------------------------------------------------
    def true_loss(self, designs: np.ndarray | int, n: float) -> np.ndarray:
        d = np.asarray(designs)
        return self.e[d] + np.exp(self.ln_a[d] - self.alpha[d] * math.log(n))

    def observe(self, design: int, rung: int) -> float:
        """One training run's final loss: the true loss times exp(noise), the same for every method that
        trains this design at this rung in this seed (common random numbers across methods)."""
        noise = np.random.default_rng([self.seed, 0x0B5, design, rung]).normal(0.0, self.spec.noise_sd)
        return float(self.true_loss(design, self.rung_n[rung]) * math.exp(noise))

    def regret(self, design: int) -> float:
        """Target-N true loss of ``design`` above the best valid design of the whole space (nats)."""
        return float(self.target_loss[design] - self.target_loss[self.best])

    def rank_correlation(self, rung: int = 0) -> float:
        """Spearman correlation, over valid designs, of the true loss at ``rung`` and at the target."""
        ids = np.flatnonzero(self.valid)
        a = np.argsort(np.argsort(self.true_loss(ids, self.rung_n[rung])))
        b = np.argsort(np.argsort(self.target_loss[ids]))
        return float(np.corrcoef(a, b)[0, 1])


class _SourceTemplate:
    """The framework file split at its unit classes, so a design's source is one join (no parsing)."""

    def __init__(self, framework: str, units: tuple[str, ...]):
        source = framework_path(framework).read_text()
        texts = class_texts(source)
        pieces, rest = [], source
        for unit in units:
            head, rest = rest.split(texts[unit], 1)
            pieces.append(head)
        self.pieces, self.tail = pieces, rest
        self.texts = [[a.text for a in alts] for alts in catalogue(framework).values()]

    def build(self, digits: np.ndarray) -> str:
        parts = []
        for piece, alts, d in zip(self.pieces, self.texts, digits):
            parts += [piece, alts[d]]
        return "".join(parts) + self.tail
