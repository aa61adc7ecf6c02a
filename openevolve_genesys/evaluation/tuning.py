"""Tune mode: a short learning-rate sweep on a cheap target before a design is charged a verification.

A design trained at someone else's learning rate is judged by that rate as much as by its architecture
(the PyTorch prototype trained every evolved mixer at the baseline's rate). So each side of a comparison gets
its own rate: a few trials at multiples of the profile's rate run on the smallest rung, with a fraction
of the steps and of the evaluation slice; the rate with the lowest final eval loss is promoted to the
real verification. By default the sweep runs inside the design's own sandboxed job, before its first rung
(``evaluate_tuned``): the rate is a run-time argument of the compiled training chunk, so the whole sweep
costs one process start-up. There the plain grid's rates that the cache does not answer train side by side as
one batched program (``tune.batched``, training/batched.py), one at a time if the batch does not fit in memory.
Each trial is cached like any evaluation: the same source at the same cheap config is answered from the
fitness cache.

Early stops. Trials one after another stop at the first failure another rate would not fix (a check outside
RATE_DEPENDENT): the later rates never train. A batched grid has no "later": its rates train at once, so a
rate that diverges (or does not learn) is recorded as failed while the others' results stand, exactly as one
by one, and a failure no rate would fix (an exception in the design's code, too slow a step) stops the whole
batch, every rate of it recorded with that check and charged, since each of them started training.

Trials have their own budget (``TuneBudget``), separate from the attempt budget.
"""

from __future__ import annotations

import math
import threading
import time
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any, Callable, Literal, Mapping, Protocol, Sequence

from openevolve_genesys.evaluation.results import Evaluation, TuneResult, TuneTrial
from openevolve_genesys.strict import build
from openevolve_genesys.training.profiles import rung_train

if TYPE_CHECKING:
    from openevolve_genesys.training.profiles import LadderProfile

# Failed checks that another learning rate may fix. Any other failure (a static check, a timeout, a
# crash) would repeat at every rate, so the sweep stops there instead of paying for it again.
RATE_DEPENDENT = frozenset({"loss_exploded", "loss_not_falling"})


@dataclass(frozen=True)
class TuneSettings:
    """The ``genesys.tune`` keys."""

    enabled: bool = False
    grid: tuple[float, ...] = (0.5, 1.0, 2.0)  # multipliers of the profile's learning rate
    steps_fraction: float = 0.3  # of the tune rung's steps (the profile's steps, at fixed steps), rounded to whole chunks
    eval_tokens_fraction: float = 0.25  # of the profile's evaluation slice
    rung: str = ""  # "": the smallest rung
    # Successive halving: every rate at a fraction of the trial length, the better half at twice that, and
    # so on up to the full length. Trials restart from scratch (there is no checkpoint to resume), so it
    # trains fewer steps than the plain grid only from about five rates up.
    halving: bool = False
    budget: int = 0  # most trials that train per run (cache hits are free); 0 = unlimited
    # Sweep and first rung in one sandboxed job (one start-up, one compile per shape for every rate); false:
    # every trial is its own job, as before (kept for the side-by-side benchmark).
    same_job: bool = True
    # In the design's job, the plain grid's uncached rates train side by side as one batched (vmapped) program,
    # one at a time if the batch does not fit in memory; false: one after another, sharing one program with the
    # rung. "auto": batched on an accelerator, one after another on a CPU, where the batch was measured 1.27x
    # slower per attempt (its program compiles beside the rung's and one run already fills the cores).
    # Successive halving and same_job: false always train one trial at a time.
    batched: bool | Literal["auto"] = "auto"

    def __post_init__(self) -> None:
        grid = tuple(self.grid) if isinstance(self.grid, (list, tuple)) else self.grid
        if not isinstance(grid, tuple) or not grid:
            raise ValueError(f"tune.grid must be a non-empty list of multipliers such as [0.5, 1.0, 2.0], "
                             f"got {self.grid!r}")
        for value in grid:
            if isinstance(value, bool) or not isinstance(value, (int, float)) or not math.isfinite(value) or value <= 0:
                raise ValueError(f"tune.grid entries must be positive numbers, got {value!r}")
        if len(set(grid)) != len(grid):
            raise ValueError(f"tune.grid repeats a multiplier ({list(grid)}); each would train the same trial twice")
        object.__setattr__(self, "grid", tuple(float(v) for v in grid))
        for name in ("steps_fraction", "eval_tokens_fraction"):
            value = getattr(self, name)
            if not isinstance(value, (int, float)) or not 0 < value <= 1:
                raise ValueError(f"tune.{name} must be in (0, 1], got {value!r}")
        for name in ("enabled", "halving", "same_job"):
            if not isinstance(getattr(self, name), bool):
                raise ValueError(f"tune.{name} must be true or false, got {getattr(self, name)!r}")
        if not (isinstance(self.batched, bool) or self.batched == "auto"):
            raise ValueError(f"tune.batched must be true, false or auto (batched on an accelerator only), "
                             f"got {self.batched!r}")
        if not isinstance(self.budget, int) or self.budget < 0:
            raise ValueError(f"tune.budget must be a whole number >= 0 (0 = unlimited), got {self.budget!r}")

    @classmethod
    def from_dict(cls, raw: Mapping[str, Any], where: str = "genesys.tune") -> "TuneSettings":
        return build(cls, raw, where)

    def rounds(self) -> list[tuple[float, int]]:
        """(fraction of the trial length, number of trials) per round; one round unless halving."""
        n = len(self.grid)
        if not self.halving or n == 1:
            return [(1.0, n)]
        count = math.ceil(math.log2(n))
        plan = []
        for k in range(count):  # lengths double as the field halves; the last round trains at full length
            plan.append((2.0 ** (k - count + 1), n))
            n = math.ceil(n / 2)
        return plan

    def max_trials(self) -> int:
        return sum(n for _, n in self.rounds())

    def batches_grid(self, backend: str) -> bool:
        """Whether a sweep in the design's job on ``backend`` (JAX's: "cpu", "gpu", "tpu") trains its grid as one
        batch. Only the plain grid: successive halving's rounds each hold another number of rates, so batching
        them would compile a program per round, where trials one at a time share one program with each other and
        with the rung trained after them."""
        wanted = backend != "cpu" if self.batched == "auto" else self.batched
        return wanted and len(self.rounds()) == 1 and len(self.grid) > 1


