"""ScalingLawEvaluator: score a program by training it up a ladder of rungs and fitting a scaling law.

The parent never executes evolved code: it answers from the fitness cache when the program's code
hash is known, and otherwise runs ``job.evaluate_program`` in the sandbox. The baseline (the
framework's own template) is evaluated the same way, once per learning rate, and cached; the design's
fitness is measured against it.

Each side of a comparison trains at its own learning rate (tune mode, ``evaluation/tuning.py``): a
design at ``learning_rate``, the baseline at ``baseline_learning_rate`` (or the rate set with
``set_baseline_learning_rate``); both default to the profile's. A rate is part of the TrainConfig, so
results at different rates are cached apart.
"""

from __future__ import annotations

import dataclasses
import logging
import math
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Callable, Mapping, Sequence

from openevolve_genesys.data import DataConfig, load_data, warn_if_repeated
from openevolve_genesys.evaluation.cache import CacheKey, FitnessCache, config_hash
from openevolve_genesys.evaluation.hashing import code_hash
from openevolve_genesys.evaluation.program import framework_path
from openevolve_genesys.evaluation.sandbox import run_in_sandbox
from openevolve_genesys.evaluation.settings import EvaluatorSettings
from openevolve_genesys.evaluation.timing import add_timing, job_timing
from openevolve_genesys.evaluation.results import Evaluation, TuneResult
from openevolve_genesys.evaluation.tuning import TuneSettings, tune_rung
from openevolve_genesys.scaling.fit import fit_summary
from openevolve_genesys.scaling.value import value_design
from openevolve_genesys.training.profiles import LadderProfile, TrainConfig, get_profile, rung_train
from openevolve_genesys.training.rung_result import CacheHit, RungResult, rungs_from_dict
from openevolve_genesys.training.runtime import cache_root

log = logging.getLogger(__name__)

INVALID_SCORE = -1000.0  # what OpenEvolve ranks a design that produced no valid result by


