"""The selector benchmark's simulated landscape, its compute ledger and the four methods on tiny budgets."""

import math
import sys
from dataclasses import replace
from pathlib import Path

import numpy as np
import pytest

BENCHMARKS = Path(__file__).resolve().parents[2] / "experiments" / "benchmarks"
sys.path.insert(0, str(BENCHMARKS))

from selector_sim import METHODS, Landscape, LandscapeSpec, Trial, run_method  # noqa: E402

SMALL = LandscapeSpec(framework="test_time_regression")  # 3,600 designs: quick to enumerate


def test_the_landscape_is_deterministic_per_seed():
    a, b, c = Landscape(SMALL, 3), Landscape(SMALL, 3), Landscape(SMALL, 4)
    assert np.array_equal(a.target_loss, b.target_loss) and np.array_equal(a.valid, b.valid)
    assert a.best == b.best and a.observe(17, 2) == b.observe(17, 2)
    assert not np.array_equal(a.target_loss, c.target_loss)


def test_the_true_best_is_the_lowest_target_loss_among_valid_designs():
    land = Landscape(SMALL, 0)
    def law(d: int) -> float:  # the stated law, written out per design
        return float(land.e[d] + math.exp(land.ln_a[d]) * land.target_n ** -land.alpha[d])

    brute = min((d for d in range(land.size) if land.valid[d]), key=law)
    assert land.best == brute and land.valid[land.best]
    assert land.regret(land.best) == 0.0 and all(land.regret(d) >= 0 for d in range(0, land.size, 97))
    assert 0.12 < 1.0 - land.valid.mean() < 0.18  # the stated 15% of designs are invalid


def test_the_baseline_follows_the_stated_law():
    land = Landscape(SMALL, 1)
    s = land.spec
    assert land.valid[0]
    assert math.isclose(float(land.true_loss(0, s.rung_n[0])), s.e0 + s.reducible_at_r0)
    assert land.target_n == 10 * s.rung_n[-1]
    assert np.allclose(land.costs, np.asarray(s.rung_n) / s.rung_n[0])


def test_unit_effects_are_additive_so_designs_sharing_alternatives_scale_alike():
    land = Landscape(replace(SMALL, sigma_design=0.0), 2)
    radix = land.radix
    a = 1  # second alternative of the first unit
    b = int(radix[0]) * 2  # third alternative of the second unit
    for field in (land.ln_a, land.alpha, land.e):
        assert math.isclose(field[a + b] - field[a], field[b] - field[0], abs_tol=1e-12)


def test_crossing_effects_cancel_at_the_crossover_size():
    only_cross = replace(SMALL, sigma_level=0.0, sigma_exponent=0.0, sigma_e=0.0, sigma_design=0.0)
    land = Landscape(only_cross, 5)
    designs = np.arange(0, land.size, 7)
    at_cross = land.true_loss(designs, only_cross.n_cross)
    assert np.allclose(at_cross, at_cross[0])
    small, target = land.true_loss(designs, land.rung_n[0]), land.true_loss(designs, land.target_n)
    worse_small = small > small[0] + 1e-9
    assert worse_small.any() and np.all(target[worse_small] < target[0])  # worse on the ladder, better at target


def test_a_mutation_swaps_exactly_one_unit():
    land = Landscape(SMALL, 0)
    rng = np.random.default_rng(0)
    for design in (0, 123, 3599):
        for _ in range(20):
            child = land.mutate(design, rng)
            changed = land.digits(np.array([child]))[0] != land.digits(np.array([design]))[0]
            assert changed.sum() == 1
        fixed = land.mutate(design, rng, unit=2)
        assert np.flatnonzero(land.digits(np.array([fixed]))[0] != land.digits(np.array([design]))[0]).tolist() == [2]


def test_the_design_source_is_the_catalogue_program():
    from openevolve_genesys.mutations import identify

    land = Landscape(SMALL, 0)
    for design in (0, 1234):
        assert identify(land.source(design), SMALL.framework) == land.choices(design)


def test_the_trial_charges_compute_by_rung_size_and_refuses_what_does_not_fit():
    land = Landscape(SMALL, 0)
    trial = Trial(land, budget=10.0, seed=0)
    assert trial.spent == 0 and set(trial.losses[0]) == {0, 1, 2, 3}  # the baseline is free and complete
    status = ""
    while status != "new":
        child, status = trial.attempt(0)
    assert trial.design_spent == trial.attempts and trial.verification_due(0.5)  # nothing verified yet
    trial.verify(child, 1)
    assert math.isclose(trial.verify_spent, 56_640 / 25_472)
    # run.py's rule: verify again only while verification has had at most half of the compute
    assert trial.verification_due(0.5) == (trial.attempts >= 2.22)
    assert trial.next_rung(child) == 2 and trial.next_rung(0) is None
    assert not trial.fits(3)
    with pytest.raises(RuntimeError):
        trial.verify(child, 3)  # 13.2 units
    with pytest.raises(ValueError):
        trial.verify(0, 1)  # the baseline is already verified there


def test_a_child_already_known_is_a_charged_duplicate():
    land = Landscape(SMALL, 0)
    trial = Trial(land, budget=20.0, seed=0)
    statuses = [trial.attempt(0, unit=0)[1] for _ in range(20)]  # unit 0 has 6 alternatives: 5 children
    assert trial.design_spent == 20 and trial.duplicates == statuses.count("duplicate") >= 15
    assert statuses.count("new") + statuses.count("invalid") == 5


@pytest.mark.parametrize("method", METHODS)
def test_each_method_runs_a_tiny_budget_and_reports_a_design_it_knows(method):
    land = Landscape(SMALL, 0)
    result = run_method(method, land, budget=30.0, seed=0)
    assert result.method == method and result.spent <= 30.0 + 1e-9 and result.attempts >= 1
    assert land.valid[result.reported] and 1 <= result.rungs_of_reported <= 4
    assert 0.0 <= result.oracle_regret <= result.regret
    if method == "openevolve":
        assert result.verify_spent == 0.0
    else:
        assert result.verifications >= 1


@pytest.mark.parametrize("method", ["ours", "genesys_code", "random"])
def test_runs_are_reproducible(method):
    land = Landscape(SMALL, 1)
    assert run_method(method, land, 25.0, 1).row() == run_method(method, land, 25.0, 1).row()


def test_an_unknown_method_is_named():
    with pytest.raises(ValueError, match="unknown method"):
        run_method("hill_climb", Landscape(SMALL, 0), 10.0, 0)


def test_the_benchmark_script_writes_its_table_csv_and_plot(tmp_path, capsys):
    import selector_benchmark

    selector_benchmark.main(["--seeds", "2", "--budgets", "8", "12", "--landscapes", "aligned",
                             "--out", str(tmp_path), "--tag", "tiny"])
    out = capsys.readouterr().out
    assert "| 12 | ours |" in out and "| 8 | random |" in out
    assert (tmp_path / "tiny.png").stat().st_size > 10_000
    assert len((tmp_path / "tiny.csv").read_text().splitlines()) == 1 + 2 * 2 * len(METHODS)
