"""The engine interface the controller evaluates through, and the ``genesys.engine`` settings.

The controller runs design attempts and verifications in its own threads (LLM calls, diffs, records); an
engine runs only the evaluations, which are the expensive and dangerous part. An evaluation is the same
everywhere: ``evaluate(source, rungs, **options) -> Evaluation``, trained in a sandboxed child process. So
the controller neither knows nor cares where it ran, and a dead worker is an ``infra`` outcome the budget
layer re-queues rather than a failed design.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any, Mapping, Protocol, Sequence

from openevolve_genesys.engine.devices import SHARED_MEMORY
from openevolve_genesys.evaluation.evaluator import Evaluation
from openevolve_genesys.strict import build, check_choice

KINDS = ("local", "ray")


class Engine(Protocol):
    slots: int  # evaluations that can run at once

    def evaluate(self, source: str, rungs: Sequence[str], **options: Any) -> Evaluation:
        """``options`` are ``ScalingLawEvaluator.evaluate``'s; ``on_heartbeat`` is honoured where the engine
        can see the training child (locally), and dropped where it cannot (Ray)."""
        ...

    def shutdown(self) -> None: ...


@dataclass(frozen=True)
class EngineSettings:
    """The ``genesys.engine`` keys."""

    kind: str = "local"  # local or ray
    ray_address: str = ""  # "" starts a local Ray cluster; "auto" or "ray://host:10001" joins one
    ray_num_cpus: int = 0  # CPUs of a local Ray cluster; 0 = all
    cpus_per_job: float = 1.0
    gpus_per_job: float = 0.0
    # Per-rung overrides of the two above, e.g. {r4: 4} GPUs for the largest rung; a job spanning several
    # rungs asks for the most any of them needs.
    cpus_per_rung: Mapping[str, float] = field(default_factory=dict)
    gpus_per_rung: Mapping[str, float] = field(default_factory=dict)
    max_retries: int = 3  # Ray re-submits a task whose worker or node died this many times
    # Local engine: while a slot's evaluation runs, start the sandboxed child for its next one (imports done,
    # waiting for its job), so a job does not wait for Python and JAX to start; false starts each child on demand.
    warm_child: bool = True
    # Evaluations sharing one GPU: the local engine runs this many slots on each listed device (no device listed:
    # on the GPU each child's JAX picks), each growing its memory on demand up to memory_fraction_per_slot; a Ray
    # job asks for 1/slots_per_device GPU. No effect without a GPU (said in one log line).
    slots_per_device: int = 1
    # The most of a shared GPU's memory one slot may take; 0: 0.9 / slots_per_device (the rest holds each
    # process's CUDA context). Applies only when slots_per_device > 1.
    memory_fraction_per_slot: float = 0.0

    def __post_init__(self) -> None:
        check_choice(self.kind, KINDS, "kind")
        spd, fraction = self.slots_per_device, self.memory_fraction_per_slot
        if isinstance(spd, bool) or not isinstance(spd, int) or spd < 1:
            raise ValueError(f"engine.slots_per_device must be a whole number >= 1 (evaluations sharing one GPU), "
                             f"got {spd!r}")
        if isinstance(fraction, bool) or not isinstance(fraction, (int, float)) or not 0 <= fraction * spd <= 1:
            raise ValueError(f"engine.memory_fraction_per_slot must be a number with slots_per_device x it at most 1 "
                             f"(0: 0.9 / slots_per_device), got {fraction!r} for {spd} slots per device")
        if spd > 1 and (self.gpus_per_job or self.gpus_per_rung):
            raise ValueError("engine.slots_per_device and engine.gpus_per_job/gpus_per_rung both set a Ray job's GPU "
                             f"share: keep one (slots_per_device: {spd} asks 1/{spd} GPU per job)")
        if not isinstance(self.warm_child, bool):
            raise ValueError(f"engine.warm_child must be true or false, got {self.warm_child!r}; "
                             "write warm_child: false to start every sandbox child on demand")
        if self.cpus_per_job <= 0 or self.gpus_per_job < 0 or self.max_retries < 0 or self.ray_num_cpus < 0:
            raise ValueError("engine resources must be positive (cpus_per_job) or non-negative (the rest)")
        for name, per_rung, least in (("cpus_per_rung", self.cpus_per_rung, 0.0),
                                      ("gpus_per_rung", self.gpus_per_rung, -1.0)):
            if not isinstance(per_rung, Mapping) or any(
                    not isinstance(v, (int, float)) or v <= least for v in per_rung.values()):
                raise ValueError(f"engine.{name} maps rung names to {'positive' if least == 0 else 'non-negative'} "
                                 f"numbers, e.g. {{r3: 2}}; got {per_rung!r}")

    @property
    def memory_fraction(self) -> float:
        """The share of a shared GPU's memory one slot may take."""
        return self.memory_fraction_per_slot or SHARED_MEMORY / self.slots_per_device

    def resources(self, rungs: Sequence[str]) -> tuple[float, float]:
        """(CPUs, GPUs) one evaluation of ``rungs`` asks for: the largest need among its rungs."""
        per_job = self.gpus_per_job if self.slots_per_device == 1 else 1.0 / self.slots_per_device
        cpus = max((self.cpus_per_rung.get(r, self.cpus_per_job) for r in rungs), default=self.cpus_per_job)
        gpus = max((self.gpus_per_rung.get(r, per_job) for r in rungs), default=per_job)
        return float(cpus), float(gpus)

    @classmethod
    def from_dict(cls, raw: Mapping[str, Any], where: str = "genesys.engine") -> "EngineSettings":
        return build(cls, raw, where)
