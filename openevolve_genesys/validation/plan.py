"""What a validation trains: which designs, on which ladder, at which seeds and learning rates.

Seeds. ``TrainConfig.seed`` drives three things in ``training/loop.py``: the model's initialisation
(``nnx.Rngs(seed)``), the dropout masks (``jax.random.key(seed)`` folded with the step) and the order of
the training batches (``np.random.default_rng(seed)``). The held-out evaluation windows are fixed and the
same for every seed, so every loss is measured on the same text. By default the validation seeds are
the K seeds after the one the run trained with: the run *selected* its winners on that seed, so its
losses there are biased in the winners' favour (the winner's curse); fresh seeds are not.

Profile. By default the ladder the run actually trained (recognised from the baseline's recorded rungs,
which also catches a run started with ``--profile smoke`` on a CPU); ``--profile`` retrains on another
ladder, e.g. the smoke run's winners on the seed ladder.
"""

from __future__ import annotations

import dataclasses
import logging
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Iterable, Iterator, Mapping

from openevolve_genesys.evaluation.cache import config_hash
from openevolve_genesys.evaluation.program import framework_path
from openevolve_genesys.evaluation.settings import EvaluatorSettings
from openevolve_genesys.evaluation.tuning import TuneSettings
from openevolve_genesys.training.profiles import PROFILES, LadderProfile, get_profile
from openevolve_genesys.validation.candidates import Candidate, RunCandidates, load_candidates

log = logging.getLogger(__name__)

SEED_CONTROLS = ("model initialisation, dropout masks and training-batch order (training/loop.py); the held-out "
                 "evaluation windows are the same for every seed")


@dataclass(frozen=True)
class TrainingJob:
    """One rung of one design at one seed, with the baseline rate its evaluation compares against."""

    design_id: str
    code: str
    learning_rate: float
    baseline_learning_rate: float
    seed: int
    rung: str


@dataclass(frozen=True)
class ValidationPlan:
    run_dir: Path
    run: RunCandidates
    profile: LadderProfile  # the ladder every seed trains (its own train.seed is replaced per seed)
    run_profile: str  # the ladder the run trained
    settings: EvaluatorSettings  # the run's evaluator settings on ``profile``, tune mode off
    seeds: tuple[int, ...]
    run_seed: int
    rungs: tuple[str, ...]  # smallest first
    setup: str  # fingerprint of framework, ladder and data: the journal's guard against mixing setups
    level: float = 0.95
    # The framework file no longer holds the run's baseline code: the run's code is validated, but a design's
    # evaluation also trains the current template on every rung at the first seed of its batch (the speeds its
    # step-time check compares with).
    template_changed: bool = False

    @property
    def candidates(self) -> list[Candidate]:
        return [self.run.baseline, *self.run.designs]

    @property
    def largest_rung(self) -> str:
        return self.rungs[-1]

    def learning_rate(self, candidate: Candidate) -> float:
        """The candidate's own (tuned) rate; the profile's when the run did not tune it."""
        return candidate.learning_rate if candidate.learning_rate is not None else self.profile.train.learning_rate

    def seed_settings(self, seed: int) -> EvaluatorSettings:
        """The evaluator settings that train at ``seed``: the run's overrides with the seed added."""
        overrides = dict(self.settings.profile_overrides)
        overrides["train"] = {**overrides.get("train", {}), "seed": seed}
        return dataclasses.replace(self.settings, profile_overrides=overrides)

    def jobs(self) -> Iterator[TrainingJob]:
        """Design by design, the baseline first (every rung at every seed): a design's evaluation then finds the
        baseline it is compared with in the fitness cache instead of training it again. Within a design, rung by
        rung, the seeds of a rung one after another: the runner trains them as one batch (``groups``)."""
        base_rate = self.learning_rate(self.run.baseline)
        for candidate in self.candidates:
            for rung in self.rungs:
                for seed in self.seeds:
                    yield TrainingJob(candidate.id, candidate.code, self.learning_rate(candidate), base_rate,
                                      seed, rung)


