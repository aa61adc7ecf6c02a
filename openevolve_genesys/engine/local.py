"""The local engine: a fixed set of slots, each pinned to one device (or unpinned), shared by the run's threads.

A slot is taken for the length of one evaluation and handed back whatever happens, so a crashed or hung
evaluation (reaped by the sandbox) frees its device for the next job.
"""

from __future__ import annotations

import queue
import time
from typing import Any, Sequence

from openevolve_genesys.engine.devices import slot_envs
from openevolve_genesys.evaluation.evaluator import Evaluation, ScalingLawEvaluator


class LocalEngine:
    def __init__(self, evaluator: ScalingLawEvaluator, devices: Sequence[str] = (), workers: int = 1):
        self.evaluator = evaluator
        envs = slot_envs(devices, workers)
        self.slots = len(envs)
        self._free: queue.Queue[dict[str, str]] = queue.Queue()
        for env in envs:
            self._free.put(env)

    def evaluate(self, source: str, rungs: Sequence[str], **options: Any) -> Evaluation:
        waited = time.perf_counter()
        env = self._free.get()
        waited = time.perf_counter() - waited
        try:
            pinned = {"env": env} if env else {}  # an unpinned slot leaves the environment alone
            evaluation = self.evaluator.evaluate(source, rungs, **pinned, **options)
            if isinstance(evaluation, Evaluation):  # the wait for this slot is the job's queue time
                evaluation.timing["queue"] = round(evaluation.timing.get("queue", 0.0) + waited, 3)
            return evaluation
        finally:
            self._free.put(env)

    def shutdown(self) -> None:
        pass
