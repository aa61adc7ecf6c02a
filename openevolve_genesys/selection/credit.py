"""Credit assignment over mutation operators.

Every child design is credited to the arms that made it, one per dimension: the unit mutated, the
operator (or reference) the mutator used, the model that wrote it, and the quadrant its seed came from
(which also decides the instruction). Its gain is its utility minus its seed's, once both are valued.

Everything here is a pure fold over the design records: ``DesignRecord`` already carries ``parent_id``,
``operator`` and ``iteration``, records are rebuilt from ``history.jsonl`` on resume, so the statistics
need no state of their own and a resumed run credits exactly as the interrupted one did.

The bandit reward is the improvement ``max(gain, 0)``: a child worse than its seed is never seeded from
again, so only the part above the seed is worth anything, whatever its size. An invalid child improved
nothing either, so its reward is 0 by default, the same as a worse valid child: both cost one attempt.
A unit that often breaks already earns less, since its mean reward is diluted in proportion to its
invalid rate; ``invalid_reward < 0`` charges invalid children extra (for example when they are slow).
A child with the code of an earlier design (the fitness cache answers it, it adds nothing) also earns 0,
whatever its seed: otherwise a unit with few alternatives, mutated over and over from one seed, would be
credited again and again for the same child.

The explore-or-exploit share is credited differently: an explore seed is below the utility cut, so its
children beat it more easily (and, when it sits low partly by noise, regress upward), which says nothing
about whether exploring pays. Both sides are credited by how far a child moved the frontier instead:
``max(child - best design made before it, 0)``.

Choice of unit: sliding-window UCB over the most recent children, with a two-sided Page-Hinkley test per
arm that drops an arm's history before its last detected shift (a unit whose best alternative the seeds
have already adopted stops paying, and its old gains must not keep it on top). The model, when the run
has two or more, is chosen the same way. The exploration share starts from the annealed schedule and is
tilted by how much explore children gain against exploit ones. The operator within a unit stays the
design agent's choice (an LLM picks it from the prompt); it is credited and reported, not steered.
"""

from __future__ import annotations

import math
import random
from collections import Counter
from dataclasses import dataclass
from typing import Any, Iterable, Mapping, Sequence

from openevolve_genesys.selection.quadrants import Quadrant
from openevolve_genesys.selection.records import DesignRecord

DIMENSIONS = ("unit", "operator", "model", "quadrant")
OPERATORS_FILE = "operators.json"  # a run's credit table, rewritten with every checkpoint
EXPLORE, EXPLOIT = Quadrant.DESIGN_EXPLORE.value, Quadrant.DESIGN_EXPLOIT.value
# The explore share never leaves [MIN_SHARE, 1 - MIN_SHARE] on evidence alone: a side that is never
# tried can never show that its gains have changed.
MIN_SHARE = 0.05
# Pseudo-children of the pooled mean reward added to each side before comparing explore with exploit,
# so that the first few children only nudge the schedule.
PRIOR_CHILDREN = 5.0


@dataclass(frozen=True)
class CreditSettings:
    """The selector's ``credit_*`` keys, without the prefix."""

    window: int = 60  # the most recent credited children that the statistics are taken over
    exploration: float = 0.5  # UCB bonus constant, in units of the largest reward in the window
    change_threshold: float = 3.0  # Page-Hinkley alarm level, in units of the largest reward
    change_tolerance: float = 0.05  # Page-Hinkley drift tolerated without an alarm, same units
    invalid_reward: float = 0.0  # reward of an invalid child (<= 0)

    def __post_init__(self) -> None:
        checks = [
            (self.window >= 2, f"credit_window must be >= 2 children, got {self.window}"),
            (self.exploration >= 0, f"credit_exploration must be >= 0, got {self.exploration}"),
            (self.change_threshold > 0, f"credit_change_threshold must be positive, got {self.change_threshold}"),
            (self.change_tolerance >= 0, f"credit_change_tolerance must be >= 0, got {self.change_tolerance}"),
            (self.invalid_reward <= 0, "credit_invalid_reward must be <= 0 (a penalty, or 0 for 'improved "
                                       f"nothing'), got {self.invalid_reward}"),
        ]
        for ok, message in checks:
            if not ok:
                raise ValueError(message)


@dataclass(frozen=True)
class ChildCredit:
    """One child's credit: the arms that made it, its gain over the seed (None if invalid or a repeat), its
    reward (improvement over the seed) and its frontier reward (improvement over every earlier design)."""

    id: str
    iteration: int
    arms: Mapping[str, str]
    gain: float | None
    reward: float
    frontier: float = 0.0
    repeat: bool = False  # same code as an earlier design


