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
from openevolve_genesys.training.batched import train_rung_batched
from openevolve_genesys.training.checkpoint import discard
from openevolve_genesys.training.loop import ChunkProgress, Programs, RungResult, train_rung
from openevolve_genesys.training.profiles import TrainConfig, get_profile
from openevolve_genesys.training.rung_result import CacheHit
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
    seeds: Sequence[int] | None = None,
    heartbeat: Callable[[dict], None] = lambda progress: None,
) -> dict[str, Any]:
    """Check ``source`` and train it at ``rungs``; returns per-rung results (JSON) or raises DesignInvalid.

    ``sweep`` ({"settings": TuneSettings fields, "baseline_learning_rate"}) first sweeps the learning rate on
    the cheap target (evaluation/tuning.py) and trains ``rungs`` at the winner; every trial and rung of one
    shape shares one compiled program, the rate being a run-time argument. ``seed_source`` (a design attempt's
    seed) screens the child before any training: within ``noop_tolerance`` of the seed's probe it is a no-op
    (evaluation/noop.py) and raises DesignInvalid of kind no_change. ``seeds`` (the baseline's other seeds)
    trains ``rungs`` at each of those seeds instead of the profile's, all seeds of a rung in one batched program,
    and returns each seed's rungs under ``seed_rungs`` (in the order of ``seeds``; ``rungs`` is the first's);
    every seed's rung is its own fitness cache entry, as when each seed was a job of its own."""
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

    def key_of(name: str, train: TrainConfig) -> CacheKey:
        return CacheKey(report["functional_hash"], ladder.name, name, token_data.fingerprint,
                        config_hash(train.identity()))

    def trained(name: str, train: TrainConfig, fit: Callable[[Callable[[ChunkProgress], None]], list[RungResult]],
                beat: Mapping[str, Any], checkpoint_dir: Path | None = None) -> list[RungResult]:
        """The results of ``fit(on_chunk)`` (rung ``name`` at ``train``, one run or several batched), each
        checked to have learnt; a failure inside evolved code is the design's fault (and its checkpoint goes:
        trained again, it would fail the same way)."""
        guard = StepTimeGuard((baseline_tokens_per_second or {}).get(name), train.batch_size * train.seq_len,
                              settings.max_step_time_ratio, after_steps=2 * train.chunk_steps)

        def on_chunk(progress: ChunkProgress) -> None:
            guard(progress)
            heartbeat({"rung": progress.rung, "step": progress.step, "of": progress.total_steps,
                       "train_loss": progress.train_loss, "time": time.time(), **beat})

        try:
            results = fit(on_chunk)
            for result in results:
                watch.rung(result)
                check_learning(result, ladder.vocab_size, settings)
        except ProgramError as err:
            discard(checkpoint_dir)
            raise DesignInvalid(err.message, payload={"kind": err.kind, **report, "timing": watch.to_dict()}) from None
        except Exception as err:  # an exception inside evolved code while training is the design's fault
            if _out_of_memory(err):
                raise  # the sandbox reports it as crashed (memory), not as the design's fault
            discard(checkpoint_dir)
            raise DesignInvalid(f"training at rung {name} raised {type(err).__name__}: {err}",
                                payload={"kind": "runtime", **report, "timing": watch.to_dict()}) from None
        return results

    def train(name: str, train: TrainConfig, trial: float | None = None) -> tuple[RungResult, CacheHit | None]:
        """Rung ``name`` at ``train``: its result and whether the fitness cache answered it."""
        return train_seeds(name, [train], {} if trial is None else {"trial_learning_rate": trial})[0]

    def train_seeds(name: str, trains: Sequence[TrainConfig], beat: Mapping[str, Any]
                    ) -> list[tuple[RungResult, CacheHit | None]]:
        """Rung ``name`` at each of ``trains`` (configs that differ in the seed only, or one config): each
        one's result and whether the fitness cache answered it. Those the cache does not answer train
        together as one batched program (training/batched.py); each is cached under its own config."""
        keys = [key_of(name, t) for t in trains]
        found: list[tuple[RungResult, CacheHit | None] | None] = [
            None if (hit := cache.get(key)) is None else (RungResult.from_dict(hit, name), "functional")
            for key in keys]
        todo = [i for i, f in enumerate(found) if f is None]
        if not todo:
            return found
        runs = [trains[i] for i in todo]
        rung, options = ladder.rung(name), dict(vocab_size=ladder.vocab_size, mixer=program.build_mixer,
                                                programs=programs)
        # A long single run saves its state as it trains, so a lost worker's rerun resumes (batched seeds do not).
        checkpoint_dir = rung_checkpoint_dir(keys[todo[0]], runs[0]) if len(runs) == 1 else None

        def fit(on_chunk: Callable[[ChunkProgress], None]) -> list[RungResult]:
            # Alone, a run reuses the single-run programs a sweep's trials compiled; together they share one
            # batched program where memory allows (R models and optimizer states at once), else one at a time.
            if len(runs) > 1:
                try:
                    return train_rung_batched(rung, token_data, runs, callback=on_chunk, **options)
                except Exception as err:
                    if not _out_of_memory(err):
                        raise
                    report["notes"].append(f"rung {name}: {len(runs)} runs batched ran out of memory "
                                           f"({type(err).__name__}); trained one at a time")
            return [train_rung(rung, token_data, run, callback=on_chunk, checkpoint_dir=checkpoint_dir, **options)
                    for run in runs]

        for i, entry in zip(todo, trained(name, runs[0], fit, beat, checkpoint_dir)):
            cache.put(keys[i], entry.measurement())
            found[i] = (entry, None)
        discard(checkpoint_dir)  # the stored result answers from now on
        return found

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
            return TuneTrial(rate, float(entry.final_eval_loss), "ok", time.perf_counter() - start, hit,
                             config.steps)

        swept = sweep_rates(ladder, tune, run_trial, baseline_learning_rate=sweep.get("baseline_learning_rate"))
        report["tune"] = swept.to_dict()
        lr = swept.best_learning_rate
    rung_train = dataclasses.replace(ladder.train, learning_rate=lr)
    if seeds:
        # The baseline's other seeds: per rung, one batched program trains them all.
        report["seed_rungs"] = [{} for _ in seeds]
        for name in rungs:
            results = train_seeds(name, [dataclasses.replace(rung_train, seed=s) for s in seeds],
                                  {"seeds": list(seeds)})
            for by_seed, (entry, hit) in zip(report["seed_rungs"], results):
                by_seed[name] = dataclasses.replace(entry, cache_hit=hit).to_dict()  # the pipe carries JSON
            if any(hit is None for _, hit in results):
                report["trained_rungs"].append(name)
        report["rungs"] = report["seed_rungs"][0]
    else:
        for name in rungs:
            entry, hit = train(name, rung_train)
            if hit is None:
                report["trained_rungs"].append(name)
            report["rungs"][name] = dataclasses.replace(entry, cache_hit=hit).to_dict()
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