class TuneBudget:
    """Counts the trials a run trained, and refuses a sweep that might overrun ``limit`` (0 = unlimited).

    Sweeps run in the controller's threads: each reserves its worst case before starting and gives back
    what it did not train (cache hits, an early stop), so two sweeps cannot overrun the budget together.
    """

    def __init__(self, limit: int = 0, trained: int = 0):
        self.limit, self.trained = limit, trained
        self.sweeps = self.cache_hits = self.refused = 0
        self.seconds = 0.0
        self._reserved = 0
        self._lock = threading.Lock()

    def reserve(self, trials: int) -> bool:
        with self._lock:
            if self.limit and self.trained + self._reserved + trials > self.limit:
                self.refused += 1
                return False
            self._reserved += trials
            return True

    def settle(self, reserved: int, result: TuneResult) -> None:
        with self._lock:
            self._reserved -= reserved
            self.trained += result.trained
            self.cache_hits += sum(t.cache_hit is not None for t in result.trials)
            self.sweeps += 1
            self.seconds += result.seconds

    def state_dict(self) -> dict[str, Any]:
        return {"limit": self.limit, "trained": self.trained, "sweeps": self.sweeps, "cache_hits": self.cache_hits,
                "refused": self.refused, "seconds": round(self.seconds, 2)}


class _Evaluates(Protocol):
    def evaluate(self, source: str, rungs: Sequence[str], **options: Any) -> Evaluation: ...


def tune_rung(profile: "LadderProfile", settings: TuneSettings) -> str:
    """The rung trials train at: ``settings.rung``, or the ladder's smallest."""
    names = [r.name for r in profile.rungs]
    if settings.rung:
        if settings.rung not in names:
            raise ValueError(f"genesys.tune.rung is {settings.rung!r}, but profile {profile.name!r} has rungs "
                             f"{names}; name one of them or leave it empty for the smallest")
        return settings.rung
    return min(profile.rungs, key=lambda r: (r.d_model * r.d_model * r.n_layers, r.d_model)).name


def trial_train(profile: "LadderProfile", settings: TuneSettings, fraction: float = 1.0) -> dict[str, Any]:
    """The TrainConfig changes of the cheap target: fewer steps (warmup scaled alike), one evaluation at
    the end, a smaller evaluation slice. ``fraction`` shortens a successive-halving round further. The steps are
    a fraction of the tune rung's own (``profiles.rung_train``); at tokens per parameter the trial then trains
    that fixed count (``tokens_per_param: 0``), which resolving the rung again must not replace."""
    train = rung_train(profile.train, profile.rung(tune_rung(profile, settings)))
    steps = max(1, round(train.steps * settings.steps_fraction * fraction))
    if steps > train.chunk_steps:
        # Whole chunks: the trial then runs the compiled chunk program of the rung it tunes (same shape, same
        # chunk length) instead of compiling one more for a shorter last chunk (smoke: 90 steps -> 100).
        steps = round(steps / train.chunk_steps) * train.chunk_steps
    changes = {"steps": steps, "warmup_steps": min(steps - 1, round(train.warmup_steps * steps / train.steps)),
               "eval_interval": steps, "eval_tokens": max(1, round(train.eval_tokens * settings.eval_tokens_fraction))}
    return {**changes, "tokens_per_param": 0.0} if train.tokens_per_param else changes


