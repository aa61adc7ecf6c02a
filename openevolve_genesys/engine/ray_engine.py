"""The Ray engine: each evaluation is a Ray task with its own CPU/GPU resources, on a local or remote cluster.

Ray gives a task the GPUs it asked for (it sets ``CUDA_VISIBLE_DEVICES`` in the worker, and the sandboxed
child inherits it), queues tasks until resources free up, and re-submits a task whose worker process or
node died, up to ``max_retries`` times: a lost node costs time, not a design. Verifications are promoted
asynchronously, as in ASHA (Li et al. 2020): the controller chooses the next (design, rung) whenever a
slot frees, never waiting for a rung to fill. Ray is an optional extra: ``pip install -e ".[ray]"``.
"""

from __future__ import annotations

import dataclasses
import logging
import os
from typing import Any, Sequence

from openevolve_genesys.engine.base import EngineSettings
from openevolve_genesys.engine.devices import SHARED_MEMORY, shared_memory_env
from openevolve_genesys.evaluation.evaluator import INVALID_SCORE, Evaluation, ScalingLawEvaluator
from openevolve_genesys.evaluation.settings import EvaluatorSettings

log = logging.getLogger(__name__)
_EVALUATORS: dict[str, ScalingLawEvaluator] = {}  # per Ray worker process, by repr of the settings


def evaluate_in_worker(settings: EvaluatorSettings, source: str, rungs: list[str], options: dict[str, Any],
                       baseline: Evaluation | None = None) -> Evaluation:
    """The Ray task body: one evaluator per worker process and settings. ``baseline`` is the controller's
    baseline evaluation: a worker on another node, with its own fitness cache, would otherwise train the
    whole baseline ladder again before its first comparison."""
    key = repr(settings)  # settings hold dicts: not hashable, but their repr is deterministic
    evaluator = _EVALUATORS.get(key)
    if evaluator is None:
        evaluator = _EVALUATORS[key] = ScalingLawEvaluator(settings)
    if baseline is not None:
        evaluator.adopt_baseline(baseline)
    return evaluator.evaluate(source, rungs, **options)


def shared_gpu_env(settings: EngineSettings, gpus: float) -> dict[str, str]:
    """The child environment of a task asking for ``gpus`` < 1: Ray shares a GPU out between tasks but not its
    memory, and JAX would take 75% of it in each. Empty for a whole GPU or none."""
    if not 0 < gpus < 1:
        return {}
    return shared_memory_env(settings.memory_fraction if settings.slots_per_device > 1 else SHARED_MEMORY * gpus)


class RayEngine:
    def __init__(self, settings: EngineSettings, evaluator: ScalingLawEvaluator, workers: int):
        try:
            import ray
        except ImportError:
            raise ImportError('genesys.engine.kind is "ray" but Ray is not installed: pip install -e ".[ray]"') from None
        self._ray = ray
        self._started = not ray.is_initialized()
        if self._started:
            env = {k: os.environ[k] for k in ("GENESYS_CACHE_DIR",) if k in os.environ}
            ray.init(address=settings.ray_address or None, num_cpus=settings.ray_num_cpus or None,
                     include_dashboard=False, log_to_driver=False, runtime_env={"env_vars": env} if env else None)
        if settings.slots_per_device > 1 and not ray.cluster_resources().get("GPU"):
            # A fractional GPU request on a cluster without GPUs would never be scheduled.
            log.info("engine.slots_per_device=%d has no effect: the Ray cluster has no GPU", settings.slots_per_device)
            settings = dataclasses.replace(settings, slots_per_device=1, memory_fraction_per_slot=0.0)
        self.settings = settings
        self.evaluator = evaluator  # the controller's: its baselines travel with each job
        self.slots = workers
        self._task = ray.remote(evaluate_in_worker)
        log.info("Ray engine: %s, %s CPU and %s GPU per evaluation (per rung: %s CPU, %s GPU)",
                 ray.cluster_resources(), settings.cpus_per_job, settings.resources([])[1],
                 dict(settings.cpus_per_rung) or "-", dict(settings.gpus_per_rung) or "-")

    def evaluate(self, source: str, rungs: Sequence[str], **options: Any) -> Evaluation:
        options.pop("on_heartbeat", None)  # a remote child's heartbeats do not reach this process
        if self.settings.ray_address:  # another node's child would keep its models on that node's disk
            options.pop("params_dir", None)
        cpus, gpus = self.settings.resources(rungs)
        shared = shared_gpu_env(self.settings, gpus)
        if shared:
            options["env"] = {**(options.get("env") or {}), **shared}
        baseline = self.evaluator.known_baseline(options.get("baseline_learning_rate"))
        ref = self._task.options(num_cpus=cpus, num_gpus=gpus, max_retries=self.settings.max_retries,
                                 retry_exceptions=False).remote(
            self.evaluator.settings, source, list(rungs), options, baseline)
        try:
            return self._ray.get(ref)
        except (self._ray.exceptions.WorkerCrashedError, self._ray.exceptions.NodeDiedError,
                self._ray.exceptions.ObjectLostError, self._ray.exceptions.RaySystemError) as err:
            # Out of retries: the cluster, not the design, failed. The budget layer re-queues it.
            message = f"Ray lost this evaluation after {self.settings.max_retries} re-submissions: {err}"
            # As the local sandbox reports a killed child: outcome crashed, reason signal, no check decided.
            return Evaluation("crashed", {"combined_score": INVALID_SCORE, "outcome": "crashed", "check": "crashed",
                                          "reason": "signal"}, {"message": message}, reason="signal")

    def shutdown(self) -> None:
        if self._started and self._ray.is_initialized():
            self._ray.shutdown()
