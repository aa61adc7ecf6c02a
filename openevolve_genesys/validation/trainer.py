"""The real trainer of a validation: each job goes through the run's own ScalingLawEvaluator.

One evaluator per seed (the seed is part of its ladder's TrainConfig), all on the run's fitness cache:
the cache key holds the training-config hash, so another seed is another key (it trains) and a repeat of
the same (design, seed, rung) is a hit (it does not). Programs train in the sandbox as in the run.
"""

from __future__ import annotations

import math
from typing import Callable

from openevolve_genesys.controller.accounting import classify_evaluation
from openevolve_genesys.evaluation.evaluator import Evaluation, ScalingLawEvaluator
from openevolve_genesys.outcomes import AttemptClass
from openevolve_genesys.validation.journal import TrainingResult
from openevolve_genesys.validation.plan import TrainingJob, ValidationPlan

Trainer = Callable[[TrainingJob], TrainingResult]


class EvaluatorTrainer:
    def __init__(self, plan: ValidationPlan):
        self.plan = plan
        self._evaluators: dict[int, ScalingLawEvaluator] = {}

    def evaluator(self, seed: int) -> ScalingLawEvaluator:
        if seed not in self._evaluators:
            self._evaluators[seed] = ScalingLawEvaluator(self.plan.seed_settings(seed))
        return self._evaluators[seed]

    def __call__(self, job: TrainingJob) -> TrainingResult:
        evaluator = self.evaluator(job.seed)
        try:
            evaluation = evaluator.evaluate(job.code, [job.rung], learning_rate=job.learning_rate,
                                            baseline_learning_rate=job.baseline_learning_rate)
        except RuntimeError as err:  # the baseline a design is compared with failed: not the design's fault
            return self._result(job, "infra", message=str(err))
        return self._from_evaluation(job, evaluation)

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
