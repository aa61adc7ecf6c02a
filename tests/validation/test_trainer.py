"""The real trainer: the seeds of one design and rung train in one sandboxed job, to the results of one job per
seed, filed under the keys one job per seed uses; a failed batch is retried seed by seed."""

import json

import pytest

from openevolve_genesys.evaluation import evaluator as evaluator_module
from openevolve_genesys.evaluation.evaluator import Evaluation, ScalingLawEvaluator
from openevolve_genesys.training.rung_result import RungResult
from openevolve_genesys.validation.cli import validate
from openevolve_genesys.validation.plan import make_plan
from openevolve_genesys.validation.trainer import EvaluatorTrainer

ONE_RUNG = [{"name": "r0", "d_model": 16, "n_layers": 1, "n_heads": 2}]


def events(runs):
    return [{"type": "baseline", "id": "baseline", "code": runs.template, "metrics": {}, "learning_rate": 0.01,
             "tune": None, "rungs": runs.rung_results({"r0": 6.0})},
            runs.design_event("half", 1, runs.half_scale, {"r0": 5.9})]


def count_jobs(monkeypatch):
    calls = []
    original = evaluator_module.run_in_sandbox
    monkeypatch.setattr(evaluator_module, "run_in_sandbox",
                        lambda *a, **k: calls.append(a[1]["seeds"]) or original(*a, **k))
    return calls


def one_by_one(plan):
    """The trainer asked for one seed at a time: one job per (design, seed, rung), as validation used to run."""
    trainer = EvaluatorTrainer(plan)
    return lambda jobs: [result for job in jobs for result in trainer([job])]


@pytest.mark.slow
def test_the_seeds_of_a_rung_train_in_one_job_to_the_results_of_one_job_each(runs, tmp_path, monkeypatch):
    batched_run = runs.write_run(tmp_path / "batched" / "run", events(runs), rungs=ONE_RUNG)
    alone_run = runs.write_run(tmp_path / "alone" / "run", events(runs), rungs=ONE_RUNG)  # its own fitness cache
    calls = count_jobs(monkeypatch)
    batched, _ = validate(batched_run, seeds=2, top=1, progress=False)
    assert calls == [[1, 2], [1, 2]]  # the baseline's rung, then the design's: each one job for both seeds
    del calls[:]
    alone, _ = validate(alone_run, seeds=2, top=1, trainer_factory=one_by_one, progress=False)
    assert calls == [[1], [2], [1], [2]]
    assert batched["complete"] and alone["complete"]
    ours, theirs = batched["designs"][0]["rungs"]["r0"], alone["designs"][0]["rungs"]["r0"]
    assert ours["seeds"] == theirs["seeds"] == [1, 2]
    assert ours["differences"] == pytest.approx(theirs["differences"], rel=1e-4, abs=1e-6)
    lines = {}
    for name, run in (("batched", batched_run), ("alone", alone_run)):
        for line in (run / "validation" / "journal.jsonl").read_text().splitlines():
            result = json.loads(line)
            lines.setdefault((result["design_id"], result["seed"]), {})[name] = result
    assert len(lines) == 4
    for pair in lines.values():
        assert pair["batched"]["outcome"] == pair["alone"]["outcome"] == "ok"
        assert pair["batched"]["loss"] == pytest.approx(pair["alone"]["loss"], rel=1e-5)
        assert pair["batched"]["n_params"] == pair["alone"]["n_params"]
    assert len({r["batched"]["loss"] for r in lines.values()}) == 4  # every seed trained its own run

    # Each seed's result is filed under the key a job of its own at that seed looks up: the run's evaluator at
    # the seed answers the design, and the baseline it compares with, from the cache, training nothing.
    del calls[:]
    plan = make_plan(batched_run, seeds=2, top=1)
    design = plan.run.designs[0]
    for seed in plan.seeds:
        evaluation = ScalingLawEvaluator(plan.seed_settings(seed)).evaluate(
            design.code, ["r0"], learning_rate=plan.learning_rate(design),
            baseline_learning_rate=plan.learning_rate(plan.run.baseline))
        assert evaluation.metrics["cache_hit"] == "code"
        assert evaluation.rungs["r0"].final_eval_loss == lines[(design.id, seed)]["batched"]["loss"]
    assert calls == []


class ScriptedEvaluator:
    """Answers a batch of seeds with ``batch`` and a single seed with ``alone[seed]``; records the seeds asked."""

    def __init__(self, batch, alone):
        self.batch, self.alone, self.asked = batch, alone, []

    def evaluate(self, code, rungs, **options):
        seeds = options["seeds"]
        self.asked.append(list(seeds))
        if len(seeds) > 1:
            return self.batch
        return self.alone[seeds[0]]


def ok(loss):
    rung = RungResult.from_dict({"rung": "r0", "final_eval_loss": loss, "n_params": 3000, "train_seconds": 1.0})
    return Evaluation("ok", {"outcome": "ok"}, {}, {"r0": rung})


def test_a_failed_batch_is_retried_seed_by_seed_so_each_seed_gets_its_own_outcome(runs, tmp_path):
    plan = make_plan(runs.write_run(tmp_path / "run", events(runs), rungs=ONE_RUNG), seeds=3, top=1)
    jobs = [job for job in plan.jobs() if job.design_id == "half"]
    diverged = Evaluation("invalid", {"outcome": "invalid", "check": "loss_exploded"}, {"message": "diverged"})
    scripted = ScriptedEvaluator(diverged, {1: ok(5.5), 2: diverged, 3: ok(5.4)})
    trainer = EvaluatorTrainer(plan)
    trainer._evaluators.update({seed: scripted for seed in plan.seeds})  # no real evaluator is built
    results = trainer(jobs)
    assert scripted.asked == [[1, 2, 3], [1], [2], [3]] and trainer.evaluations == 4
    assert [(r.seed, r.outcome, r.loss) for r in results] == [(1, "ok", 5.5), (2, "invalid", None), (3, "ok", 5.4)]

    batch = ok(0.0)
    batch.seeds = [ok(5.5), ok(5.6), ok(5.4)]
    scripted = ScriptedEvaluator(batch, {})
    trainer = EvaluatorTrainer(plan)
    trainer._evaluators.update({seed: scripted for seed in plan.seeds})
    assert [r.loss for r in trainer(jobs)] == [5.5, 5.6, 5.4] and scripted.asked == [[1, 2, 3]]
    with pytest.raises(ValueError, match="one design at one rung"):
        trainer([jobs[0], *(job for job in plan.jobs() if job.design_id == "baseline")])
