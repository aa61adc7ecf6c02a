"""The Genesys selection as far as OpenEvolve 0.4's Python hooks reach it, for ``openevolve.run_evolution``.

OpenEvolve's own loop (its ProgramDatabase, PromptSampler, Evaluator and LLM ensemble, all built inside its
controller) keeps running; two decision hooks of ``run_evolution`` let a policy in:

- ``population_strategy=genesys_population_strategy(iterations)``: who enters the population, who the
  archive keeps and who is evicted. The archive matters most: OpenEvolve draws a parent from an island in
  three branches (``database.exploration_ratio`` at random from the island, ``exploitation_ratio`` (0.7 by
  default) from the archive, preferring the island's members, the rest weighted by fitness), so an archive
  holding the design-exploit quadrant plus an annealed share of the design-explore quadrant seeds most
  mutations as the Genesys selector would.
- ``island_selector=genesys_island_selector(iterations)``: which island the next iteration samples from,
  the exploit/explore choice of the selector applied to islands ranked by their best score.

Both value a program from the metrics this project's evaluation file returns (``forecast_gap``, the
utility; ``confidence``; ``p_better`` and ``gap_low`` for ``rank_by``; a ``loss_<rung>`` per trained rung)
through the selector's own quadrant functions and settings (``SelectorSettings``, the ``genesys.selector``
keys). Those values are each program's own: the ``openevolve`` command revalues every design against the
whole run (slope prior, pair noise, the baseline's seeds), which no hook can, since OpenEvolve scores a
program once, when it is new. Nor can a hook verify a design at a larger rung, choose the unit to mutate
or write the prompt: docs/openevolve_api.md says what only the ``openevolve`` command does.
"""

from __future__ import annotations

import math
import random
from typing import Any, Callable, Sequence

import numpy as np
from openevolve.population import ArchiveDecision, PopulationSnapshot, PopulationStrategy, ProgramState
from openevolve.selection import IslandSelectionContext, IslandSelector

from openevolve_genesys.selection.annealing import exploration_probability
from openevolve_genesys.selection.quadrants import Quadrant, rank_value, split, utility_threshold
from openevolve_genesys.selection.records import DesignRecord, RungRecord
from openevolve_genesys.selection.selector import SelectorSettings, rank_weighted

__all__ = ["design_record", "archive_target", "genesys_population_strategy", "genesys_island_selector"]


def design_record(program: ProgramState) -> DesignRecord:
    """A program as the selector sees a design, rebuilt from its evaluation metrics.

    A program is valid when its outcome is ``ok`` and it trained at least one rung; it is valued when it also
    has a finite ``forecast_gap``. Anything else (OpenEvolve's own error metrics after a crash or timeout, an
    evaluator that is not this project's, NaN, strings) gives an invalid or unvalued record, never an error:
    an exception in a hook would stop the whole run."""
    metrics = program.metrics
    rungs = {}
    for key, loss in metrics.items():
        name = key[len("loss_"):] if key.startswith("loss_") else None
        n_params = metrics.get(f"n_params_{name}")
        if name and _finite(loss) is not None and _finite(n_params) is not None:
            rungs[name] = RungRecord(rung=name, n_params=int(n_params), loss=float(loss))
    outcome = metrics.get("outcome")
    low, p_better = _finite(metrics.get("gap_low")), _finite(metrics.get("p_better"))
    return DesignRecord(
        id=program.id, parent_id=program.parent_id,
        code_hash="",  # the quadrant functions never read it; OpenEvolve's program id names the code
        iteration=program.generation, operator={}, outcome=outcome if isinstance(outcome, str) else "unknown",
        rungs=rungs, utility=_finite(metrics.get("forecast_gap")),
        confidence=min(max(_finite(metrics.get("confidence")) or 0.0, 0.0), 1.0),
        forecast=None if low is None or p_better is None else {"low": low, "p_better": p_better})


def archive_target(records: Sequence[DesignRecord], limit: int, settings: SelectorSettings,
                   progress: float) -> list[str]:
    """The archive the Genesys selector would seed from, best first: designs of the design-exploit quadrant
    (high utility, confident) by rank, then ``round(p * limit)`` of the design-explore quadrant (confident,
    lower utility) by rank, where p is the selector's annealed exploration probability at ``progress``; a
    quadrant with too few designs leaves its slots to the other. With no confident design yet, the
    best-valued design alone (the selector's fallback seed); with no valued design, nothing.

    OpenEvolve draws uniformly from the archive, so the explore share is the chance an archive draw is an
    explore seed, as the exploration probability is the selector's chance of an explore seed."""
    valued = [r for r in records if r.valid and r.utility is not None]
    if limit <= 0 or not valued:
        return []
    cut = utility_threshold(valued, settings.utility_quantile, settings.rank_by)
    groups = split(valued, cut, settings.confidence_threshold, settings.rank_by)
    exploit = sorted(groups[Quadrant.DESIGN_EXPLOIT], key=_ranker(settings), reverse=True)
    explore = sorted(groups[Quadrant.DESIGN_EXPLORE], key=_ranker(settings), reverse=True)
    if not exploit and not explore:
        return [max(valued, key=_ranker(settings)).id]
    p = exploration_probability(settings.schedule, settings.explore_start, settings.explore_end, progress)
    n_explore = min(len(explore), round(p * limit))
    n_exploit = min(len(exploit), limit - n_explore)
    n_explore = min(len(explore), limit - n_exploit)
    return [r.id for r in exploit[:n_exploit] + explore[:n_explore]]