TrialRunner = Callable[[float, Mapping[str, Any]], TuneTrial]  # (rate, TrainConfig changes) -> its trial
# (rates, TrainConfig changes shared by them) -> their trials, in order; fewer when it stopped early
RoundRunner = Callable[[Sequence[float], Mapping[str, Any]], list[TuneTrial]]


def fatal(trial: TuneTrial) -> bool:
    """A failed trial that another rate would not fix: the sweep stops at it."""
    return trial.outcome != "ok" and trial.check not in RATE_DEPENDENT


def one_by_one(run_trial: TrialRunner) -> RoundRunner:
    """A round whose trials train one after another, stopping after the first ``fatal`` one."""

    def run_round(rates: Sequence[float], train: Mapping[str, Any]) -> list[TuneTrial]:
        trials: list[TuneTrial] = []
        for lr in rates:
            trials.append(run_trial(lr, train))
            if fatal(trials[-1]):
                break
        return trials

    return run_round


def sweep(profile: "LadderProfile", settings: TuneSettings, run_round: RoundRunner, *,
          baseline_learning_rate: float | None = None) -> TuneResult:
    """The sweep itself: ``settings.grid`` x the profile's rate on the cheap target, each round's trials trained
    by ``run_round`` (``one_by_one``, or all at once as a batch); the rate with the lowest final eval loss among
    the trials that trained wins. The same choice runs in the parent (a sandboxed job per trial) and inside one
    sandboxed job (``job.py``)."""
    start = time.perf_counter()
    base = profile.train.learning_rate
    rung = tune_rung(profile, settings)
    target = {"rung": rung, "train": trial_train(profile, settings)}

    def result(best: float, trials: list[TuneTrial], tuned: bool, note: str) -> TuneResult:
        return TuneResult(best, tuple(trials), time.perf_counter() - start, base, tuned, note, target)

    fallback, fallen_back = _fallback(base, baseline_learning_rate)
    trials: list[TuneTrial] = []
    candidates = [base * m for m in settings.grid]
    best: TuneTrial | None = None
    for fraction, _ in settings.rounds():
        train = trial_train(profile, settings, fraction)
        done = run_round(candidates, train)
        trials.extend(done)
        stop = next((t for t in done if fatal(t)), None)
        if stop is not None:
            return result(fallback, trials, False, f"stopped at the trial at {stop.learning_rate:.3g}: "
                          f"{stop.outcome} ({stop.check}), which another rate would not fix; {fallen_back}")
        scored = [t for t in done if t.outcome == "ok"]
        if not scored:
            break
        scored.sort(key=lambda t: t.loss)
        best = scored[0]  # a later, longer round overrides an earlier one: losses compare within a round
        candidates = [t.learning_rate for t in scored[: math.ceil(len(candidates) / 2)]]
    if best is None:
        kinds = sorted({t.check or t.outcome for t in trials})
        return result(fallback, trials, False, f"every trial failed ({', '.join(kinds)}); {fallen_back}")
    return result(best.learning_rate, trials, True,
                  f"{best.learning_rate:.3g} (x{best.learning_rate / base:.3g} the profile's rate): "
                  f"eval loss {best.loss:.4f} after {best.steps} steps at {rung}{_edge(best, settings, base)}")


def _fallback(base: float, baseline_learning_rate: float | None) -> tuple[float, str]:
    # Without a tuned rate of its own, a design trains at the baseline's (tuned) rate: the comparison then
    # at least treats both sides alike, instead of pitting the profile's rate against a tuned baseline.
    if baseline_learning_rate is None:
        return base, "the profile's rate is used"
    return baseline_learning_rate, "the baseline's rate is used"


def refused(profile: "LadderProfile", settings: TuneSettings, budget: TuneBudget,
            baseline_learning_rate: float | None) -> TuneResult | None:
    """None after reserving the sweep's worst case in ``budget``; else the untuned result it falls back to."""
    reserved = settings.max_trials()
    if budget.reserve(reserved):
        return None
    base = profile.train.learning_rate
    fallback, fallen_back = _fallback(base, baseline_learning_rate)
    return TuneResult(fallback, (), 0.0, base, False, f"tune budget spent ({budget.trained} of {budget.limit} "
                      f"trials trained; a sweep may need {reserved}): {fallen_back}",
                      {"rung": tune_rung(profile, settings), "train": trial_train(profile, settings)})


