"""Evaluators on tiny override ladders for the tests that train through the real sandbox."""

from pathlib import Path
from typing import Any, Mapping

from openevolve_genesys.evaluation.evaluator import ScalingLawEvaluator
from openevolve_genesys.evaluation.sandbox import SandboxLimits
from openevolve_genesys.evaluation.settings import EvaluatorSettings

# A first chunk, its compile included, took over 20 s on 2 cores shared with other jobs (load 9-12): the heartbeat
# limit leaves room for that. Tests of the limits themselves set their own (test_sandbox.py, test_warm_child.py).
TRAINING_LIMITS = SandboxLimits(wall_seconds=240, heartbeat_seconds=60, startup_seconds=180, memory_bytes=6 << 30)


def tiny_evaluator(cache_dir: Path, ladder: Mapping[str, Any], **settings: Any) -> ScalingLawEvaluator:
    """The smoke profile overridden by ``ladder`` on a small slice of the stdlib corpus, with its own fitness
    cache in ``cache_dir``; ``settings`` are further EvaluatorSettings fields (``sandbox`` replaces the limits)."""
    settings.setdefault("sandbox", TRAINING_LIMITS)
    return ScalingLawEvaluator(EvaluatorSettings(
        profile="smoke", profile_overrides=ladder, data={"source": "stdlib", "max_corpus_bytes": 300_000},
        cache_path=str(Path(cache_dir) / "fitness.sqlite"), **settings))
