"""The evaluation job that runs inside the sandbox's child process.

Everything that executes evolved code happens here: loading, the isolated checks, the functional
hash, and training at each requested rung. Each finished rung is written to the fitness cache at
once, so a later crash or timeout loses nothing already computed.
"""

from __future__ import annotations

import dataclasses
import os
import time
from functools import partial
from pathlib import Path
from typing import Any, Callable, Mapping, Sequence

import jax

from openevolve_genesys.data import DataConfig, load_data
from openevolve_genesys.evaluation.cache import CacheKey, FitnessCache, config_hash
from openevolve_genesys.evaluation.checks import (
    CheckSettings, StepTimeGuard, check_learning, check_mixer, check_parameter_budget, describe_counts,
)
from openevolve_genesys.evaluation.hashing import code_hash, functional_probe
from openevolve_genesys.evaluation.noop import noop_message, probe_distance
from openevolve_genesys.evaluation.program import ProgramError, load_program
from openevolve_genesys.evaluation.sandbox import DesignInvalid
from openevolve_genesys.outcomes import Check
from openevolve_genesys.evaluation.timing import Stopwatch
from openevolve_genesys.evaluation.tuning import TuneSettings, TuneTrial, one_by_one, tune_rung
from openevolve_genesys.evaluation.tuning import sweep as sweep_rates
from openevolve_genesys.training.batched import train_rung_batched
from openevolve_genesys.training.checkpoint import discard, save_params
from openevolve_genesys.training.loop import ChunkProgress, Programs, RungResult, train_rung
from openevolve_genesys.training.profiles import Rung, TrainConfig, get_profile
from openevolve_genesys.training.profiles import rung_train as resolve_rung
from openevolve_genesys.training.rung_result import CacheHit
from openevolve_genesys.training.runtime import cache_root, enable_compilation_cache


