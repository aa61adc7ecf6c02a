"""The local engine: a fixed set of slots, each pinned to one device (or unpinned), shared by the run's threads.

A slot is taken for the length of one evaluation and handed back whatever happens, so a crashed or hung
evaluation (reaped by the sandbox) frees its device for the next job.

Each slot keeps one warm sandbox child (``genesys.engine.warm_child``, evaluation/sandbox.py ``WarmSlot``):
while a slot's job runs, the child for its next job is already started, imports done, waiting for its job. The
spare child lives here, per slot, and not in the evaluator that calls the sandbox: a slot runs one evaluation
at a time and owns its device environment, which JAX reads at import, so one spare per slot is exactly the next
job's child and the number of processes never exceeds two per slot; the evaluator is shared by every thread
and knows nothing of slots, so a spare kept there would be started for no device in particular or once per
thread. A child still serves one evaluation only, under the same limits as a cold one.
"""

from __future__ import annotations

import queue
import time
from typing import Any, Sequence

from openevolve_genesys.engine.devices import slot_envs
from openevolve_genesys.evaluation.evaluator import Evaluation, ScalingLawEvaluator
from openevolve_genesys.evaluation.sandbox import WarmSlot


class LocalEngine:
    def __init__(self, evaluator: ScalingLawEvaluator, devices: Sequence[str] = (), workers: int = 1,
                 warm_child: bool = True):
        self.evaluator = evaluator
        envs = slot_envs(devices, workers)
        self.slots = len(envs)
        self.warm_slots = [WarmSlot() for _ in envs] if warm_child else []
        self._free: queue.Queue[tuple[dict[str, str], WarmSlot | None]] = queue.Queue()
        for i, env in enumerate(envs):
            self._free.put((env, self.warm_slots[i] if warm_child else None))

    def evaluate(self, source: str, rungs: Sequence[str], **options: Any) -> Evaluation:
        waited = time.perf_counter()
        slot = self._free.get()
        env, warm = slot
        waited = time.perf_counter() - waited
        try:
            pinned = {"env": env} if env else {}  # an unpinned slot leaves the environment alone
            if warm is None:
                evaluation = self.evaluator.evaluate(source, rungs, **pinned, **options)
            else:
                with warm.active():
                    evaluation = self.evaluator.evaluate(source, rungs, **pinned, **options)
            if isinstance(evaluation, Evaluation):  # the wait for this slot is the job's queue time
                evaluation.timing["queue"] = round(evaluation.timing.get("queue", 0.0) + waited, 3)
            return evaluation
        finally:
            self._free.put(slot)

    def shutdown(self) -> None:
        """Kill the slots' waiting children; an evaluation still running keeps its own child until it ends."""
        for warm in self.warm_slots:
            warm.close()
