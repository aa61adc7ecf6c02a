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

Several slots may share one GPU (``engine.slots_per_device``): each then grows its memory on demand up to its
share of the device.
"""

from __future__ import annotations

import logging
import queue
import time
from typing import Any, Callable, Sequence

from openevolve_genesys.engine.devices import SHARED_MEMORY, slot_envs
from openevolve_genesys.evaluation.evaluator import Evaluation, ScalingLawEvaluator
from openevolve_genesys.evaluation.sandbox import WarmSlot

log = logging.getLogger(__name__)


def _backend() -> str:
    from openevolve_genesys.profile_choice import controller_backend  # imports JAX: only when slots share a GPU

    return controller_backend()


class LocalEngine:
    def __init__(self, evaluator: ScalingLawEvaluator, devices: Sequence[str] = (), workers: int = 0,
                 slots_per_device: int = 1, memory_fraction: float = 0.0,
                 backend: Callable[[], str] | None = None, warm_child: bool = True):
        """``backend`` (default: JAX's, asked without reserving memory) tells whether this machine has a GPU;
        it is asked only when ``slots_per_device`` > 1."""
        self.evaluator = evaluator
        shared = slots_per_device
        if shared > 1 and devices and all(d.strip().lower() == "cpu" for d in devices):
            log.info("engine.slots_per_device=%d has no effect: every listed device is the CPU", shared)
            shared = 1
        elif shared > 1 and (found := (backend or _backend)()) != "gpu":
            log.info("engine.slots_per_device=%d has no effect: no GPU on this machine (JAX backend %s); "
                     "genesys.workers sets how many evaluations share it", shared, found)
            shared = 1
        envs = slot_envs(devices, workers, shared, memory_fraction)
        if shared > 1:
            log.info("%d evaluation slots, %d per GPU (%s), each using at most %.0f%% of its GPU's memory",
                     len(envs), shared, ", ".join(devices) or "the one JAX picks",
                     100 * (memory_fraction or SHARED_MEMORY / shared))
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