def groups(jobs: Iterable[TrainingJob]) -> Iterator[list[TrainingJob]]:
    """``jobs`` cut into runs of consecutive jobs of one design, rung and rate: the seeds that train together."""
    group: list[TrainingJob] = []
    for job in jobs:
        if group and (job.design_id, job.rung, job.learning_rate) != (group[0].design_id, group[0].rung,
                                                                      group[0].learning_rate):
            yield group
            group = []
        group.append(job)
    if group:
        yield group


def make_plan(run_dir: str | Path, *, seeds: int = 3, top: int = 3, profile: str | None = None,
              config: str | Path | None = None, first_seed: int | None = None, level: float = 0.95) -> ValidationPlan:
    """Read the run folder and decide every training of the validation (nothing trains here)."""
    if seeds < 1:
        raise ValueError(f"--seeds must be at least 1, got {seeds}")
    if not 0.0 < level < 1.0:
        raise ValueError(f"--level must lie strictly between 0 and 1, got {level}")
    run = load_candidates(run_dir, top=top, config=config)
    settings = run.config.genesys.evaluator
    overrides = settings.profile_overrides
    baseline_event = next(e for e in run.events if e["type"] == "baseline")
    run_profile = recorded_profile(baseline_event.get("rungs") or {}, overrides, settings.profile)
    name = profile or run_profile
    try:
        ladder = get_profile(name, overrides)
    except (KeyError, ValueError) as err:  # a KeyError's str() is its repr: quote the message itself
        raise ValueError(f"--profile {name}: {err.args[0] if err.args else err}") from None
    if name != run_profile:
        log.info("validating on the %r ladder; the run trained on %r (tuned learning rates were found there)",
                 name, run_profile)
    run_seed = get_profile(run_profile, overrides).train.seed
    start = run_seed + 1 if first_seed is None else first_seed
    chosen = tuple(range(start, start + seeds))
    rungs = tuple(r.name for r in sorted(ladder.rungs, key=lambda r: (r.d_model * r.d_model * r.n_layers, r.d_model)))
    # Validation trains at recorded rates and never sweeps: tune settings of the run (a tune rung the
    # other ladder may lack) must not get in the way.
    validation_settings = dataclasses.replace(settings, profile=name, tune=TuneSettings())
    template_changed = framework_path(settings.framework).read_text() != run.baseline.code
    return ValidationPlan(Path(run_dir), run, ladder, run_profile, validation_settings, chosen, run_seed, rungs,
                          setup_fingerprint(validation_settings), level, template_changed)


def recorded_profile(baseline_rungs: Mapping[str, Mapping[str, Any]], overrides: Mapping[str, Any],
                     configured: str) -> str:
    """The ladder whose rungs (names and shapes) match the baseline's recorded ones; the config's
    profile when it matches too or when the record is not specific enough to tell."""
    matching = [name for name in PROFILES if _matches(get_profile(name, overrides), baseline_rungs)]
    if not matching or configured in matching:
        return configured
    return matching[0]


def _matches(ladder: LadderProfile, recorded: Mapping[str, Mapping[str, Any]]) -> bool:
    shapes = {r.name: r for r in ladder.rungs}
    for name, result in recorded.items():
        rung = shapes.get(name)
        if rung is None:
            return False
        for field in ("d_model", "n_layers", "n_heads"):
            if field in result and result[field] != getattr(rung, field):
                return False
        if "steps" in result and result["steps"] != ladder.rung_train(name).steps:
            return False
    return bool(recorded)


def setup_fingerprint(settings: EvaluatorSettings) -> str:
    """Everything a loss depends on besides the design, its rate, the seed and the rung."""
    ladder = get_profile(settings.profile, settings.profile_overrides)
    train = {k: v for k, v in ladder.train.identity().items() if k not in ("seed", "learning_rate")}
    return config_hash({"framework": settings.framework, "profile": ladder.name, "vocab": ladder.vocab_size,
                        "rungs": [dataclasses.asdict(r) for r in ladder.rungs], "train": train,
                        "data": dict(settings.data)})[:16]