def child_credits(records: Mapping[str, DesignRecord], invalid_reward: float = 0.0) -> list[ChildCredit]:
    """Every credited child in iteration order. Valid children wait until they and their seed are valued."""
    ordered = sorted((r for r in records.values() if r.iteration is not None), key=lambda r: (r.iteration, r.id))
    seen: set[str] = set()
    frontier = -math.inf  # best utility among the designs made before the current iteration
    out = []
    for _, group in _by_iteration(ordered):
        for record in group:
            credit = _credit(record, records.get(record.parent_id or ""), record.code_hash in seen,
                             frontier, invalid_reward)
            if credit is not None:
                out.append(credit)
        for record in group:
            seen.add(record.code_hash)
            if record.valid and record.utility is not None:
                frontier = max(frontier, record.utility)
    return out


def _by_iteration(ordered: list[DesignRecord]) -> Iterable[tuple[int, list[DesignRecord]]]:
    groups: dict[int, list[DesignRecord]] = {}
    for record in ordered:
        groups.setdefault(record.iteration, []).append(record)
    return groups.items()


def _credit(record: DesignRecord, seed: DesignRecord | None, repeat: bool, frontier: float,
            invalid_reward: float) -> ChildCredit | None:
    if seed is None:
        return None  # the baseline, or a child whose seed is not in the records
    arms = _arms(record.operator)
    if repeat:
        return ChildCredit(record.id, record.iteration, arms, None, 0.0, 0.0, repeat=True)
    if not record.valid:
        return ChildCredit(record.id, record.iteration, arms, None, invalid_reward, invalid_reward)
    if record.utility is None or seed.utility is None:
        return None  # not valued yet: credited once it is
    gain = record.utility - seed.utility
    ahead = record.utility - frontier if math.isfinite(frontier) else 0.0
    return ChildCredit(record.id, record.iteration, arms, gain, max(gain, 0.0), max(ahead, 0.0))


def _arms(operator: Mapping[str, Any]) -> dict[str, str]:
    arms = {d: str(operator[d]) for d in ("unit", "operator", "model") if operator.get(d)}
    if "quadrant" in operator:  # absent in histories written before credit: then not credited on this dimension
        arms["quadrant"] = str(operator["quadrant"] or "fallback")
    return arms


def page_hinkley(values: Sequence[float], tolerance: float, threshold: float) -> tuple[int, int]:
    """Two-sided Page-Hinkley test. Returns (index the current regime starts at, number of alarms).

    After an alarm the test restarts, so the values before the last alarm belong to an older regime."""
    start, alarms = 0, 0
    mean = up = down = up_min = down_max = 0.0
    n = 0
    for i, x in enumerate(values):
        n += 1
        mean += (x - mean) / n
        up += x - mean - tolerance  # drifts up only when the values rise above their running mean
        down += x - mean + tolerance  # drifts down only when they fall below it
        up_min, down_max = min(up_min, up), max(down_max, down)
        if up - up_min > threshold or down_max - down > threshold:
            start, alarms = i + 1, alarms + 1
            mean = up = down = up_min = down_max = 0.0
            n = 0
    return start, alarms


@dataclass(frozen=True)
class ArmStats:
    dimension: str
    arm: str
    children: int  # every credited child, all history
    invalid: int
    repeats: int  # children with the code of an earlier design
    improved: int  # valid children better than their seed
    mean_gain: float | None  # over valued children, all history (signed, in utility units)
    best_gain: float | None
    window_children: int  # in the sliding window, after the arm's last change
    window_reward: float | None  # their mean reward, in units of the window's largest reward
    score: float  # UCB index (inf: not tried since its last change)
    resets: int  # change-detector alarms

    def to_dict(self) -> dict[str, Any]:
        row = dict(self.__dict__)
        row["score"] = None if math.isinf(self.score) else self.score
        return row


def _reward(credit: ChildCredit, dimension: str) -> float:
    return credit.frontier if dimension == "quadrant" else credit.reward


def _scale(credits: Iterable[ChildCredit], dimension: str) -> float:
    return max((abs(_reward(c, dimension)) for c in credits), default=0.0) or 1.0


def arm_stats(credits: Sequence[ChildCredit], dimension: str, settings: CreditSettings,
              arms: Iterable[str] = (), pending: Mapping[str, int] | None = None) -> dict[str, ArmStats]:
    """Per-arm statistics of one dimension over ``credits`` (in iteration order).

    ``arms`` adds arms that have no child yet (every unit is a candidate from the start); ``pending``
    counts children still being evaluated, as pulls at the arm's current mean ("virtual pulls"), so
    parallel workers do not all chase the same arm before any of its results are back."""
    pending = pending or {}
    window = credits[-settings.window:]
    in_window = {c.id for c in window}
    scale = _scale(window, dimension)
    history: dict[str, list[ChildCredit]] = {a: [] for a in arms}
    for c in credits:
        if dimension in c.arms:
            history.setdefault(c.arms[dimension], []).append(c)
    total = sum(1 for c in window if dimension in c.arms) + sum(pending.values())
    out = {}
    for arm, seq in history.items():
        normalised = [max(-1.0, min(1.0, _reward(c, dimension) / scale)) for c in seq]
        start, resets = page_hinkley(normalised, settings.change_tolerance, settings.change_threshold)
        recent = [x for c, x in zip(seq[start:], normalised[start:]) if c.id in in_window]
        gains = [c.gain for c in seq if c.gain is not None]
        n = len(recent) + pending.get(arm, 0)
        mean = sum(recent) / len(recent) if recent else 0.0
        score = math.inf if n == 0 else mean + settings.exploration * math.sqrt(math.log(max(total, 2)) / n)
        out[arm] = ArmStats(dimension, arm, len(seq), sum(c.gain is None and not c.repeat for c in seq),
                            sum(c.repeat for c in seq),
                            sum(g > 0 for g in gains), sum(gains) / len(gains) if gains else None,
                            max(gains) if gains else None, len(recent), mean if recent else None, score, resets)
    return out