def genesys_population_strategy(iterations: int, settings: SelectorSettings = SelectorSettings()
                                ) -> PopulationStrategy:
    """OpenEvolve's population hooks deciding as the Genesys selector would; ``iterations`` is the run's
    iteration count (``run_evolution(iterations=...)``), the clock the exploration probability anneals on.

    - admit: only valid, valued programs join the population (the initial program always does, as OpenEvolve
      requires): the selector never seeds from an invalid design, and OpenEvolve's random and fitness-weighted
      branches would draw one from an island.
    - archive: converges on ``archive_target`` of the whole population, one decision per new program (the
      hook may add only the new program and evict one): it joins if the target holds it, evicting the
      worst-ranked archived program the target does not hold.
    - replace_cell: a MAP-Elites cell keeps the higher-ranked design (by ``settings.rank_by``, not OpenEvolve's
      combined_score, which ``genesys.fitness`` may set to another score); a tie keeps the incumbent.
    - evict: over ``database.population_size``, programs outside the archive go first, the lowest-ranked first.

    Migration keeps OpenEvolve's rule (copies of each island's best to its neighbours): the selector has no
    islands to mirror."""
    _check_iterations(iterations)
    rank = _ranker(settings)

    def admit(snapshot: PopulationSnapshot, candidate: ProgramState, island: int) -> bool:
        record = design_record(candidate)
        return not snapshot.programs or (record.valid and record.utility is not None)

    def archive(snapshot: PopulationSnapshot, candidate: ProgramState) -> ArchiveDecision:
        programs = {**snapshot.programs, candidate.id: candidate}
        target = archive_target([design_record(p) for p in programs.values()], snapshot.archive_limit, settings,
                                snapshot.last_iteration / iterations)
        if candidate.id in snapshot.archive or candidate.id not in target:
            return ArchiveDecision(add=candidate.id in snapshot.archive)
        # The worst-ranked archived program the target lacks leaves. A full archive always has one: the target
        # holds at most archive_limit programs, the new one among them.
        outside = [pid for pid in snapshot.archive if pid not in target]
        evict = min(outside, key=lambda pid: rank(design_record(programs[pid])), default=None)
        return ArchiveDecision(add=True, evict_id=evict)

    def replace_cell(snapshot: PopulationSnapshot, candidate: ProgramState, incumbent: ProgramState,
                     island: int) -> bool:
        return rank(design_record(candidate)) > rank(design_record(incumbent))

    def evict(snapshot: PopulationSnapshot, required: int, protected: frozenset[str]) -> list[str]:
        eligible = [p for pid, p in snapshot.programs.items() if pid not in protected]
        order = sorted(eligible, key=lambda p: (p.id in snapshot.archive, rank(design_record(p))))
        return [p.id for p in order[:required]]

    return PopulationStrategy(admit=admit, replace_cell=replace_cell, archive=archive, evict=evict)


def genesys_island_selector(iterations: int, settings: SelectorSettings = SelectorSettings(),
                            rng: random.Random | None = None) -> IslandSelector:
    """An ``island_selector`` making the selector's exploit/explore choice between islands.

    Islands whose best score is at or above ``settings.utility_quantile`` of the non-empty islands' best scores
    are high; with the annealed exploration probability (``schedule``, ``explore_start``, ``explore_end`` over
    ``iterations``) one of the others (lower, empty or unscored) is drawn uniformly, else a high one
    rank-weighted as the selector draws an exploit seed; when the preferred group is empty, the other.

    OpenEvolve passes an island only its best and average score (``combined_score``, which is the utility
    under the default ``genesys.fitness: forecast_gap``), not confidence, so this ranks by that score alone;
    the archive of ``genesys_population_strategy``, which sees confidence, then picks the parent within."""
    _check_iterations(iterations)
    rng = rng or random.Random(0)

    def select(context: IslandSelectionContext) -> int:
        if not context.islands:
            raise ValueError("genesys_island_selector: OpenEvolve passed no islands")
        scores = {i: s.best_score for i, s in enumerate(context.islands)
                  if s.population_size > 0 and isinstance(s.best_score, (int, float)) and math.isfinite(s.best_score)}
        cut = float(np.quantile(list(scores.values()), settings.utility_quantile)) if scores else math.inf
        high = sorted((i for i in scores if scores[i] >= cut), key=lambda i: (-scores[i], i))
        low = [i for i in range(len(context.islands)) if i not in high]
        p = exploration_probability(settings.schedule, settings.explore_start, settings.explore_end,
                                    context.iteration / iterations)
        explore = rng.random() < p
        if (explore and low) or not high:
            return rng.choice(low)
        return rank_weighted(high, rng)

    return select


def _finite(value: Any) -> float | None:
    if isinstance(value, bool) or not isinstance(value, (int, float)) or not math.isfinite(value):
        return None
    return float(value)


def _ranker(settings: SelectorSettings) -> Callable[[DesignRecord], float]:
    """Rank as the selector does (its ``rank_by``); an invalid or unvalued design ranks below every other."""
    def rank(record: DesignRecord) -> float:
        value = rank_value(record, settings.rank_by) if record.valid else None
        return -math.inf if value is None else value
    return rank


def _check_iterations(iterations: Any) -> None:
    if isinstance(iterations, bool) or not isinstance(iterations, int) or iterations <= 0:
        raise ValueError(f"iterations must be a positive integer (the run's iteration count), got {iterations!r}")