def tune_learning_rate(evaluator: Any, source: str, settings: TuneSettings, *, engine: _Evaluates | None = None,
                       budget: TuneBudget | None = None, baseline_learning_rate: float | None = None) -> TuneResult:
    """The sweep with every trial its own sandboxed job (``tune.same_job: false``). ``evaluator`` is a
    ScalingLawEvaluator (its profile defines the target); ``engine``, if given, runs the trials (so they
    share the run's slots or Ray); ``baseline_learning_rate`` is passed on for the step-time check."""
    if budget is not None and (no := refused(evaluator.profile, settings, budget, baseline_learning_rate)):
        return no
    runner = engine if engine is not None else evaluator
    trials: list[TuneTrial] = []

    def run_trial(lr: float, train: Mapping[str, Any]) -> TuneTrial:
        trials.append(_run_trial(runner, source, tune_rung(evaluator.profile, settings), lr, train,
                                 baseline_learning_rate))
        return trials[-1]

    outcome: TuneResult | None = None
    try:
        outcome = sweep(evaluator.profile, settings, one_by_one(run_trial),
                        baseline_learning_rate=baseline_learning_rate)
        return outcome
    finally:
        if budget is not None:
            budget.settle(settings.max_trials(), outcome or TuneResult(0.0, tuple(trials), 0.0))


def evaluate_tuned(runner: _Evaluates, profile: "LadderProfile", source: str, rungs: Sequence[str],
                   settings: TuneSettings, *, budget: TuneBudget | None = None,
                   baseline_learning_rate: float | None = None, **options: Any) -> Evaluation:
    """Sweep and train ``rungs`` at the winning rate in one sandboxed job (``tune.same_job``): one start-up;
    the plain grid's uncached rates train as one batched program (``tune.batched``), else one compile per rung
    shape serves every trial. The result's ``tune`` holds the sweep; when the budget refuses it, the design
    trains at the fallback rate with an untuned ``tune``."""
    no = refused(profile, settings, budget, baseline_learning_rate) if budget is not None else None
    if no is not None:
        evaluation = runner.evaluate(source, rungs, learning_rate=no.best_learning_rate,
                                     baseline_learning_rate=baseline_learning_rate, **options)
        evaluation.tune = no
        return evaluation
    evaluation = None
    try:
        evaluation = runner.evaluate(source, rungs, tune=settings, baseline_learning_rate=baseline_learning_rate,
                                     **options)
        return evaluation
    finally:
        if budget is not None:
            swept = evaluation.tune if evaluation is not None and evaluation.tune is not None else None
            budget.settle(settings.max_trials(), swept or TuneResult(0.0, (), 0.0))


def _edge(best: TuneTrial, settings: TuneSettings, base: float) -> str:
    """A winner at the grid's edge says the optimum may lie beyond it; the user should know."""
    multiplier = best.learning_rate / base
    if len(settings.grid) < 2:
        return ""
    if math.isclose(multiplier, max(settings.grid)):
        side = "highest"
    elif math.isclose(multiplier, min(settings.grid)):
        side = "lowest"
    else:
        return ""
    # Widening the grid is not the obvious cure: on the smoke ladder the smallest rung's best rate was 4x
    # the largest rung's, and a 16x rate tuned there was worse at the largest rung than no tuning at all
    # (experiments/benchmarks/README.md, "Tune mode").
    return (f"; the grid's {side} rate won: a wider tune.grid may find a better rate for this rung, but rates "
            "transfer to larger rungs only within a few x (tune at a larger rung with tune.rung)")


def _run_trial(runner: _Evaluates, source: str, rung: str, learning_rate: float, train: Mapping[str, Any],
               baseline_learning_rate: float | None) -> TuneTrial:
    start = time.perf_counter()
    options: dict[str, Any] = {"learning_rate": learning_rate, "trial": dict(train)}
    if baseline_learning_rate is not None:
        options["baseline_learning_rate"] = baseline_learning_rate
    evaluation = runner.evaluate(source, [rung], **options)
    seconds = time.perf_counter() - start
    if evaluation.outcome != "ok":
        return TuneTrial(learning_rate, None, evaluation.outcome, seconds, None, train["steps"],
                         evaluation.metrics.get("check"))
    loss = evaluation.rungs[rung].final_eval_loss
    return TuneTrial(learning_rate, float(loss), "ok", seconds, evaluation.metrics.get("cache_hit"), train["steps"])