def explore_probability(credits: Sequence[ChildCredit], scheduled: float, settings: CreditSettings) -> float:
    """The annealed probability, its odds multiplied by how much more explore children move the frontier than
    exploit ones in the window (each side shrunk toward the pooled mean by ``PRIOR_CHILDREN``)."""
    if scheduled <= 0 or scheduled >= 1:
        return scheduled  # a schedule pinned at 0 or 1 is the user's decision, not a prior
    window = credits[-settings.window:]
    offset = -min(settings.invalid_reward, 0.0)  # rewards shifted to be >= 0, so a ratio of means is meaningful
    sides = {EXPLORE: [], EXPLOIT: []}
    for c in window:
        if c.arms.get("quadrant") in sides:
            sides[c.arms["quadrant"]].append(c.frontier + offset)
    pooled = [x for side in sides.values() for x in side]
    if not pooled or sum(pooled) <= 0:
        return scheduled  # no evidence, or nothing gained on either side: keep the schedule
    prior = sum(pooled) / len(pooled)
    explore, exploit = ((sum(s) + PRIOR_CHILDREN * prior) / (len(s) + PRIOR_CHILDREN) for s in sides.values())
    odds = scheduled / (1 - scheduled) * explore / exploit
    p = odds / (1 + odds)
    return min(max(p, min(MIN_SHARE, scheduled)), max(1 - MIN_SHARE, scheduled))


@dataclass(frozen=True)
class CreditAdvice:
    """What credit says for one design choice: the unit and the model, why, and the exploration share."""

    unit: str
    unit_score: float | None  # its UCB index (None: untried since its last change)
    scheduled_probability: float
    explore_probability: float
    model: str | None = None  # None: a single model, nothing to choose
    model_score: float | None = None

    def to_dict(self) -> dict[str, Any]:
        return dict(self.__dict__)


def advise(records: Mapping[str, DesignRecord], units: Sequence[str], settings: CreditSettings,
           scheduled_probability: float, rng: random.Random, pending_units: Iterable[str] = (),
           models: Sequence[str] = (), pending_models: Iterable[str] = ()) -> CreditAdvice:
    """The unit (and, with two or more ``models``, the model) with the highest UCB index, ties broken by
    ``rng``, and the credit-tilted exploration share."""
    if not units:
        raise ValueError("credit needs at least one unit to choose from")
    credits = child_credits(records, settings.invalid_reward)
    unit, unit_score = _pick(credits, "unit", units, settings, rng, pending_units)
    model, model_score = (_pick(credits, "model", models, settings, rng, pending_models) if len(models) > 1
                          else (None, None))
    return CreditAdvice(unit, unit_score, scheduled_probability,
                        explore_probability(credits, scheduled_probability, settings), model, model_score)


def _pick(credits: Sequence[ChildCredit], dimension: str, arms: Sequence[str], settings: CreditSettings,
          rng: random.Random, pending: Iterable[str]) -> tuple[str, float | None]:
    stats = arm_stats(credits, dimension, settings, arms=arms, pending=Counter(a for a in pending if a in arms))
    best = max(stats[a].score for a in arms)
    arm = rng.choice([a for a in arms if stats[a].score == best])
    score = stats[arm].score
    return arm, None if math.isinf(score) else score


def credit_table(records: Mapping[str, DesignRecord], settings: CreditSettings | None = None,
                 units: Sequence[str] = (), models: Sequence[str] = ()) -> list[dict[str, Any]]:
    """Per-arm statistics of every dimension, as JSON-ready rows (for ``operators.json`` and the summary).

    ``units`` and ``models`` list the run's arms so that those never used appear with zero children."""
    settings = settings or CreditSettings()
    credits = child_credits(records, settings.invalid_reward)
    rows = []
    for dimension in DIMENSIONS:
        stats = arm_stats(credits, dimension, settings, arms={"unit": units, "model": models}.get(dimension, ()))
        ordered = sorted(stats.values(), key=lambda s: (-s.children, s.arm))
        rows += [s.to_dict() for s in ordered]
    return rows
