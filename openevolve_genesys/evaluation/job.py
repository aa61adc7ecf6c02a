"""The evaluation job that runs inside the sandbox's child process.

Everything that executes evolved code happens here: loading, the isolated checks, the functional
hash, and training at each requested rung. Each finished rung is written to the fitness cache at
once, so a later crash or timeout loses nothing already computed.
"""

from __future__ import annotations

import dataclasses
import os
import time
from typing import Any, Callable, Mapping, Sequence

from openevolve_genesys.data import DataConfig, load_data
from openevolve_genesys.evaluation.cache import CacheKey, FitnessCache, config_hash
from openevolve_genesys.evaluation.checks import (
    CheckSettings, StepTimeGuard, check_learning, check_mixer, check_parameter_budget, describe_counts,
)
from openevolve_genesys.evaluation.hashing import code_hash, functional_hash
from openevolve_genesys.evaluation.program import ProgramError, load_program
from openevolve_genesys.evaluation.sandbox import DesignInvalid
from openevolve_genesys.training.loop import ChunkProgress, train_rung
from openevolve_genesys.training.profiles import get_profile
from openevolve_genesys.training.runtime import enable_compilation_cache

def evaluate_program(
    source: str,
    framework: str,
    profile: str,
    profile_overrides: Mapping[str, Any],
    data: Mapping[str, Any],
    rungs: Sequence[str],
    cache_path: str,
    checks: Mapping[str, Any],
    outside_edits: str = "revert",
    baseline_tokens_per_second: Mapping[str, float] | None = None,
    heartbeat: Callable[[dict], None] = lambda progress: None,
) -> dict[str, Any]:
    """Check ``source`` and train it at ``rungs``; returns per-rung results (JSON) or raises DesignInvalid."""
    enable_compilation_cache()
    settings = CheckSettings(**checks)
    ladder = get_profile(profile, profile_overrides)
    report: dict[str, Any] = {"notes": [], "rungs": {}, "trained_rungs": [], "device": device_report()}
    # Imports and the backend are up: from here on, silence means the program hangs, and the sandbox reaps it
    # after heartbeat_seconds instead of the longer startup limit.
    heartbeat({"stage": "started"})
    try:
        program = load_program(source, framework=framework, policy=outside_edits)
        report["notes"] += program.notes
        # A hybrid stack is checked and hashed at every layer of every depth the ladder trains it at.
        depths = sorted({rung.n_layers for rung in ladder.rungs})
        check_mixer(program.build_mixer, settings, depths)
        heartbeat({"stage": "mixer checked"})
        counts = check_parameter_budget(program.build_mixer, ladder, settings)
        report["notes"].append(f"parameters (design vs baseline N): {describe_counts(counts)}")
        report["code_hash"] = code_hash(program.source)
        # At the training sequence length: a program may branch on shapes, and a hash taken on shorter
        # inputs than it trains on would file it under the wrong function.
        report["functional_hash"] = functional_hash(program.build_mixer, seq_len=ladder.train.seq_len,
                                                     depths=depths)
    except ProgramError as err:
        raise DesignInvalid(err.message, payload={"kind": err.kind, **report}) from None
    heartbeat({"stage": "checked"})

    token_data = load_data(DataConfig.from_dict(data), ladder.vocab_size)
    report["data_fingerprint"] = token_data.fingerprint
    cache = FitnessCache(cache_path)
    cache.remember_code(report["code_hash"], report["functional_hash"])
    train_hash = config_hash(dataclasses.asdict(ladder.train))
    tokens_per_step = ladder.train.batch_size * ladder.train.seq_len
    for name in rungs:
        key = CacheKey(report["functional_hash"], ladder.name, name, token_data.fingerprint, train_hash)
        cached = cache.get(key)
        if cached is not None:
            report["rungs"][name] = {**cached, "cache_hit": "functional"}
            continue
        guard = StepTimeGuard((baseline_tokens_per_second or {}).get(name), tokens_per_step,
                              settings.max_step_time_ratio, after_steps=2 * ladder.train.chunk_steps)

        def on_chunk(progress: ChunkProgress) -> None:
            guard(progress)
            heartbeat({"rung": progress.rung, "step": progress.step, "of": progress.total_steps,
                       "train_loss": progress.train_loss, "time": time.time()})

        try:
            result = train_rung(ladder.rung(name), token_data, ladder.train, vocab_size=ladder.vocab_size,
                                mixer=program.build_mixer, callback=on_chunk)
            check_learning(result, ladder.vocab_size, settings)
        except ProgramError as err:
            raise DesignInvalid(err.message, payload={"kind": err.kind, **report}) from None
        except Exception as err:  # an exception inside evolved code while training is the design's fault
            if _out_of_memory(err):
                raise  # the sandbox reports it as crashed (memory), not as the design's fault
            raise DesignInvalid(f"training at rung {name} raised {type(err).__name__}: {err}",
                                payload={"kind": "runtime", **report}) from None
        report["trained_rungs"].append(name)
        entry = result.to_dict()
        cache.put(key, entry)
        report["rungs"][name] = {**entry, "cache_hit": None}
    return report


def device_report() -> dict[str, Any]:
    """What this process trains on, as JAX sees it after the engine pinned the environment."""
    import jax

    return {"backend": jax.default_backend(), "devices": [str(d) for d in jax.devices()],
            "CUDA_VISIBLE_DEVICES": os.environ.get("CUDA_VISIBLE_DEVICES"),
            "JAX_PLATFORMS": os.environ.get("JAX_PLATFORMS")}


def _out_of_memory(err: BaseException) -> bool:
    return isinstance(err, MemoryError) or "RESOURCE_EXHAUSTED" in str(err)