class ScalingLawEvaluator:
    def __init__(self, settings: EvaluatorSettings = EvaluatorSettings()):
        self.settings = settings
        self.profile: LadderProfile = get_profile(settings.profile, settings.profile_overrides)
        tune_rung(self.profile, settings.tune)  # a tune rung the ladder lacks fails now, not mid-run
        self.cache = FitnessCache(settings.resolved_cache_path())
        self.template = framework_path(settings.framework).read_text()
        self._data_fingerprint: str | None = None
        self._baselines: dict[float, Evaluation] = {}  # by learning rate
        self._baseline_lr: float | None = None

    # -- public -------------------------------------------------------------------------------
    def evaluate(self, source: str, rungs: Sequence[str] | None = None,
                 on_heartbeat: Callable[[dict], None] | None = None, *, learning_rate: float | None = None,
                 baseline_learning_rate: float | None = None, trial: Mapping[str, Any] | None = None,
                 env: Mapping[str, str] | None = None, tune: TuneSettings | None = None,
                 seed_source: str | None = None, seeds: Sequence[int] | None = None,
                 params_dir: str | Path | None = None) -> Evaluation:
        """Train ``source`` at ``rungs`` (all by default) and score it against the baseline.

        ``learning_rate`` trains the design at its own (tuned) rate and ``baseline_learning_rate`` picks
        the baseline it is compared with (default: ``self.baseline_learning_rate``); passing both per
        call works in any engine's worker, whose evaluator never saw ``set_baseline_learning_rate``.
        ``trial`` (TrainConfig changes: a tune trial's cheap target, or another seed of the baseline) trains
        and measures without a comparison: the baseline was never trained on that target. ``env`` adds child environment
        variables (an engine slot's device pinning). ``tune`` sweeps the design's rate in the same job first and
        trains ``rungs`` at the winner (``learning_rate`` must then be unset); the sweep is ``.tune``.
        ``seed_source`` (a design attempt's seed; verifications pass none) screens the child against it before
        training: a no-op (``genesys.noop_tolerance``, evaluation/noop.py) is ``invalid`` with check no_change.
        ``seeds`` (the baseline's other seeds) trains at each of those seeds in one job, every rung's seeds side by
        side in one batched program: the result's ``.seeds`` holds one Evaluation per seed, each as
        ``trial={"seed": seed}`` would have returned it (cached apart likewise), the job's seconds shared out.
        ``params_dir`` keeps the final model of each rung the job trains in ``params_dir/<rung>/``
        (training.checkpoint.load_params reads one); not with ``trial`` or ``seeds``, which are measurements.
        """
        if tune is not None and (learning_rate is not None or trial is not None):
            raise ValueError("evaluate(tune=...) chooses the learning rate itself: pass no learning_rate or trial")
        if seeds is not None and (tune is not None or trial is not None or not seeds):
            raise ValueError("evaluate(seeds=...) trains the profile's config at one or more other seeds: pass a "
                             f"non-empty list and no tune or trial (got seeds={list(seeds)})")
        if params_dir is not None and (trial is not None or seeds is not None):
            raise ValueError("evaluate(params_dir=...) keeps a design's rungs: pass no trial or seeds with it")
        names = list(rungs) if rungs is not None else [r.name for r in self.profile.rungs]
        lr = _rate(learning_rate, self.profile.train.learning_rate, "learning_rate")
        base_lr = _rate(baseline_learning_rate, self.baseline_learning_rate, "baseline_learning_rate")
        measured = trial is not None or seeds is not None  # trained and measured, not compared
        is_baseline = source == self.template and (lr == base_lr or measured or tune is not None)
        baseline = None if is_baseline else self.baseline(base_lr)
        speeds = BaselineSpeeds.of(baseline.rungs) if baseline else None
        if seeds is not None:
            return self._evaluate_seeds(source, names, lr, list(seeds), speeds, on_heartbeat, env)
        changes = {**(trial or {}), "learning_rate": lr}
        sweep = None if tune is None else {"settings": dataclasses.asdict(tune),
                                           "baseline_learning_rate": None if is_baseline else base_lr}
        evaluation = self._run(source, names, changes, speeds, on_heartbeat, env, sweep, seed_source=seed_source,
                               params_dir=params_dir)
        if evaluation.tune is not None:
            lr = evaluation.tune.best_learning_rate
            base_lr = lr if is_baseline else base_lr  # the template swept for itself is its own baseline
        evaluation.metrics["learning_rate"] = lr
        if trial is not None:
            evaluation.metrics["trial"] = True
            if evaluation.outcome == "ok":
                evaluation.metrics.update(_measured(evaluation.rungs))
            return evaluation
        evaluation.metrics["baseline_learning_rate"] = base_lr
        if evaluation.outcome == "ok":
            evaluation.metrics.update(self._score(evaluation.rungs, baseline.rungs if baseline else evaluation.rungs))
        return evaluation

    def evaluate_file(self, path: str | Path, rungs: Sequence[str] | None = None, **options: Any) -> Evaluation:
        path = Path(path)
        if not path.is_file():
            raise FileNotFoundError(f"program file {path} does not exist")
        return self.evaluate(path.read_text(), rungs, **options)

    @property
    def baseline_learning_rate(self) -> float:
        """The rate the baseline is compared at: the one set (its tuned rate), else the profile's."""
        return self.profile.train.learning_rate if self._baseline_lr is None else self._baseline_lr

    def set_baseline_learning_rate(self, learning_rate: float | None) -> None:
        """Compare designs with the baseline trained at ``learning_rate`` (None: the profile's rate)."""
        self._baseline_lr = None if learning_rate is None else _rate(learning_rate, 0.0, "baseline learning rate")

    def baseline(self, learning_rate: float | None = None) -> Evaluation:
        """The framework template at every rung, at ``learning_rate`` (default: ``baseline_learning_rate``);
        cached on disk after the first run."""
        lr = _rate(learning_rate, self.baseline_learning_rate, "learning_rate")
        if lr not in self._baselines:
            evaluation = self._run(self.template, [r.name for r in self.profile.rungs], {"learning_rate": lr},
                                   None, None, None)
            if evaluation.outcome != "ok":
                raise RuntimeError(f"the {self.settings.framework} baseline failed to evaluate at learning rate "
                                   f"{lr:g} ({evaluation.outcome}): {evaluation.artifacts.get('message')}")
            evaluation.metrics["learning_rate"] = lr
            self._baselines[lr] = evaluation
        return self._baselines[lr]

    def known_baseline(self, learning_rate: float | None = None) -> Evaluation | None:
        """The baseline evaluation at ``learning_rate`` (default: ``baseline_learning_rate``) if already trained."""
        return self._baselines.get(_rate(learning_rate, self.baseline_learning_rate, "learning_rate"))

    def adopt_baseline(self, evaluation: Evaluation) -> None:
        """Use another evaluator's baseline (an engine worker's evaluator gets the controller's)."""
        if evaluation.outcome != "ok" or "learning_rate" not in evaluation.metrics:
            raise ValueError("only a successful baseline evaluation (with its learning_rate) can be adopted")
        self._baselines.setdefault(float(evaluation.metrics["learning_rate"]), evaluation)

    def train_config(self, learning_rate: float | None = None, trial: Mapping[str, Any] | None = None) -> TrainConfig:
        """The TrainConfig an evaluation with these options trains with, before each rung's steps are resolved
        (``profiles.rung_train``; the resolved config's hash is in the cache key)."""
        lr = _rate(learning_rate, self.profile.train.learning_rate, "learning_rate")
        return self.profile.override({"train": {**(trial or {}), "learning_rate": lr}}).train

    def _evaluate_seeds(self, source: str, names: list[str], lr: float, seeds: list[int],
                        speeds: BaselineSpeeds | None, on_heartbeat: Callable[[dict], None] | None,
                        env: Mapping[str, str] | None) -> Evaluation:
        """``evaluate(seeds=...)``: one job for every seed the code cache cannot answer, none if it answers all."""
        cached = [self._cached_by_code(source, names, self.train_config(lr, {"seed": seed})) for seed in seeds]
        if all(found is not None for found in cached):
            evaluation = _answered_by_code(cached[0], self.data_fingerprint())
            evaluation.seeds = [_answered_by_code(found, self.data_fingerprint()) for found in cached]
        else:
            evaluation = self._run(source, names, {"learning_rate": lr}, speeds, on_heartbeat, env, seeds=seeds)
        for e in [evaluation, *evaluation.seeds]:
            e.metrics["learning_rate"] = lr
            e.metrics["trial"] = True
            if e.outcome == "ok":
                e.metrics.update(_measured(e.rungs))
        return evaluation

    # -- running ------------------------------------------------------------------------------
    def data_fingerprint(self) -> str:
        if self._data_fingerprint is None:
            data = load_data(DataConfig.from_dict(self.settings.data), self.profile.vocab_size)
            warn_if_repeated(data, self.profile.max_train_tokens())
            self._data_fingerprint = data.fingerprint
        return self._data_fingerprint

    def _cached_by_code(self, source: str, names: list[str], train: TrainConfig) -> dict[str, RungResult] | None:
        try:
            fhash = self.cache.functional_hash_for(code_hash(source))
        except SyntaxError:
            return None
        if fhash is None:
            return None
        found = {}
        for name in names:
            # Keyed by the rung's resolved config, as the job stores it (job.py).
            train_hash = config_hash(rung_train(train, self.profile.rung(name)).identity())
            hit = self.cache.get(CacheKey(fhash, self.profile.name, name, self.data_fingerprint(), train_hash))
            if hit is None:
                return None
            found[name] = dataclasses.replace(RungResult.from_dict(hit, name), cache_hit="code")
        return found

    def _run(self, source: str, names: list[str], changes: Mapping[str, Any], speeds: BaselineSpeeds | None,
             on_heartbeat: Callable[[dict], None] | None, env: Mapping[str, str] | None,
             sweep: Mapping[str, Any] | None = None, seed_source: str | None = None,
             seeds: Sequence[int] | None = None, params_dir: str | Path | None = None) -> Evaluation:
        """Train ``source`` at ``names`` with the profile's TrainConfig changed by ``changes`` (after a sweep of
        the learning rate in the same job, when ``sweep`` is given; at each of ``seeds``, when given)."""
        self.data_fingerprint()  # a bad data config fails here, in the parent, not as the design's fault
        cached = None if sweep or seeds else self._cached_by_code(source, names,
                                                                   self.profile.override({"train": changes}).train)
        if cached is not None:
            return _answered_by_code(cached, self.data_fingerprint())
        s = self.settings
        # The child rebuilds the profile from these overrides: the profile's own train changes, then ours.
        overrides = {**s.profile_overrides, "train": {**s.profile_overrides.get("train", {}), **changes}}
        result = run_in_sandbox(
            "openevolve_genesys.evaluation.job:evaluate_program",
            dict(source=source, framework=s.framework, profile=s.profile, profile_overrides=overrides,
                 data=dict(s.data), rungs=names, cache_path=str(s.resolved_cache_path()),
                 checks=dataclasses.asdict(s.checks), outside_edits=s.outside_edits,
                 baseline_tokens_per_second=speeds and speeds.wall,
                 baseline_tokens_per_cpu_second=speeds and speeds.cpu, sweep=sweep, seed_source=seed_source,
                 noop_tolerance=s.noop_tolerance, seeds=list(seeds) if seeds else None,
                 params_dir=str(Path(params_dir).absolute()) if params_dir is not None else None),
            s.sandbox, on_heartbeat=on_heartbeat, env={**(env or {}), "GENESYS_CACHE_DIR": str(cache_root())},
            writable_paths=self._writable_paths(params_dir),
        )
        payload = result.value if isinstance(result.value, dict) else {}
        tune = TuneResult.from_dict(payload["tune"]) if payload.get("tune") else None
        timing = job_timing(payload.get("timing", {}), result.seconds)
        artifacts = {"message": result.message, "stdout": result.stdout, "stderr": result.stderr,
                     "notes": "\n".join(payload.get("notes", [])), "seconds": round(result.seconds, 2),
                     "warm_child": result.warm}
        noop = payload.get("noop_probe")
        if noop is not None:  # the child's probe distance from its seed, screened or not
            artifacts["noop_probe"] = noop
        if result.outcome != "ok":
            kind = payload.get("kind", result.outcome)
            log.info("evaluation %s (%s): %s", result.outcome, kind, result.message.splitlines()[0] if result.message else "")
            return Evaluation(result.outcome, {"combined_score": INVALID_SCORE, "outcome": result.outcome,
                                               "check": kind, "reason": result.reason, **_distance(noop)},
                              artifacts, tune=tune, timing=timing, reason=result.reason)
        rungs = rungs_from_dict(payload["rungs"])  # the pipe carries JSON
        metrics = {"outcome": "ok", "cache_hit": _cache_hit(rungs),
                   "functional_hash": payload.get("functional_hash"),
                   "data_fingerprint": payload.get("data_fingerprint"), **_distance(noop)}
        artifacts["learning_curves"] = _curve_summary(rungs)
        artifacts["trained_rungs"] = payload.get("trained_rungs", [])
        artifacts["compiles"] = payload.get("compiles")  # XLA programs the job compiled (trials included)
        artifacts["device"] = payload.get("device")  # what the child trained on, after the engine pinned it
        evaluation = Evaluation("ok", metrics, artifacts, rungs, tune=tune, timing=timing, reason="ok")
        if seeds:
            # One job trained them all: each seed is credited an equal share of its seconds, so that summing the
            # seeds' timings (with_seed_losses) counts the job once.
            share = {phase: round(seconds / len(seeds), 3) for phase, seconds in timing.items()}
            evaluation.seeds = [
                Evaluation("ok", {**metrics, "cache_hit": _cache_hit(by_seed)},
                           {**artifacts, "learning_curves": _curve_summary(by_seed)}, by_seed, timing=dict(share),
                           reason="ok")
                for by_seed in map(rungs_from_dict, payload["seed_rungs"])]
        return evaluation

    def _writable_paths(self, params_dir: str | Path | None = None) -> list[Path]:
        """The jailed child may write only its caches (compiled programs, tokenizers, fitness results) and the
        folder it keeps its trained models in, when asked to."""
        paths = {cache_root(), self.settings.resolved_cache_path().parent}
        if params_dir is not None:
            # The folder that holds the kept-model folders, not the job's own: a child's jail is fixed before it
            # knows its job, so a per-job path would make every job's spawn differ and no warm child would ever
            # serve one (controller/params.py stages each evaluation's folder under one root).
            paths.add(Path(params_dir).absolute().parent)
        if self.settings.data.get("cache_dir"):
            paths.add(Path(self.settings.data["cache_dir"]).expanduser())
        for path in paths:
            path.mkdir(parents=True, exist_ok=True)
        return sorted(paths)

    # -- scoring ------------------------------------------------------------------------------
    def _score(self, rungs: dict[str, RungResult], baseline_rungs: dict[str, RungResult]) -> dict[str, Any]:
        n, loss = _points(rungs)
        metrics: dict[str, Any] = {f"loss_{r.rung}": r.final_eval_loss for r in rungs.values()}
        metrics.update({f"n_params_{r.rung}": r.n_params for r in rungs.values()})
        metrics.update({k: v for k, v in fit_summary(n, loss).items() if v is None or isinstance(v, (int, float))})
        metrics["rungs_trained"] = len(n)
        # The one scoring function (scaling.value_design), which the selector's valuation calls too; here with
        # no population, which only a run has (its database values each design against the others).
        target = self.settings.target_n if self.settings.target_n > 0 else None
        depths = self.profile.depths()
        value = value_design(_ladder(rungs), _ladder(baseline_rungs), target_n=target,
                             depths=depths if set(baseline_rungs) <= set(depths) else None,
                             **dataclasses.asdict(self.settings.valuation))
        metrics.update(target_n=value.n_target, forecast_gap=value.utility, gap_low=value.low, gap_high=value.high,
                       p_better=value.p_better, confidence=value.confidence, extrapolation=value.extrapolation,
                       pair_noise_sd=value.noise_sd, forecast=value.loss, forecast_low=value.loss_low,
                       forecast_high=value.loss_high, baseline_forecast=value.baseline_loss)
        if self.settings.fitness == "neg_slope":
            score = metrics.get("fitness")
        elif self.settings.fitness == "neg_loss":
            score = -loss[-1]
        else:
            score = value.utility
        metrics["combined_score"] = float(score) if score is not None and math.isfinite(score) else INVALID_SCORE
        return metrics


