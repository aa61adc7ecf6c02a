"""Tune mode's plain grid in the design's job, in process: its uncached rates train as one batched program, with
the trials, the choice, the caching and the charges of the grid trained one rate after another."""

import dataclasses

import pytest

from broken_programs import TEMPLATE
from openevolve_genesys.evaluation import job
from openevolve_genesys.evaluation.checks import CheckSettings
from openevolve_genesys.evaluation.results import TuneResult
from openevolve_genesys.evaluation.settings import EvaluatorSettings
from openevolve_genesys.evaluation.tuning import TuneBudget, TuneSettings
from openevolve_genesys.strict import ConfigError

RATE = 0.01
TINY = {
    "vocab_size": 512,
    "rungs": [{"d_model": 16, "n_layers": 1, "n_heads": 2}],
    # No gradient clipping, so that an absurd rate really diverges (clipped, it may only train badly).
    "train": {"seq_len": 32, "batch_size": 8, "steps": 40, "eval_interval": 20, "chunk_steps": 20,
              "eval_tokens": 1024, "warmup_steps": 5, "learning_rate": RATE, "grad_clip": 1e30},
}
GRID = (0.5, 1.0, 2.0)
DIVERGING = 1e32  # x RATE = 1e30: the loss turns non-finite within the first chunk


def sweep_only(cache, grid=GRID, *, batched=True):
    """A design's job that only sweeps (no rung after it): its report."""
    settings = TuneSettings(enabled=True, grid=grid, steps_fraction=0.5, eval_tokens_fraction=0.5, batched=batched)
    return job.evaluate_program(TEMPLATE, "coefficient_dynamics", "smoke", TINY,
                                {"source": "stdlib", "max_corpus_bytes": 300_000}, [], str(cache),
                                dataclasses.asdict(CheckSettings()),
                                sweep={"settings": dataclasses.asdict(settings), "baseline_learning_rate": None})


def trials(report):
    return {round(t["learning_rate"] / RATE, 6): t for t in report["tune"]["trials"]}


@pytest.fixture(scope="module")
def sequential(tmp_path_factory):
    cache = tmp_path_factory.mktemp("sequential") / "fitness.sqlite"
    return cache, sweep_only(cache, batched=False)


@pytest.fixture(scope="module")
def batched(tmp_path_factory):
    return sweep_only(tmp_path_factory.mktemp("batched") / "fitness.sqlite")


def test_the_batched_grid_chooses_as_the_sequential_grid_from_the_same_losses(sequential, batched):
    _, alone = sequential
    assert batched["tune"]["best_learning_rate"] == alone["tune"]["best_learning_rate"] and batched["tune"]["tuned"]
    ours, theirs = trials(batched), trials(alone)
    assert list(ours) == list(theirs) == list(GRID)
    for m in GRID:
        assert ours[m]["outcome"] == theirs[m]["outcome"] == "ok"
        assert ours[m]["loss"] == pytest.approx(theirs[m]["loss"], rel=1e-5)
        assert ours[m]["steps"] == theirs[m]["steps"] == 20
        assert (ours[m]["batch"], theirs[m]["batch"]) == (3, 1)
        assert ours[m]["cache_hit"] is None and ours[m]["seconds"] > 0
    assert len({t["loss"] for t in ours.values()}) == 3  # each trial trained at its own rate
    # Every trial has its own seconds (an equal share of the batch's), as one by one.
    assert len({t["seconds"] for t in ours.values()}) == 1
    # One 20-step chunk program and one evaluation program serve the whole grid, as they serve the grid one by one.
    assert batched["compiles"] == alone["compiles"] == 2


