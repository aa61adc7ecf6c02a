"""The real trainer of a validation: each group of jobs goes through the run's own ScalingLawEvaluator.

A group is one (design, rung) at one or more seeds; its seeds train in one sandboxed job as one batched program
(``evaluate(seeds=...)``, the path the baseline's extra seeds take), each seed's result what one job of its own
would give (to float rounding) and cached under its own key: the cache key holds the training-config hash, so
another seed is another key (it trains) and a repeat of the same (design, seed, rung) is a hit (it does not).
When the group's job fails, its seeds run again one job each, so that each seed gets its own outcome: a loss that
diverges at one seed fails that seed only, and a batch too long for the job's wall limit still trains.
Programs train in the sandbox as in the run.
"""

from __future__ import annotations

import math
from typing import Callable, Sequence

from openevolve_genesys.controller.accounting import classify_evaluation
from openevolve_genesys.evaluation.evaluator import Evaluation, ScalingLawEvaluator
from openevolve_genesys.outcomes import AttemptClass
from openevolve_genesys.validation.journal import TrainingResult
from openevolve_genesys.validation.plan import TrainingJob, ValidationPlan

# Jobs of one design and rung at several seeds (ValidationPlan.groups) -> one result per job, in order.
Trainer = Callable[[Sequence[TrainingJob]], list[TrainingResult]]


class EvaluatorTrainer:
    def __init__(self, plan: ValidationPlan):
        self.plan = plan
        self._evaluators: dict[int, ScalingLawEvaluator] = {}
        self.evaluations = 0  # evaluate calls: one per group, plus one per seed retried alone

    def evaluator(self, seed: int) -> ScalingLawEvaluator:
        if seed not in self._evaluators:
            self._evaluators[seed] = ScalingLawEvaluator(self.plan.seed_settings(seed))
        return self._evaluators[seed]

    def __call__(self, jobs: Sequence[TrainingJob]) -> list[TrainingResult]:
        first = jobs[0]
        if any((j.design_id, j.rung, j.learning_rate) != (first.design_id, first.rung, first.learning_rate)
               for j in jobs[1:]):
            raise ValueError("a validation group trains one design at one rung and rate; got "
                             f"{sorted({(j.design_id, j.rung, j.learning_rate) for j in jobs})}")
        try:
            batch = self._train(jobs)
            if len(jobs) == 1 or batch.outcome == "ok":
                return [self._from_evaluation(job, evaluation)
                        for job, evaluation in zip(jobs, batch.seeds or [batch])]
            # Which seed failed, or whether the batch only outgrew the job's limits, only its seeds alone can tell;
            # the seeds that learnt are already cached (job.py caches them before failing): they train no more.
            return [self._from_evaluation(job, self._train([job])) for job in jobs]
        except RuntimeError as err:  # the baseline a design is compared with failed: not the design's fault
            return [self._result(job, "infra", message=str(err)) for job in jobs]

    def _train(self, jobs: Sequence[TrainingJob]) -> Evaluation:
        """The seeds of ``jobs`` in one job. The evaluator is the first seed's: its baseline (trained first,
        by the plan's order) gives the speeds the step-time check compares with."""
        evaluator = self.evaluator(jobs[0].seed)
        self.evaluations += 1
        return evaluator.evaluate(jobs[0].code, [jobs[0].rung], learning_rate=jobs[0].learning_rate,
                                  baseline_learning_rate=jobs[0].baseline_learning_rate, seeds=[j.seed for j in jobs])

    def _from_evaluation(self, job: TrainingJob, evaluation: Evaluation) -> TrainingResult:
        attempt_class = classify_evaluation(evaluation)
        if attempt_class != "ok":
            message = str(evaluation.artifacts.get("message") or evaluation.outcome)
            return self._result(job, attempt_class, message=message[-2000:])
        rung = evaluation.rungs[job.rung]
        if not math.isfinite(rung.final_eval_loss):
            return self._result(job, "invalid", message=f"non-finite held-out loss at {job.rung}")
        return self._result(job, "ok", loss=rung.final_eval_loss, n_params=rung.n_params,
                            cache_hit=rung.cache_hit, seconds=rung.train_seconds)

    def _result(self, job: TrainingJob, outcome: AttemptClass, **fields: object) -> TrainingResult:
        return TrainingResult(setup=self.plan.setup, design_id=job.design_id, learning_rate=job.learning_rate,
                              seed=job.seed, rung=job.rung, outcome=outcome, **fields)
