"""Design selection and verification selection (the selector of Genesys, Cheng et al. 2025, arXiv 2506.20249).

Design selection returns a seed, the unit to mutate, references (other designs and entries of the reference
library) and an optional instruction. Verification selection returns a (design, rung) job. Both read the
quadrants of utility x confidence; an annealed exploration probability decides between the exploit and the
explore quadrant, and per-rung successive-halving budgets bound what verification may spend. A high-utility,
low-confidence design verified at the top rung has nowhere to go up: a share of verification may train it there
again at the next seed (a seed verification), a second pair with the baseline that halves that rung's noise.
With ``credit: true`` the unit comes from operator credit (``credit.py``) instead of uniformly at random,
and credit tilts the exploration probability; with it off the choices are exactly those without credit.
"""

from __future__ import annotations

import random
from dataclasses import dataclass
from typing import Any, Collection, Iterable, Mapping, Sequence, TypeVar

from openevolve_genesys.selection.annealing import SCHEDULES, exploration_probability
from openevolve_genesys.selection.budgets import rung_budgets, rung_usage, seed_room
from openevolve_genesys.selection.credit import CreditSettings, advise
from openevolve_genesys.selection.quadrants import (RANK_BY, Quadrant, RankBy, rank_value, split,
                                                   utility_threshold, quadrant as quadrant_of)
from openevolve_genesys.selection.records import DesignRecord
from openevolve_genesys.strict import build, finite_number

INSTRUCTIONS = {
    Quadrant.DESIGN_EXPLOIT: "This seed is strong and well verified: refine it, keeping what makes it work.",
    Quadrant.DESIGN_EXPLORE: ("This seed is well verified but not among the best: try a substantially different "
                              "idea for the unit rather than a small variation."),
}


T = TypeVar("T")


def rank_weighted(ranked: Sequence[T], rng: random.Random) -> T:
    """One of ``ranked`` (best first), the higher the likelier (weights 1/rank): exploit without collapsing
    onto one. Shared with the OpenEvolve hooks (openevolve_hooks.py), which rank islands the same way."""
    return rng.choices(ranked, weights=[1.0 / (i + 1) for i in range(len(ranked))])[0]


@dataclass(frozen=True)
class SelectorSettings:
    """The ``genesys.selector`` keys."""

    schedule: str = "cosine"  # annealing of the exploration probability: constant, linear or cosine
    explore_start: float = 0.5
    explore_end: float = 0.1
    utility_quantile: float = 0.5  # designs at or above this quantile of utility count as high utility
    confidence_threshold: float = 0.5
    rank_by: RankBy = "mean"  # what ranks designs: the forecast gap's mean, p_better, or the interval's lower end
    halving_ratio: float = 3.0  # successive halving: rung i verifies ~1/ratio^i of the designs
    min_per_rung: int = 1
    verify_share: float = 0.5  # fraction of compute (seconds) spent on verification beyond the first rung
    # Fraction of verification's compute that may re-train verify-exploit designs at the top rung at their next
    # seed (0: never). A fifth keeps promotion, the only evidence on how a gap scales, at four fifths or more,
    # while a run that has promoted about three designs to the top can spend one run on the most promising but
    # uncertain one: its second pair halves the noise variance of its gap there. Capped by genesys.baseline_seeds.
    seed_verification_share: float = 0.2
    num_references: int = 2  # other designs shown to the design agent
    num_library_refs: int = 1  # reference-library entries shown to the design agent
    instruction: str = ""  # a user instruction added to every design prompt
    # Operator credit (off: the unit is drawn uniformly and the schedule alone sets exploration).
    credit: bool = False
    credit_window: int = CreditSettings.window
    credit_exploration: float = CreditSettings.exploration
    credit_change_threshold: float = CreditSettings.change_threshold
    credit_change_tolerance: float = CreditSettings.change_tolerance
    credit_invalid_reward: float = CreditSettings.invalid_reward

    def __post_init__(self) -> None:
        checks = [
            (self.schedule in SCHEDULES, f"schedule must be one of {SCHEDULES}, got {self.schedule!r}"),
            (0 <= self.explore_start <= 1 and 0 <= self.explore_end <= 1, "explore_start/end must be in [0, 1]"),
            (0 <= self.utility_quantile <= 1, "utility_quantile must be in [0, 1]"),
            (0 <= self.confidence_threshold <= 1, "confidence_threshold must be in [0, 1]"),
            (self.rank_by in RANK_BY, f"rank_by must be one of {RANK_BY}, got {self.rank_by!r}"),
            (self.halving_ratio > 1, "halving_ratio must exceed 1"),
            (self.min_per_rung >= 0, "min_per_rung must be >= 0"),
            (0 <= self.verify_share < 1, "verify_share must be in [0, 1)"),
            (finite_number(self.seed_verification_share) and 0 <= self.seed_verification_share < 1,
             f"seed_verification_share must be a number in [0, 1), got {self.seed_verification_share!r}"),
            (self.num_references >= 0 and self.num_library_refs >= 0, "reference counts must be >= 0"),
            (isinstance(self.credit, bool), f"credit must be true or false, got {self.credit!r}"),
        ]
        for ok, message in checks:
            if not ok:
                raise ValueError(message)
        self.credit_settings  # validates the credit_* keys even while credit is off

    @property
    def credit_settings(self) -> CreditSettings:
        return CreditSettings(window=self.credit_window, exploration=self.credit_exploration,
                              change_threshold=self.credit_change_threshold,
                              change_tolerance=self.credit_change_tolerance,
                              invalid_reward=self.credit_invalid_reward)

    @classmethod
    def from_dict(cls, raw: Mapping[str, Any], where: str = "genesys.selector") -> "SelectorSettings":
        return build(cls, raw, where)