def _distance(noop: Mapping[str, Any] | None) -> dict[str, Any]:
    """The probe distance as metrics (history lines and the report read them); none without a seed."""
    if noop is None:
        return {}
    return {"probe_distance": noop.get("distance"), "probe_params_match": bool(noop.get("params_match"))}


def _answered_by_code(rungs: dict[str, RungResult], data_fingerprint: str) -> Evaluation:
    # No job ran: every phase took no time, and a history line says so like any other.
    return Evaluation("ok", {"outcome": "ok", "cache_hit": "code", "data_fingerprint": data_fingerprint},
                      {"notes": "answered from the cache"}, rungs, timing=job_timing({}, 0.0))


def _cache_hit(rungs: dict[str, RungResult]) -> CacheHit | None:
    hits = [r.cache_hit for r in rungs.values()]
    return "functional" if hits and all(hits) else None


def with_seed_losses(evaluation: Evaluation, seeds: Sequence[Evaluation]) -> Evaluation:
    """The baseline ``evaluation`` (its run's seed) with ``seeds`` (the next seeds, in order) folded in: every rung
    gets ``seed_losses`` (seed 0 first), which the valuation pairs seed by seed, and the timing is summed."""
    rungs: dict[str, RungResult] = {}
    for name, r in evaluation.rungs.items():
        missing = [i + 1 for i, e in enumerate(seeds) if name not in e.rungs]
        if missing:
            raise ValueError(f"seed(s) {missing} of the baseline have no rung {name!r}: train every seed on every rung")
        losses = (r.final_eval_loss, *(e.rungs[name].final_eval_loss for e in seeds))
        rungs[name] = dataclasses.replace(r, seed_losses=losses)
    timing = dict(evaluation.timing)
    for e in seeds:
        add_timing(timing, e.timing)
    return dataclasses.replace(evaluation, rungs=rungs, timing=timing)


