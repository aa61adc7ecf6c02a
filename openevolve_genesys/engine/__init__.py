"""Where evaluations run: the local engine (one slot per device or CPU share) or Ray, behind one interface.

Each engine module imports only the interface (base.py); the choice between them lives here, above both.
Ray itself is imported only when a Ray engine starts."""

from __future__ import annotations

from typing import Sequence

from openevolve_genesys.engine.base import Engine, EngineSettings
from openevolve_genesys.engine.local import LocalEngine
from openevolve_genesys.engine.ray_engine import RayEngine
from openevolve_genesys.evaluation.evaluator import ScalingLawEvaluator

__all__ = ["Engine", "EngineSettings", "make_engine"]


def make_engine(settings: EngineSettings, evaluator: ScalingLawEvaluator, workers: int,
                devices: Sequence[str] = ()) -> Engine:
    """``devices`` (``genesys.devices``) pins the local engine's slots, ``settings.slots_per_device`` per device;
    ``workers`` (``genesys.workers``, 0: not set) is the number of slots when set."""
    if settings.kind == "ray":
        return RayEngine(settings, evaluator, max(workers, 1))
    return LocalEngine(evaluator, devices, workers, settings.slots_per_device, settings.memory_fraction_per_slot,
                       warm_child=settings.warm_child)
