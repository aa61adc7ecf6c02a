"""Run a validation plan: train what the journal does not hold yet, journaling each result as it lands (the
seeds of one design and rung train together, so they land together).

Trainings that failed for reasons outside the design (a stall, a killed worker, a failed baseline) are
not journaled, so a rerun tries them again; a design's own failure (a failed check, a diverged loss) is
deterministic for its seed and is journaled like a success. When the baseline failed at a seed, that
seed's designs are not trained: there would be nothing to pair them with.
"""

from __future__ import annotations

import logging
from dataclasses import dataclass, field
from typing import Callable, Sequence

from openevolve_genesys.outcomes import CHARGED
from openevolve_genesys.progress import bar_with_logs, progress_bar
from openevolve_genesys.validation.journal import Journal, TrainingResult
from openevolve_genesys.validation.plan import TrainingJob, ValidationPlan, groups

log = logging.getLogger(__name__)
JOURNALED = CHARGED  # the design's own results, which a rerun would repeat; stalls and infra faults are retried


@dataclass
class RunOutcome:
    """What the plan's trainings gave: journaled results (this setup), and what is still missing."""

    results: list[TrainingResult]
    trained: int = 0  # trainings run by this call (fitness-cache hits included)
    reused: int = 0  # answered by the journal
    unfinished: list[str] = field(default_factory=list)  # jobs that failed outside the design, to retry


def run_plan(plan: ValidationPlan, trainer: Callable[[Sequence[TrainingJob]], list[TrainingResult]],
             journal: Journal, *, progress: bool = True) -> RunOutcome:
    """Every job of ``plan``, in its order; returns the results that belong to this plan. The jobs the journal
    lacks of one design and rung (its seeds) go to ``trainer`` together, which trains them in one batch."""
    done = journal.done()
    jobs = list(plan.jobs())
    outcome = RunOutcome(results=[])
    base_id = plan.run.baseline.id
    failed_base_seeds: set[int] = set()  # any rung of the baseline failed there: no design can be compared
    bar = progress_bar(len(jobs), "openevolve validate", "training", enabled=None if progress else False)
    with bar_with_logs(bar):
        for group in groups(jobs):
            results: dict[TrainingJob, TrainingResult | None] = {}
            todo = []
            for job in group:
                result = done.get((plan.setup, job.design_id, job.learning_rate, job.seed, job.rung))
                if result is not None:
                    outcome.reused += 1
                    results[job] = result
                elif job.design_id != base_id and job.seed in failed_base_seeds:
                    outcome.unfinished.append(f"{_label(job)}: not trained, the baseline failed at seed {job.seed}")
                    results[job] = None
                else:
                    todo.append(job)
            if todo:
                bar.set_postfix_str(_label(todo[0]) if len(todo) == 1 else
                                    f"{_label(todo[0])} and {len(todo) - 1} more seed(s)")
                trained = trainer(todo)
                if len(trained) != len(todo):
                    raise RuntimeError(f"the trainer returned {len(trained)} results for {len(todo)} jobs")
                outcome.trained += len(todo)
                for job, result in zip(todo, trained):
                    if result.outcome in JOURNALED:
                        journal.append(result)
                    else:
                        log.warning("%s: %s (%s); rerun the validation to try it again", _label(job), result.outcome,
                                    result.message.splitlines()[0] if result.message else "no message")
                        outcome.unfinished.append(f"{_label(job)}: {result.outcome}")
                        result = None
                    results[job] = result
            for job in group:
                result = results[job]
                if job.design_id == base_id and (result is None or result.outcome != "ok"):
                    failed_base_seeds.add(job.seed)
                if result is not None:
                    outcome.results.append(result)
            bar.update(len(group))
    return outcome


def _label(job: TrainingJob) -> str:
    return f"{job.design_id[:8]} seed {job.seed} {job.rung}"