def _ladder(rungs: dict[str, RungResult]) -> dict[str, tuple[float, list[float]]]:
    """rung -> (N, losses by seed): a baseline's every seed (``with_seed_losses``), else the one trained."""
    return {name: (float(r.n_params), list(r.losses)) for name, r in rungs.items()}


@dataclass(frozen=True)
class BaselineSpeeds:
    """The baseline's training speed by rung, what the step-time check compares a design with: tokens per
    second of wall time and, where the record has it, of the training process's CPU time."""

    wall: dict[str, float]
    cpu: dict[str, float]

    @classmethod
    def of(cls, rungs: Mapping[str, RungResult]) -> "BaselineSpeeds":
        # tokens_per_second x train_seconds is the tokens trained; over the CPU seconds, the CPU-time speed
        cpu = {name: r.tokens_per_second * r.train_seconds / r.cpu_seconds
               for name, r in rungs.items() if r.cpu_seconds > 0}
        return cls({name: r.tokens_per_second for name, r in rungs.items()}, cpu)


def _rate(value: float | None, default: float, name: str) -> float:
    if value is None:
        return default
    if isinstance(value, bool) or not isinstance(value, (int, float)) or not math.isfinite(value) or value <= 0:
        raise ValueError(f"{name} must be a positive number, got {value!r}")
    return float(value)


def _measured(rungs: dict[str, RungResult]) -> dict[str, Any]:
    """A tune trial's metrics: its losses, and the largest rung's as a score (lower loss, higher score)."""
    metrics: dict[str, Any] = {f"loss_{name}": r.final_eval_loss for name, r in rungs.items()}
    largest = max(rungs.values(), key=lambda r: r.n_params)
    score = -largest.final_eval_loss
    metrics["combined_score"] = float(score) if math.isfinite(score) else INVALID_SCORE
    return metrics


def _points(rungs: dict[str, RungResult]) -> tuple[list[float], list[float]]:
    ordered = sorted(rungs.values(), key=lambda r: r.n_params)
    return [r.n_params for r in ordered], [r.final_eval_loss for r in ordered]


def _curve_summary(rungs: dict[str, RungResult]) -> str:
    lines = []
    for name, r in rungs.items():
        points = " ".join(f"{c['step']}:{c['eval_loss']:.3f}" for c in r.curve)
        source = f" (cache: {r.cache_hit})" if r.cache_hit else ""
        lines.append(f"{name} N={r.n_params:,}: eval loss by step {points}{source}")
    return "\n".join(lines)
