"""Resume and journaling with a fake trainer injected: no real training, every path of the runner."""

import json
import random

import pytest

from openevolve_genesys.validation.cli import validate
from openevolve_genesys.validation.journal import Journal, TrainingResult
from openevolve_genesys.validation.plan import TrainingJob, ValidationPlan

GAIN = {"baseline": 0.0, "steady": -0.05, "lucky": 0.02}  # the true effect of each design on the loss
SIZE = {"r0": 0.0, "r1": -0.3, "r2": -0.5}


class FakeTrainer:
    """Loss = 5 + rung effect + design effect + a seed effect shared by every design (what pairing removes)
    + a little design-and-seed noise. ``fail`` maps (design, seed, rung) to an outcome other than ok."""

    def __init__(self, fail=None, stop_after=None):
        self.calls: list[TrainingJob] = []
        self.groups: list[list[TrainingJob]] = []
        self.fail = fail or {}
        self.stop_after = stop_after

    def factory(self, plan: ValidationPlan):
        self.plan = plan
        return self

    def __call__(self, jobs: list[TrainingJob]) -> list[TrainingResult]:
        self.groups.append(jobs)
        return [self.train(job) for job in jobs]

    def train(self, job: TrainingJob) -> TrainingResult:
        if self.stop_after is not None and len(self.calls) >= self.stop_after:
            raise KeyboardInterrupt  # Ctrl-C mid-validation
        self.calls.append(job)
        outcome = self.fail.get((job.design_id, job.seed, job.rung), "ok")
        noise = random.Random(f"{job.design_id}/{job.seed}/{job.rung}").uniform(-0.005, 0.005)
        loss = 5.0 + SIZE[job.rung] + GAIN[job.design_id] + 0.1 * job.seed + noise
        return TrainingResult(self.plan.setup, job.design_id, job.learning_rate, job.seed, job.rung, outcome,
                              loss=loss if outcome == "ok" else None, n_params=1000 * (1 + len(job.rung)),
                              message="" if outcome == "ok" else f"{outcome} on purpose")


def journal_lines(run_dir):
    path = run_dir / "validation" / "journal.jsonl"
    return [json.loads(line) for line in path.read_text().splitlines()] if path.exists() else []


def test_every_training_runs_once_and_a_rerun_trains_nothing(three_rung_run):
    trainer = FakeTrainer()
    summary, paths = validate(three_rung_run, seeds=3, top=2, trainer_factory=trainer.factory, progress=False)
    assert len(trainer.calls) == 3 * 3 * 3  # seeds x (baseline + 2 designs) x rungs
    assert [j.design_id for j in trainer.calls[:10]] == ["baseline"] * 9 + ["steady"]  # the baseline first
    # One call per design and rung, with all its seeds: the trainer trains them as one batch.
    assert [(g[0].design_id, g[0].rung, [j.seed for j in g]) for g in trainer.groups[:4]] == [
        ("baseline", "r0", [1, 2, 3]), ("baseline", "r1", [1, 2, 3]), ("baseline", "r2", [1, 2, 3]),
        ("steady", "r0", [1, 2, 3])]
    assert len(trainer.groups) == 3 * 3
    assert {j.seed for j in trainer.calls} == {1, 2, 3}  # the run trained at seed 0: fresh seeds only
    rates = {j.design_id: j.learning_rate for j in trainer.calls}
    assert rates == {"baseline": 0.02, "steady": 0.015, "lucky": 0.01}  # tuned, tuned, the profile's
    assert {j.baseline_learning_rate for j in trainer.calls} == {0.02}
    assert len(journal_lines(three_rung_run)) == 27 and summary["complete"]

    again = FakeTrainer()
    second, _ = validate(three_rung_run, seeds=3, top=2, trainer_factory=again.factory, progress=False)
    assert again.calls == [] and second["trainings"]["from_journal"] == 27
    assert second["designs"] == summary["designs"]
    assert paths["json"].is_file() and paths["markdown"].is_file()


def test_the_verdicts_follow_the_true_effects(three_rung_run):
    summary, paths = validate(three_rung_run, seeds=3, top=2, trainer_factory=FakeTrainer().factory,
                              progress=False)
    steady, lucky = summary["designs"]
    assert steady["id"] == "steady" and steady["confident"] and not lucky["confident"]
    assert steady["rungs"]["r2"]["mean"] == pytest.approx(-0.05, abs=0.01)
    assert steady["wins_at_largest_rung"] is True and lucky["wins_at_largest_rung"] is False
    assert lucky["rungs"]["r2"]["verdict"] == "loses"
    text = paths["markdown"].read_text()
    assert "## Design steady" in text and "(confident)" in text and "(not confident)" in text
    assert "Still wins at the largest rung (r2): yes" in text and "Bonferroni" in text


