"""The evaluation job that runs inside the sandbox's child process.

Everything that executes evolved code happens here: loading, the isolated checks, the functional
hash, and training at each requested rung. Each finished rung is written to the fitness cache at
once, so a later crash or timeout loses nothing already computed.
"""

from __future__ import annotations

import dataclasses
import os
import time
from pathlib import Path
from typing import Any, Callable, Mapping, Sequence

from openevolve_genesys.data import DataConfig, load_data
from openevolve_genesys.evaluation.cache import CacheKey, FitnessCache, config_hash
from openevolve_genesys.evaluation.checks import (
    CheckSettings, StepTimeGuard, check_learning, check_mixer, check_parameter_budget, describe_counts,
)
from openevolve_genesys.evaluation.hashing import code_hash, functional_probe
from openevolve_genesys.evaluation.noop import noop_message, probe_distance
from openevolve_genesys.evaluation.program import ProgramError, load_program
from openevolve_genesys.evaluation.sandbox import DesignInvalid
from openevolve_genesys.evaluation.timing import Stopwatch
from openevolve_genesys.evaluation.tuning import TuneSettings, TuneTrial, tune_rung
from openevolve_genesys.evaluation.tuning import sweep as sweep_rates
from openevolve_genesys.training.checkpoint import discard
from openevolve_genesys.training.loop import ChunkProgress, Programs, train_rung
from openevolve_genesys.training.profiles import TrainConfig, get_profile
from openevolve_genesys.training.runtime import cache_root, enable_compilation_cache

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
    sweep: Mapping[str, Any] | None = None,
    seed_source: str | None = None,
    noop_tolerance: float = 0.0,
    heartbeat: Callable[[dict], None] = lambda progress: None,
) -> dict[str, Any]:
    """Check ``source`` and train it at ``rungs``; returns per-rung results (JSON) or raises DesignInvalid.

    ``sweep`` ({"settings": TuneSettings fields, "baseline_learning_rate"}) first sweeps the learning rate on
    the cheap target (evaluation/tuning.py) and trains ``rungs`` at the winner; every trial and rung of one
    shape shares one compiled program, the rate being a run-time argument. ``seed_source`` (a design attempt's
    seed) screens the child before any training: within ``noop_tolerance`` of the seed's probe it is a no-op
    (evaluation/noop.py) and raises DesignInvalid of kind no_change."""
    watch = Stopwatch()
    enable_compilation_cache()
    settings = CheckSettings(**checks)
    ladder = get_profile(profile, profile_overrides)
    report: dict[str, Any] = {"notes": [], "rungs": {}, "trained_rungs": [], "device": device_report()}
    # Imports and the backend are up: from here on, silence means the program hangs, and the sandbox reaps it
    # after heartbeat_seconds instead of the longer startup limit.
    heartbeat({"stage": "started"})
    watch.lap("startup")
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
        probe = functional_probe(program.build_mixer, seq_len=ladder.train.seq_len, depths=depths)
        report["functional_hash"] = probe.hash()
        if seed_source is not None:
            # The seed runs here, in the child's sandbox, on the same probe: the parent never runs evolved code.
            seed = load_program(seed_source, framework=framework, policy=outside_edits)
            distance = probe_distance(probe, functional_probe(seed.build_mixer, seq_len=ladder.train.seq_len,
                                                              depths=depths))
            report["noop_probe"] = {**distance.to_dict(), "tolerance": noop_tolerance}
            if distance.is_noop(noop_tolerance):
                raise ProgramError("no_change", noop_message(distance, noop_tolerance))
    except ProgramError as err:
        raise DesignInvalid(err.message, payload={"kind": err.kind, **report, "timing": watch.to_dict()}) from None
    heartbeat({"stage": "checked"})
    watch.lap("checks")

    token_data = load_data(DataConfig.from_dict(data), ladder.vocab_size)
    report["data_fingerprint"] = token_data.fingerprint
    cache = FitnessCache(cache_path)
    cache.remember_code(report["code_hash"], report["functional_hash"])
    watch.lap("data")
    programs = Programs()

    def train(name: str, train: TrainConfig, trial: float | None = None) -> tuple[dict[str, Any], str | None]:
        """Rung ``name`` at ``train``: its result dict and whether the fitness cache answered it."""
        key = CacheKey(report["functional_hash"], ladder.name, name, token_data.fingerprint,
                       config_hash(train.identity()))
        cached = cache.get(key)
        if cached is not None:
            return cached, "functional"
        guard = StepTimeGuard((baseline_tokens_per_second or {}).get(name), train.batch_size * train.seq_len,
                              settings.max_step_time_ratio, after_steps=2 * train.chunk_steps)

        def on_chunk(progress: ChunkProgress) -> None:
            guard(progress)
            beat = {"rung": progress.rung, "step": progress.step, "of": progress.total_steps,
                    "train_loss": progress.train_loss, "time": time.time()}
            heartbeat(beat if trial is None else {**beat, "trial_learning_rate": trial})

        checkpoint_dir = rung_checkpoint_dir(key, train)
        try:
            result = train_rung(ladder.rung(name), token_data, train, vocab_size=ladder.vocab_size,
                                mixer=program.build_mixer, callback=on_chunk, programs=programs,
                                checkpoint_dir=checkpoint_dir)
            watch.rung(result)
            check_learning(result, ladder.vocab_size, settings)
        except ProgramError as err:
            discard(checkpoint_dir)  # the design's fault: trained again, it would fail the same way
            raise DesignInvalid(err.message, payload={"kind": err.kind, **report, "timing": watch.to_dict()}) from None
        except Exception as err:  # an exception inside evolved code while training is the design's fault
            if _out_of_memory(err):
                raise  # the sandbox reports it as crashed (memory), not as the design's fault
            discard(checkpoint_dir)
            raise DesignInvalid(f"training at rung {name} raised {type(err).__name__}: {err}",
                                payload={"kind": "runtime", **report, "timing": watch.to_dict()}) from None
        entry = result.to_dict()
        cache.put(key, entry)
        discard(checkpoint_dir)  # the stored result answers from now on
        return entry, None

    lr = ladder.train.learning_rate
    if sweep is not None:
        tune = TuneSettings(**sweep["settings"])
        rung = tune_rung(ladder, tune)

        def run_trial(rate: float, changes: Mapping[str, Any]) -> TuneTrial:
            start = time.perf_counter()
            config = dataclasses.replace(ladder.train, **changes, learning_rate=rate)
            try:
                entry, hit = train(rung, config, trial=rate)
            except DesignInvalid as err:
                return TuneTrial(rate, None, "invalid", time.perf_counter() - start, None, config.steps,
                                 err.payload.get("kind"))
            return TuneTrial(rate, float(entry["final_eval_loss"]), "ok", time.perf_counter() - start, hit,
                             config.steps)

        swept = sweep_rates(ladder, tune, run_trial, baseline_learning_rate=sweep.get("baseline_learning_rate"))
        report["tune"] = swept.to_dict()
        lr = swept.best_learning_rate
    rung_train = dataclasses.replace(ladder.train, learning_rate=lr)
    for name in rungs:
        entry, hit = train(name, rung_train)
        if hit is None:
            report["trained_rungs"].append(name)
        report["rungs"][name] = {**entry, "cache_hit": hit}
    report["compiles"] = programs.compiles
    report["timing"] = watch.to_dict()
    return report


def rung_checkpoint_dir(key: CacheKey, train: TrainConfig) -> Path | None:
    """Where the rung under ``key`` saves its training state: under the cache root, which the jailed child may
    write, and named by the key, so the same evaluation run again after its worker was lost resumes there.
    None for a rung no longer than one checkpoint interval (or with checkpoints off): it would never save."""
    if train.checkpoint_steps <= 0 or train.steps <= train.checkpoint_steps:
        return None
    return cache_root() / "rung_checkpoints" / config_hash(key)[:32]


def device_report() -> dict[str, Any]:
    """What this process trains on, as JAX sees it after the engine pinned the environment."""
    import jax

    return {"backend": jax.default_backend(), "devices": [str(d) for d in jax.devices()],
            "CUDA_VISIBLE_DEVICES": os.environ.get("CUDA_VISIBLE_DEVICES"),
            "JAX_PLATFORMS": os.environ.get("JAX_PLATFORMS")}


def _out_of_memory(err: BaseException) -> bool:
    return isinstance(err, MemoryError) or "RESOURCE_EXHAUSTED" in str(err)
