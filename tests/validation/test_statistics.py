"""Paired statistics on synthetic numbers: intervals, tests, verdicts, and honesty at small K."""

import math

import pytest
from scipy import stats

from openevolve_genesys.validation.statistics import compare_paired

BASE = {1: 5.0, 2: 5.2, 3: 4.9, 4: 5.1, 5: 5.05}


def shifted(diffs):
    return {seed: BASE[seed] + d for seed, d in zip(sorted(BASE), diffs)}


def test_a_consistent_gain_wins_with_the_textbook_interval_and_tests():
    diffs = [-0.10, -0.12, -0.08, -0.11, -0.09]
    c = compare_paired(shifted(diffs), BASE)
    n, mean, sd = 5, sum(diffs) / 5, stats.tstd(diffs)
    half = stats.t.ppf(0.975, n - 1) * sd / math.sqrt(n)
    assert c.n == 5 and c.seeds == (1, 2, 3, 4, 5)
    assert c.mean == pytest.approx(mean) and c.sd == pytest.approx(sd)
    assert (c.ci_low, c.ci_high) == (pytest.approx(mean - half), pytest.approx(mean + half))
    design = [BASE[s] + d for s, d in zip(sorted(BASE), diffs)]
    assert c.t_p_value == pytest.approx(stats.ttest_rel(design, [BASE[s] for s in sorted(BASE)]).pvalue)
    assert c.wilcoxon_p_value == pytest.approx(2 / 2 ** 5)  # every seed lower: the exact two-sided minimum
    assert c.lower_on == 5 and c.verdict == "wins"
    assert any("no rank test can reach" in note for note in c.notes)  # 0.0625 > 0.05 at five seeds


def test_mixed_signs_are_inconclusive_and_a_consistent_loss_loses():
    mixed = compare_paired(shifted([-0.05, 0.04, -0.02, 0.03, 0.01]), BASE)
    assert mixed.ci_low < 0 < mixed.ci_high and mixed.verdict == "inconclusive" and mixed.lower_on == 2
    worse = compare_paired(shifted([0.10, 0.12, 0.09, 0.11, 0.10]), BASE)
    assert worse.ci_low > 0 and worse.verdict == "loses" and worse.t_p_value < 0.05


def test_a_wider_level_gives_a_wider_interval():
    design = shifted([-0.10, -0.12, -0.08, -0.11, -0.09])
    narrow, wide = compare_paired(design, BASE, level=0.8), compare_paired(design, BASE, level=0.99)
    assert wide.ci_low < narrow.ci_low < narrow.ci_high < wide.ci_high


def test_one_seed_reports_the_difference_without_an_interval_or_a_test():
    c = compare_paired({7: 4.8}, {7: 5.0})
    assert c.n == 1 and c.mean == pytest.approx(-0.2)
    assert c.ci_low is None and c.ci_high is None and c.t_p_value is None and c.wilcoxon_p_value is None
    assert c.verdict == "no interval" and any("--seeds 3" in note for note in c.notes)


def test_two_seeds_give_a_one_degree_of_freedom_interval_and_say_so():
    c = compare_paired({1: 4.8, 2: 4.9}, {1: 5.0, 2: 5.0})
    assert c.ci_low is not None and c.ci_high - c.ci_low > 1.0  # t(0.975, 1) = 12.7: very wide
    assert any("one degree of freedom" in note for note in c.notes)


def test_seeds_without_a_pair_and_failed_losses_drop_out_with_a_note():
    c = compare_paired({1: 4.9, 2: 4.8, 3: float("nan"), 4: 4.7}, {1: 5.0, 2: 5.0, 3: 5.0, 5: 5.0})
    assert c.seeds == (1, 2) and c.n == 2
    assert any("[3, 4, 5]" in note for note in c.notes)


def test_identical_differences_have_no_interval_rather_than_a_zero_width_one():
    c = compare_paired({1: 4.9, 2: 5.1, 3: 5.0}, {1: 5.0, 2: 5.2, 3: 5.1})
    assert c.mean == pytest.approx(-0.1) and c.ci_low is None and c.verdict == "no interval"
    assert any("same difference" in note for note in c.notes)


def test_no_pair_at_all_is_no_data_and_a_bad_level_is_refused():
    assert compare_paired({}, {1: 5.0}).verdict == "no data"
    with pytest.raises(ValueError, match="between 0 and 1"):
        compare_paired({1: 5.0}, {1: 5.0}, level=95)