def test_a_diverging_rate_in_the_batch_fails_alone_and_leaves_the_others_intact(sequential, tmp_path):
    _, alone = sequential
    report = sweep_only(tmp_path / "fitness.sqlite", grid=(0.5, 1.0, DIVERGING, 2.0))
    by_rate = trials(report)
    assert by_rate[DIVERGING]["outcome"] == "invalid" and by_rate[DIVERGING]["check"] == "loss_exploded"
    assert all(t["batch"] == 4 for t in by_rate.values())
    for m in GRID:
        assert by_rate[m]["outcome"] == "ok"
        assert by_rate[m]["loss"] == pytest.approx(trials(alone)[m]["loss"], rel=1e-5)
    # A rate-dependent failure decides nothing: the sweep chooses among the others, and all four are charged.
    assert report["tune"]["tuned"] and report["tune"]["best_learning_rate"] == alone["tune"]["best_learning_rate"]
    assert report["tune"]["trained"] == 4


def test_cached_trials_are_free_and_only_the_uncached_rates_train_together(sequential):
    cache, alone = sequential  # holds the trials at 0.5x, 1x and 2x
    report = sweep_only(cache, grid=(1.0, 3.0, 2.0, 4.0))
    by_rate = trials(report)
    assert [by_rate[m]["cache_hit"] for m in (1.0, 2.0)] == ["functional"] * 2
    assert by_rate[1.0]["loss"] == trials(alone)[1.0]["loss"]  # the stored trial, not a retrained one
    assert [(by_rate[m]["cache_hit"], by_rate[m]["batch"]) for m in (3.0, 4.0)] == [(None, 2)] * 2
    budget = TuneBudget(limit=10)
    assert budget.reserve(4)
    budget.settle(4, TuneResult.from_dict(report["tune"]))
    assert budget.state_dict()["trained"] == 2 and budget.cache_hits == 2
    # Each trial was cached under its own config: a second sweep trains nothing.
    again = sweep_only(cache, grid=(1.0, 3.0, 2.0, 4.0))
    assert again["tune"]["trained"] == 0 and again["compiles"] == 0


def test_a_batch_that_fails_as_a_whole_fails_every_rate_and_stops_the_sweep(tmp_path, monkeypatch):
    def raises(*args, **kwargs):
        raise ValueError("the design's code raised while training")

    monkeypatch.setattr(job, "train_rung_batched", raises)
    report = sweep_only(tmp_path / "fitness.sqlite")
    tune = report["tune"]
    assert [(t["outcome"], t["check"]) for t in tune["trials"]] == [("invalid", "runtime")] * 3
    assert not tune["tuned"] and tune["best_learning_rate"] == RATE and "another rate would not fix" in tune["note"]
    assert tune["trained"] == 3  # every rate started training: every one is charged


def test_a_grid_that_does_not_fit_batched_trains_one_rate_at_a_time_to_the_same_trials(sequential, tmp_path,
                                                                                        monkeypatch):
    _, alone = sequential

    def out_of_memory(*args, **kwargs):
        raise RuntimeError("RESOURCE_EXHAUSTED: Out of memory while trying to allocate the batch")

    monkeypatch.setattr(job, "train_rung_batched", out_of_memory)
    report = sweep_only(tmp_path / "fitness.sqlite")
    assert any("ran out of memory" in note and "one at a time" in note for note in report["notes"])
    for m, trial in trials(report).items():
        assert trial["batch"] == 1 and trial["loss"] == pytest.approx(trials(alone)[m]["loss"], rel=1e-5)


def test_only_the_plain_grid_is_batched():
    with pytest.raises(ConfigError, match=r"tune.batched must be true, false or auto \(batched on an accelerator only\), got 'yes'"):
        EvaluatorSettings.from_dict({"tune": {"batched": "yes"}})
    assert TuneSettings(grid=GRID, batched=True).batches_grid("cpu")
    # auto (the default): batched on an accelerator, one at a time on a CPU, where the batch measured slower
    assert TuneSettings(grid=GRID).batches_grid("gpu") and not TuneSettings(grid=GRID).batches_grid("cpu")
    assert not TuneSettings(grid=GRID, batched=False).batches_grid("gpu")
    assert not TuneSettings(grid=(1.0,), batched=True).batches_grid("gpu")
    # Successive halving's rounds hold 5, 3 and 2 rates: batched, each round would compile its own program.
    assert not TuneSettings(grid=(0.25, 0.5, 1.0, 2.0, 4.0), halving=True, batched=True).batches_grid("gpu")
