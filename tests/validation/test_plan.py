"""Which designs are validated, on which ladder, at which seeds and rates; and what a bad folder says."""

import dataclasses
import json

import pytest

from openevolve_genesys.evaluation.cache import config_hash
from openevolve_genesys.evaluation.evaluator import ScalingLawEvaluator
from openevolve_genesys.report.load import RunFolderError
from openevolve_genesys.training.profiles import get_profile
from openevolve_genesys.validation.candidates import Candidate, load_candidates
from openevolve_genesys.validation.plan import make_plan, recorded_profile



def baseline_event(runs):
    return {"type": "baseline", "id": "baseline", "code": runs.template,
            "rungs": runs.rung_results({"r0": 6.0, "r1": 5.7}), "metrics": {}, "learning_rate": None, "tune": None}


def test_confident_designs_rank_first_and_failed_ones_never_appear(three_rung_run):
    run = load_candidates(three_rung_run, top=3)
    assert [d.id for d in run.designs] == ["steady", "lucky"]  # lucky has the higher utility, but one rung
    assert run.designs[1].utility > run.designs[0].utility
    assert [d.confident for d in run.designs] == [True, False] and run.valid_designs == 2
    assert run.designs[0].rungs_verified == ("r0", "r1", "r2") and run.designs[0].learning_rate == 0.015
    assert run.baseline.id == "baseline" and run.baseline.learning_rate == 0.02
    assert [d.id for d in load_candidates(three_rung_run, top=1).designs] == ["steady"]


def test_a_rate_is_called_tuned_only_when_the_run_swept_it(three_rung_run):
    run = load_candidates(three_rung_run, top=3)
    assert run.baseline.learning_rate_source == "tuned in the run"
    assert [d.learning_rate_source for d in run.designs] == ["tuned in the run", "profile"]
    # Tune mode off: the run records the rate it trained at, which was not swept.
    given = Candidate(id="baseline", code="", learning_rate=0.003)
    assert given.learning_rate_source == "as trained in the run, not tuned"


def test_the_plan_trains_fresh_seeds_on_every_rung_smallest_first(three_rung_run):
    plan = make_plan(three_rung_run, seeds=3, top=2)
    assert plan.seeds == (1, 2, 3) and plan.run_seed == 0 and plan.profile.name == plan.run_profile == "smoke"
    assert plan.rungs == ("r0", "r1", "r2") and plan.largest_rung == "r2"
    assert len(list(plan.jobs())) == 3 * 3 * 3 and not plan.template_changed
    assert plan.settings.tune.enabled is False  # validation trains at recorded rates, it never sweeps


def test_each_seed_is_its_own_training_config_and_cache_key(three_rung_run):
    plan = make_plan(three_rung_run, seeds=2, top=1)
    configs = {seed: ScalingLawEvaluator(plan.seed_settings(seed)).train_config(0.015) for seed in plan.seeds}
    assert {seed: c.seed for seed, c in configs.items()} == {1: 1, 2: 2}
    assert {c.learning_rate for c in configs.values()} == {0.015}
    assert len({config_hash(dataclasses.asdict(c)) for c in configs.values()}) == 2
    assert plan.seed_settings(1).profile_overrides["train"]["steps"] == 20  # the run's overrides stay


def test_the_ladder_the_run_trained_is_recognised_from_its_baseline():
    smoke = get_profile("smoke")
    recorded = {r.name: {"d_model": r.d_model, "n_layers": r.n_layers, "n_heads": r.n_heads,
                         "steps": smoke.train.steps} for r in smoke.rungs}
    assert recorded_profile(recorded, {}, "seed") == "smoke"  # a CPU run forced onto smoke
    assert recorded_profile(recorded, {}, "smoke") == "smoke"
    assert recorded_profile({"big": {"d_model": 4096}}, {}, "seed") == "seed"  # nothing matches: the config


def test_a_run_without_a_verified_design_names_the_fix(tmp_path, runs):
    failed = runs.design_event("bad", 1, runs.template, {}, outcome="invalid", attempt_class="invalid")
    run = runs.write_run(tmp_path / "run", [baseline_event(runs), failed])
    with pytest.raises(RunFolderError, match="no design with a verified rung.*--resume"):
        load_candidates(run)


def test_an_incomplete_event_and_a_missing_config_are_named(tmp_path, runs):
    event = runs.design_event("half", 1, runs.half_scale, {"r0": 5.9})
    del event["requeued"]
    run = runs.write_run(tmp_path / "run", [baseline_event(runs), event])
    with pytest.raises(RunFolderError, match="history event 2 .*half.* is incomplete"):
        load_candidates(run)
    (run / "config.yaml").unlink()
    with pytest.raises(RunFolderError, match="config.yaml is missing.*--config"):
        load_candidates(run)


def test_an_unknown_profile_is_refused_by_name(three_rung_run):
    with pytest.raises(ValueError, match="--profile smok.*did you mean 'smoke'"):
        make_plan(three_rung_run, profile="smok")


def test_the_history_decides_even_when_a_checkpoint_disagrees(three_rung_run):
    """A stale checkpoint (a crash after the last save) must not hide later verifications."""
    checkpoint = three_rung_run / "checkpoints" / "checkpoint_1"
    checkpoint.mkdir(parents=True)
    (checkpoint / "genesys_records.json").write_text(json.dumps({"baseline_id": "baseline", "records": []}))
    assert [d.id for d in load_candidates(three_rung_run).designs] == ["steady", "lucky"]