@dataclass(frozen=True)
class DesignChoice:
    seed_id: str
    unit: str
    quadrant: Quadrant | None  # None: no design is confident yet, the seed came from the fallback
    reference_ids: tuple[str, ...] = ()
    library_refs: tuple[str, ...] = ()
    instruction: str = ""
    # With credit on: CreditAdvice.to_dict() (unit, model, their scores, scheduled and used exploration).
    credit: dict[str, Any] | None = None
    model: str | None = None  # the LLM model credit chose; None: the caller samples by the configured weights


@dataclass(frozen=True)
class VerifyChoice:
    design_id: str
    rung: str
    quadrant: Quadrant
    # 0: the design's first run at ``rung`` (a promotion); k > 0: a seed verification at a rung it has, at the
    # run's seed + k, which pairs with the baseline's seed k.
    seed: int = 0


class GenesysSelector:
    def __init__(self, settings: SelectorSettings, rungs: Sequence[str], units: Sequence[str],
                 library_keys: Sequence[str] = (), rng: random.Random | None = None, models: Sequence[str] = (),
                 rung_steps: Mapping[str, int] | None = None):
        if not units:
            raise ValueError("the framework program has no unit classes to mutate")
        self.settings = settings
        self.rungs = list(rungs)
        self.units = list(units)
        self.library_keys = list(library_keys)
        self.models = list(models)  # the design agent's model names, for credit's choice of model
        # The steps each rung trains (LadderProfile.rung_train): a seed run's cost is N x steps. None: equal steps.
        self.rung_steps = dict(rung_steps) if rung_steps is not None else None
        self.rng = rng or random.Random(0)

    def explore_probability(self, progress: float) -> float:
        s = self.settings
        return exploration_probability(s.schedule, s.explore_start, s.explore_end, progress)

    # -- design selection ------------------------------------------------------------------------
    def select_design(self, records: Mapping[str, DesignRecord], baseline_id: str, progress: float,
                      pending_units: Iterable[str] = (), pending_models: Iterable[str] = ()) -> DesignChoice:
        """``pending_units``/``pending_models``: those of design attempts still running (used by credit only)."""
        s = self.settings
        groups = split(records.values(), self._utility_cut(records), s.confidence_threshold, s.rank_by)
        advice = None
        probability = self.explore_probability(progress)
        if s.credit:
            advice = advise(records, self.units, s.credit_settings, probability, self.rng, pending_units,
                            self.models, pending_models)
            probability = advice.explore_probability
        explore = self.rng.random() < probability
        order = ([Quadrant.DESIGN_EXPLORE, Quadrant.DESIGN_EXPLOIT] if explore
                 else [Quadrant.DESIGN_EXPLOIT, Quadrant.DESIGN_EXPLORE])
        quadrant = next((q for q in order if groups[q]), None)
        if quadrant is None:  # nothing is confident yet: the best-valued design, else the baseline
            valued = [r for r in records.values() if r.valid and r.utility is not None]
            seed = max(valued, key=self._rank).id if valued else baseline_id
        elif quadrant is Quadrant.DESIGN_EXPLOIT:
            seed = self._rank_weighted(groups[quadrant]).id
        else:
            seed = self.rng.choice(groups[quadrant]).id
        others = [r.id for r in records.values() if r.valid and r.id != seed]
        references = tuple(self.rng.sample(others, min(s.num_references, len(others))))
        library = tuple(self.rng.sample(self.library_keys, min(s.num_library_refs, len(self.library_keys))))
        instruction = "\n".join(t for t in (s.instruction, INSTRUCTIONS.get(quadrant, "")) if t)
        unit = advice.unit if advice is not None else self.rng.choice(self.units)
        if advice is None:
            return DesignChoice(seed, unit, quadrant, references, library, instruction)
        return DesignChoice(seed, unit, quadrant, references, library, instruction, advice.to_dict(), advice.model)

    def _utility_cut(self, records: Mapping[str, DesignRecord]) -> float:
        return utility_threshold(records.values(), self.settings.utility_quantile, self.settings.rank_by)

    def _rank(self, record: DesignRecord) -> float:
        value = rank_value(record, self.settings.rank_by)
        return -float("inf") if value is None else value

    def _rank_weighted(self, group: list[DesignRecord]) -> DesignRecord:
        return rank_weighted(sorted(group, key=self._rank, reverse=True), self.rng)

    # -- verification selection ------------------------------------------------------------------
    def select_verification(self, records: Mapping[str, DesignRecord], baseline_id: str, progress: float,
                            busy: Collection[tuple[str, str]] = ()) -> VerifyChoice | None:
        """The next (design, rung, seed) to verify, or None when every rung's budget is spent."""
        s = self.settings
        designs = [r for r in records.values() if r.valid and r.id != baseline_id]
        budgets = rung_budgets(self.rungs, len(designs), s.halving_ratio, s.min_per_rung)
        used = rung_usage(records.values(), self.rungs, baseline_id, busy)
        candidates: dict[str, tuple[str, int]] = {}  # design -> (rung, seed)
        for record in designs:
            rung = self._next_rung(record, busy)
            if rung is not None and used[rung] < budgets[rung]:
                candidates[record.id] = (rung, 0)
        cut = self._utility_cut(records)
        if seed_room(records, self.rungs, baseline_id, s.seed_verification_share, busy, self.rung_steps) > 0:
            for record in designs:
                seed = self._next_seed(record, records.get(baseline_id), busy)
                # A seed verification is for a design worth more evidence and unsure (verify exploit) that has
                # no rung left to go up to.
                if (seed is not None and record.id not in candidates
                        and quadrant_of(record, cut, s.confidence_threshold, s.rank_by) is Quadrant.VERIFY_EXPLOIT):
                    candidates[record.id] = (self.rungs[-1], seed)
        if not candidates:
            return None
        groups = split((records[i] for i in candidates), cut, s.confidence_threshold, s.rank_by)
        explore = self.rng.random() < self.explore_probability(progress)
        order = ([Quadrant.VERIFY_EXPLORE, Quadrant.VERIFY_EXPLOIT] if explore
                 else [Quadrant.VERIFY_EXPLOIT, Quadrant.VERIFY_EXPLORE])
        # When every candidate is already confident, the budget still promotes the best of them a rung up
        # (successive halving); confident low-utility designs are never verified further.
        order.append(Quadrant.DESIGN_EXPLOIT)
        quadrant = next((q for q in order if groups[q]), None)
        if quadrant is None:
            return None
        group = groups[quadrant]
        # Lower rungs first (Genesys: scales are verified bottom-up), promotions before seeds, then by utility
        # for exploit.
        if quadrant is not Quadrant.VERIFY_EXPLORE:
            chosen = min(group, key=lambda r: (self.rungs.index(candidates[r.id][0]), candidates[r.id][1],
                                               -self._rank(r)))
        else:
            chosen = self.rng.choice(group)
        rung, seed = candidates[chosen.id]
        return VerifyChoice(chosen.id, rung, quadrant, seed)

    def _next_rung(self, record: DesignRecord, busy: Collection[tuple[str, str]]) -> str | None:
        for rung in self.rungs:
            if rung in record.failed_rungs or (record.id, rung) in busy:
                return None  # a failed or running verification blocks the rungs above it
            if rung not in record.rungs:
                return rung
        return None

    def _next_seed(self, record: DesignRecord, baseline: DesignRecord | None,
                   busy: Collection[tuple[str, str]]) -> int | None:
        """The seed a seed verification of ``record`` at the top rung trains: the next one, while the baseline
        trained a partner for it there; None when there is none, one is running, or one failed."""
        top = self.rungs[-1]
        verified = record.rungs.get(top)
        if verified is None or baseline is None or top not in baseline.rungs:
            return None
        if (record.id, top) in busy or top in record.failed_seeds:
            return None
        seed = len(verified.losses)
        return seed if seed < len(baseline.rungs[top].losses) else None

    # -- state -----------------------------------------------------------------------------------
    def state_dict(self) -> dict[str, Any]:
        version, internal, gauss = self.rng.getstate()
        return {"rng": [version, list(internal), gauss]}

    def load_state_dict(self, state: Mapping[str, Any]) -> None:
        version, internal, gauss = state["rng"]
        self.rng.setstate((version, tuple(internal), gauss))