def test_an_interrupted_validation_resumes_where_it_stopped(three_rung_run):
    with pytest.raises(KeyboardInterrupt):
        validate(three_rung_run, seeds=2, top=1, trainer_factory=FakeTrainer(stop_after=5).factory, progress=False)
    # Two groups of two seeds were journaled; the third was in flight (one seed done) and is lost whole.
    assert len(journal_lines(three_rung_run)) == 4
    rest = FakeTrainer()
    summary, _ = validate(three_rung_run, seeds=2, top=1, trainer_factory=rest.factory, progress=False)
    assert len(rest.calls) == 2 * 2 * 3 - 4 and summary["trainings"]["from_journal"] == 4 and summary["complete"]


def test_a_line_torn_by_a_crash_is_trained_again(three_rung_run):
    validate(three_rung_run, seeds=1, top=1, trainer_factory=FakeTrainer().factory, progress=False)
    path = three_rung_run / "validation" / "journal.jsonl"
    lines = path.read_text().splitlines(keepends=True)
    path.write_text("".join(lines[:-1]) + lines[-1][:25])  # the last write cut short
    rerun = FakeTrainer()
    validate(three_rung_run, seeds=1, top=1, trainer_factory=rerun.factory, progress=False)
    assert [(j.design_id, j.rung) for j in rerun.calls] == [("steady", "r2")]


def test_failures_outside_the_design_are_retried_and_its_own_are_kept(three_rung_run):
    fail = {("steady", 1, "r1"): "infra", ("steady", 2, "r2"): "invalid"}
    summary, _ = validate(three_rung_run, seeds=2, top=1, trainer_factory=FakeTrainer(fail).factory, progress=False)
    assert not summary["complete"] and summary["trainings"]["unfinished"] == ["steady seed 1 r1: infra"]
    assert len(summary["trainings"]["failed_by_design"]) == 1
    assert summary["designs"][0]["rungs"]["r2"]["seeds"] == [1]  # seed 2 failed at r2: no pair
    retry = FakeTrainer()
    summary, _ = validate(three_rung_run, seeds=2, top=1, trainer_factory=retry.factory, progress=False)
    assert [(j.design_id, j.seed, j.rung) for j in retry.calls] == [("steady", 1, "r1")] and summary["complete"]


def test_a_failed_baseline_skips_that_seeds_designs(three_rung_run):
    trainer = FakeTrainer({("baseline", 1, "r1"): "invalid"})
    summary, _ = validate(three_rung_run, seeds=2, top=1, trainer_factory=trainer.factory, progress=False)
    assert not any(j.design_id == "steady" and j.seed == 1 for j in trainer.calls)
    assert len([line for line in summary["trainings"]["unfinished"] if "baseline failed at seed 1" in line]) == 3
    assert summary["designs"][0]["rungs"]["r0"]["seeds"] == [2]


def test_another_ladder_does_not_reuse_the_journal(three_rung_run):
    validate(three_rung_run, seeds=1, top=1, trainer_factory=FakeTrainer().factory, progress=False)
    other = FakeTrainer()
    summary, _ = validate(three_rung_run, seeds=1, top=1, profile="seed", trainer_factory=other.factory,
                          progress=False)
    assert len(other.calls) == 6 and summary["profile"] == "seed" and summary["run_profile"] == "smoke"
    assert any("'seed' ladder" in note for note in summary["notes"])


def test_first_seed_and_one_seed_are_honest(three_rung_run):
    trainer = FakeTrainer()
    summary, paths = validate(three_rung_run, seeds=1, top=1, first_seed=0, trainer_factory=trainer.factory,
                              progress=False)
    assert {j.seed for j in trainer.calls} == {0}
    design = summary["designs"][0]
    assert design["wins_at_largest_rung"] is None and design["rungs"]["r2"]["ci_low"] is None
    assert "undecided (no interval" in paths["markdown"].read_text()
    assert not any("left out" in note for note in summary["notes"])  # the run's own seed was asked for


def test_the_journal_skips_lines_of_another_format(tmp_path):
    journal = Journal(tmp_path / "journal.jsonl")
    result = TrainingResult("s", "d", 0.01, 1, "r0", "ok", loss=5.0)
    journal.append(result)
    with open(journal.path, "a") as f:
        f.write(json.dumps({"design": "d", "unknown": 1}) + "\n")
    assert list(journal.done().values()) == [result]