@dataclasses.dataclass(frozen=True)
class _Run:
    """One run of a rung in a job: its result, or the check it failed."""

    entry: RungResult | None  # None when the run failed
    cache_hit: CacheHit | None = None  # "functional" when the fitness cache answered
    check: Check | None = None  # the failed check's kind
    message: str = ""
    seconds: float = 0.0  # its equal share of the wall time of the training it was part of (0 for a cache hit)
    batch: int = 1  # runs trained side by side in that one program, itself included


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
    baseline_tokens_per_cpu_second: Mapping[str, float] | None = None,
    sweep: Mapping[str, Any] | None = None,
    seed_source: str | None = None,
    noop_tolerance: float = 0.0,
    seeds: Sequence[int] | None = None,
    params_dir: str | None = None,
    heartbeat: Callable[[dict], None] = lambda progress: None,
) -> dict[str, Any]:
    """Check ``source`` and train it at ``rungs``; returns per-rung results (JSON) or raises DesignInvalid.

    ``sweep`` ({"settings": TuneSettings fields, "baseline_learning_rate"}) first sweeps the learning rate on
    the cheap target (evaluation/tuning.py) and trains ``rungs`` at the winner; the rate being a run-time
    argument, the plain grid's uncached rates train as one batched program (``tune.batched``), and trials one at
    a time share one compiled program per shape with each other and the rung. ``seed_source`` (a design attempt's
    seed) screens the child before any training: within ``noop_tolerance`` of the seed's probe it is a no-op
    (evaluation/noop.py) and raises DesignInvalid of kind no_change. ``seeds`` (the baseline's other seeds, a
    validation's seeds) trains ``rungs`` at each of those seeds instead of the profile's, all seeds of a rung in
    one batched program, and returns each seed's rungs under ``seed_rungs`` (in the order of ``seeds``; ``rungs`` is the first's);
    every seed's rung is its own fitness cache entry, as when each seed was a job of its own (a seed that fails
    its checks fails the job once the seeds that learnt are stored, so that a retry seed by seed trains only it).
    ``params_dir`` keeps the final model of every rung of ``rungs`` this job trains (not tune trials) in
    ``params_dir/<rung>/`` (training/checkpoint.py: save_params); a rung the cache answers has none."""
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
                beat: Mapping[str, Any], checkpoint_dir: Path | None = None,
                kept: Path | None = None) -> list[_Run]:
        """The runs of ``fit(on_chunk)`` (rung ``name`` at ``train``, one run or several batched), each checked
        on its own to have learnt: a run that diverged or did not learn is a failed run beside the others (and
        a kept model of it goes). A failure of the training as a whole inside evolved code (an exception, too
        slow a step) is the design's fault and raises (its checkpoint goes: trained again, it would fail the
        same way)."""
        on_cpu = jax.default_backend() == "cpu"  # see StepTimeGuard: CPU time is compared on a CPU only
        guard = StepTimeGuard((baseline_tokens_per_second or {}).get(name), train.batch_size * train.seq_len,
                              settings.max_step_time_ratio, after_steps=2 * train.chunk_steps,
                              baseline_tokens_per_cpu_second=(baseline_tokens_per_cpu_second or {}).get(name)
                              if on_cpu else None)

        def on_chunk(progress: ChunkProgress) -> None:
            guard(progress)
            heartbeat({"rung": progress.rung, "step": progress.step, "of": progress.total_steps,
                       "train_loss": progress.train_loss, "time": time.time(), **beat})

        start = time.perf_counter()
        try:
            results = fit(on_chunk)
        except ProgramError as err:
            discard(checkpoint_dir)
            discard(kept)  # the model of a design that failed a check is no one's
            raise DesignInvalid(err.message, payload={"kind": err.kind, **report, "timing": watch.to_dict()}) from None
        except Exception as err:  # an exception inside evolved code while training is the design's fault
            if _out_of_memory(err):
                raise  # the sandbox reports it as crashed (memory), not as the design's fault
            discard(checkpoint_dir)
            discard(kept)
            raise DesignInvalid(f"training at rung {name} raised {type(err).__name__}: {err}",
                                payload={"kind": "runtime", **report, "timing": watch.to_dict()}) from None
        share = (time.perf_counter() - start) / len(results)
        runs = []
        for result in results:
            watch.rung(result)
            try:
                check_learning(result, ladder.vocab_size, settings)
            except ProgramError as err:
                discard(kept)  # only a single run keeps its model: it is this one
                runs.append(_Run(None, check=err.kind, message=err.message, seconds=share))
                continue
            runs.append(_Run(result, seconds=share))
        return runs

    def keep_model(folder: Path, rung: Rung, train: TrainConfig, model: Any, result: RungResult) -> None:
        # The result stands without its kept model: a failed save (a full disk) must not fail the design.
        try:
            save_params(folder, model, rung, train, ladder.vocab_size, result.final_eval_loss, program.source)
        except Exception as err:
            discard(folder)
            report["notes"].append(f"rung {rung.name}: its trained model was not kept ({type(err).__name__}: {err})")

    def train(name: str, train: TrainConfig, kept: Path | None = None) -> tuple[RungResult, CacheHit | None]:
        """Rung ``name`` at ``train``: its result and whether the fitness cache answered it; a rung trained
        here keeps its final model in ``kept`` when given."""
        (run,) = train_seeds(name, [train], {}, kept)
        return run.entry, run.cache_hit

    def train_seeds(name: str, trains: Sequence[TrainConfig], beat: Mapping[str, Any], kept: Path | None = None,
                    *, strict: bool = True) -> list[_Run]:
        """Rung ``name`` at each of ``trains`` (configs that differ only in training/batched.py's BATCHABLE_FIELDS,
        or one config): each one's run. Those the cache does not answer train together as one batched program;
        each that learnt is cached under its own config, with the rung's own steps resolved (profiles.rung_train)
        before the key, the checkpoint and the training see it. ``kept`` keeps a single run's final model.
        ``strict``: a run that failed its checks raises DesignInvalid (once the others are cached); else it is
        returned as a failed run, and so is every run of a training that failed as a whole."""
        trains = [resolve_rung(t, ladder.rung(name)) for t in trains]
        keys = [key_of(name, t) for t in trains]
        found: list[_Run | None] = [None if (hit := cache.get(key)) is None
                                    else _Run(RungResult.from_dict(hit, name), "functional") for key in keys]
        todo = [i for i, f in enumerate(found) if f is None]
        if not todo:
            return found
        runs = [trains[i] for i in todo]
        rung, options = ladder.rung(name), dict(vocab_size=ladder.vocab_size, mixer=program.build_mixer,
                                                programs=programs)
        # A long single run saves its state as it trains, so a lost worker's rerun resumes (batched seeds do not).
        checkpoint_dir = rung_checkpoint_dir(keys[todo[0]], runs[0]) if len(runs) == 1 else None
        batch = [len(runs)]  # how many ran side by side: 1 after an out-of-memory fallback

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
                    batch[0] = 1
            # Batched runs (the baseline's seeds, a validation's, a sweep's rates) are never kept.
            keep = None if kept is None or len(runs) > 1 else partial(keep_model, kept, rung, runs[0])
            return [train_rung(rung, token_data, run, callback=on_chunk, checkpoint_dir=checkpoint_dir,
                               on_trained=keep, **options) for run in runs]

        try:
            done = trained(name, runs[0], fit, beat, checkpoint_dir, kept)
        except DesignInvalid as err:
            if strict:
                raise
            done = [_Run(None, check=err.payload.get("kind"), message=str(err)) for _ in runs]
        for i, run in zip(todo, done):
            run = dataclasses.replace(run, batch=batch[0])
            if run.entry is not None:
                cache.put(keys[i], run.entry.measurement())
            found[i] = run
        discard(checkpoint_dir)  # the stored result answers from now on; a failed run would fail the same way
        failed = next((run for run in found if run.entry is None), None)
        if strict and failed is not None:
            raise DesignInvalid(failed.message, payload={"kind": failed.check, **report, "timing": watch.to_dict()})
        return found

    lr = ladder.train.learning_rate
    if sweep is not None:
        tune = TuneSettings(**sweep["settings"])
        rung = tune_rung(ladder, tune)

        def run_rates(rates: Sequence[float], changes: Mapping[str, Any]) -> list[TuneTrial]:
            """One trial per rate on the cheap target; several train as one batched program."""
            configs = [dataclasses.replace(ladder.train, **changes, learning_rate=rate) for rate in rates]
            runs = train_seeds(rung, configs, {"trial_learning_rates": list(rates)}, strict=False)
            return [TuneTrial(rate, None if run.entry is None else float(run.entry.final_eval_loss),
                              "ok" if run.entry is not None else "invalid", run.seconds, run.cache_hit, config.steps,
                              run.check, batch=run.batch)
                    for rate, config, run in zip(rates, configs, runs)]

        # The plain grid as one batch; successive halving (and a grid without tune.batched) one trial at a time.
        run_round = (run_rates if tune.batches_grid(jax.default_backend())
                     else one_by_one(lambda rate, changes: run_rates([rate], changes)[0]))
        swept = sweep_rates(ladder, tune, run_round, baseline_learning_rate=sweep.get("baseline_learning_rate"))
        report["tune"] = swept.to_dict()
        lr = swept.best_learning_rate
    rung_train = dataclasses.replace(ladder.train, learning_rate=lr)
    if seeds:
        # The baseline's other seeds: per rung, one batched program trains them all.
        report["seed_rungs"] = [{} for _ in seeds]
        for name in rungs:
            results = train_seeds(name, [dataclasses.replace(rung_train, seed=s) for s in seeds],
                                  {"seeds": list(seeds)})
            for by_seed, run in zip(report["seed_rungs"], results):
                by_seed[name] = dataclasses.replace(run.entry, cache_hit=run.cache_hit).to_dict()  # the pipe carries JSON
            if any(run.cache_hit is None for run in results):
                report["trained_rungs"].append(name)
        report["rungs"] = report["seed_rungs"][0]
    else:
        for name in rungs:
            entry, hit = train(name, rung_train, kept=Path(params_dir) / name if params_dir else None)
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
