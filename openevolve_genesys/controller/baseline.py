"""The baseline of a run: the framework's template tuned, trained on every rung at every seed, and adopted.

Every design is compared with this evaluation, so it runs before the loop and a failure stops the run. In tune
mode the template first gets its own learning rate (a sweep charged to the tune budget only, in its own jobs or
in the ladder's job with ``tune.same_job``); the rate is then the one every comparison uses. Its other seeds
(``genesys.baseline_seeds``) train in one more job, each rung's seeds as one batched program. A resumed run
adopts the baseline its history recorded instead of training it again.
"""

from __future__ import annotations

import logging
from dataclasses import dataclass
from typing import Any, Iterable, Mapping

from openevolve_genesys.controller.ledger import BASELINE_ID, event_times
from openevolve_genesys.engine import Engine
from openevolve_genesys.evaluation.evaluator import Evaluation, ScalingLawEvaluator, with_seed_losses
from openevolve_genesys.evaluation.tuning import TuneBudget, TuneSettings, evaluate_tuned, tune_learning_rate
from openevolve_genesys.progress import LadderProgress
from openevolve_genesys.training.rung_result import rungs_from_dict, rungs_to_dict

log = logging.getLogger(__name__)


@dataclass(frozen=True)
class BaselineJob:
    """What the baseline's evaluation needs from the run."""

    evaluator: ScalingLawEvaluator  # the run's: it learns the baseline's rate and adopts its evaluation
    engine: Engine
    rungs: list[str]
    tune: TuneSettings
    tune_budget: TuneBudget
    seeds: int  # genesys.run.baseline_seeds: the run's own seed and the ones after it


def evaluate_baseline(job: BaselineJob) -> dict[str, Any]:
    """Tune (in tune mode), train every rung at every seed, adopt it as the evaluator's baseline; its history line."""
    evaluator, settings, code = job.evaluator, job.tune, job.evaluator.template
    tune = None
    if settings.enabled and not settings.same_job:
        tune = tune_learning_rate(evaluator, code, settings, engine=job.engine, budget=job.tune_budget,
                                  baseline_learning_rate=evaluator.baseline_learning_rate)
        _set_rate(evaluator, tune.best_learning_rate, tune.note)
    # Through the engine like every other evaluation: on the run's device, or on a Ray worker with a GPU
    # rather than the head node. The evaluator then compares every design with this baseline.
    with LadderProgress("baseline") as ladder:
        if settings.enabled and settings.same_job:  # the sweep and the ladder in one job
            evaluation = evaluate_tuned(job.engine, evaluator.profile, code, job.rungs, settings,
                                        budget=job.tune_budget, on_heartbeat=ladder)
            tune = evaluation.tune
            if tune is not None:
                _set_rate(evaluator, tune.best_learning_rate, tune.note)
        else:
            lr = evaluator.baseline_learning_rate
            evaluation = job.engine.evaluate(code, job.rungs, learning_rate=lr, baseline_learning_rate=lr,
                                             on_heartbeat=ladder)
    lr = evaluator.baseline_learning_rate
    _check(evaluation, evaluator, lr, [evaluator.profile.train.seed])
    evaluation = with_seed_losses(evaluation, _other_seeds(job, code, lr))
    evaluator.adopt_baseline(evaluation)
    return {"type": "baseline", "id": BASELINE_ID, "code": code, "rungs": rungs_to_dict(evaluation.rungs),
            "metrics": evaluation.metrics, "learning_rate": lr, "tune": tune.to_dict() if tune else None,
            **event_times(evaluation)}


def adopt_recorded_baseline(evaluator: ScalingLawEvaluator, events: Iterable[Mapping[str, Any]],
                            learning_rate: float) -> None:
    """A resumed run compares new designs with the baseline its history recorded, at its recorded rate."""
    evaluator.set_baseline_learning_rate(learning_rate)
    baseline = next(e for e in events if e["type"] == "baseline")
    evaluator.adopt_baseline(Evaluation("ok", {**baseline["metrics"], "learning_rate": evaluator.baseline_learning_rate},
                                        rungs=rungs_from_dict(baseline["rungs"])))


def _set_rate(evaluator: ScalingLawEvaluator, learning_rate: float, note: str) -> None:
    evaluator.set_baseline_learning_rate(learning_rate)
    log.info("baseline learning rate: %s", note)


def _other_seeds(job: BaselineJob, code: str, lr: float) -> list[Evaluation]:
    """The template at the seeds after the run's (``job.seeds`` in all) on every rung, at the baseline's rate, in
    one job through the engine whose every rung trains its seeds as one batched program; a seed is a TrainConfig
    change, so the fitness cache keeps the seeds apart and the run's own seed is the one every design trains at."""
    first = job.evaluator.profile.train.seed
    seeds = list(range(first + 1, first + job.seeds))
    if not seeds:
        return []
    with LadderProgress(f"baseline seeds {', '.join(map(str, seeds))}") as ladder:
        evaluation = job.engine.evaluate(code, job.rungs, learning_rate=lr, baseline_learning_rate=lr,
                                         seeds=seeds, on_heartbeat=ladder)
    _check(evaluation, job.evaluator, lr, seeds)
    if len(evaluation.seeds) != len(seeds):  # an engine that dropped evaluate(seeds=...) would value one seed
        raise RuntimeError(f"the engine returned {len(evaluation.seeds)} evaluation(s) for the baseline's seeds "
                           f"{seeds}; it must pass evaluate(seeds=...) through to the evaluator")
    return evaluation.seeds


def _check(evaluation: Evaluation, evaluator: ScalingLawEvaluator, lr: float, seeds: list[int]) -> None:
    if evaluation.outcome != "ok":
        raise RuntimeError(f"the {evaluator.settings.framework} baseline failed to evaluate at learning "
                           f"rate {lr:g}, seed{'s' if len(seeds) > 1 else ''} {', '.join(map(str, seeds))} "
                           f"({evaluation.outcome}): {evaluation.artifacts.get('message')}")
