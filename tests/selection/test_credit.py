"""Operator credit: gains from records, the sliding-window UCB, the change detector, the explore share, the
selector flag (off = the choices without credit) and its settings."""

import math
import random
from collections import Counter

import pytest

from openevolve_genesys.selection.credit import (CreditSettings, advise, arm_stats, child_credits, credit_table,
                                                 explore_probability, page_hinkley)
from openevolve_genesys.selection.records import DesignRecord, RungRecord
from openevolve_genesys.selection.selector import GenesysSelector, SelectorSettings
from openevolve_genesys.strict import ConfigError
from hand_records import RUNGS, record
from test_selector import UNITS, population

VERIFIED = RungRecord("r0", 25_000, 6.0)  # utilities are set by hand: the rung only makes a record valid
REWARDING = {"Kernel": 0.05, "Decay": -0.02, "Readout": -0.01}  # mean utility change a mutation of the unit makes


def child(design_id, parent, iteration, utility, unit="Kernel", *, outcome="ok", quadrant="design_exploit",
          code=None, model="m1") -> DesignRecord:
    r = DesignRecord(id=design_id, parent_id=parent, code_hash=code or f"h-{design_id}", iteration=iteration,
                     operator={"unit": unit, "operator": f"{unit}:alt", "model": model, "quadrant": quadrant},
                     outcome=outcome, rungs={"r0": VERIFIED} if outcome == "ok" else {})
    r.utility = utility if outcome == "ok" else None
    return r


def seed_record(utility=0.0) -> DesignRecord:
    r = DesignRecord(id="baseline", parent_id=None, code_hash="h-base", iteration=0, operator={"operator": "baseline"},
                     outcome="ok", rungs={"r0": VERIFIED})
    r.utility = utility
    return r


def as_records(*records):
    return {r.id: r for r in records}


def test_gain_is_over_the_seed_and_reward_is_its_positive_part():
    base = seed_record(0.1)
    records = as_records(base, child("a", "baseline", 1, 0.3), child("b", "a", 2, 0.25),
                         child("bad", "a", 3, None, outcome="invalid"), child("wait", "a", 4, None))
    credits = {c.id: c for c in child_credits(records)}
    assert set(credits) == {"a", "b", "bad"}  # "wait" is valid but not valued yet: credited later
    assert math.isclose(credits["a"].gain, 0.2) and math.isclose(credits["a"].reward, 0.2)
    assert math.isclose(credits["b"].gain, -0.05) and credits["b"].reward == 0.0
    assert credits["bad"].gain is None and credits["bad"].reward == 0.0
    assert child_credits(records, invalid_reward=-0.1)[-1].reward == -0.1
    # The frontier reward compares with every earlier design: "b" beat nothing, "a" beat the baseline.
    assert math.isclose(credits["a"].frontier, 0.2) and credits["b"].frontier == 0.0


def test_a_child_repeating_known_code_earns_nothing():
    records = as_records(seed_record(), child("a", "baseline", 1, 0.3, code="same"),
                         child("again", "baseline", 2, 0.3, code="same"))
    again = child_credits(records)[-1]
    assert again.repeat and again.reward == 0.0 and again.gain is None
    row = next(r for r in credit_table(records) if r["dimension"] == "unit")
    assert row["children"] == 2 and row["repeats"] == 1 and row["invalid"] == 0


def test_page_hinkley_restarts_after_a_shift_and_not_on_a_steady_stream():
    steady = [0.2, 0.3, 0.25, 0.2, 0.3] * 10
    assert page_hinkley(steady, tolerance=0.05, threshold=3.0) == (0, 0)
    start, alarms = page_hinkley([1.0] * 20 + [0.0] * 40, tolerance=0.05, threshold=3.0)
    assert alarms >= 1 and 20 < start < 40  # detected after the drop, within a few children
    start, alarms = page_hinkley([0.0] * 20 + [1.0] * 20, tolerance=0.05, threshold=3.0)
    assert alarms >= 1 and 20 < start < 30


def test_a_change_resets_the_arms_window():
    # Kernel paid for 20 children, then nothing for 30: its recent mean reflects only the new regime.
    records = [seed_record()]
    for i in range(50):
        records.append(child(f"k{i}", "baseline", i + 1, 0.1 if i < 20 else -0.1))
    stats = arm_stats(child_credits(as_records(*records)), "unit", CreditSettings(window=60), arms=UNITS)
    kernel = stats["Kernel"]
    assert kernel.resets >= 1 and kernel.window_children < 30 and kernel.window_reward == 0.0
    assert kernel.children == 50 and kernel.improved == 20
    assert math.isinf(stats["Decay"].score)  # never tried: first in line


def simulate(units, rounds, rng, settings=CreditSettings()):
    """A bandit over REWARDING's units: each mutation changes utility by the unit's mean +- noise."""
    records = as_records(seed_record())
    picks = []
    for i in range(1, rounds + 1):
        unit = advise(records, units, settings, 0.3, rng).unit
        gain = REWARDING[unit] + rng.gauss(0, 0.02)
        records[f"c{i}"] = child(f"c{i}", "baseline", i, gain, unit)
        picks.append(unit)
    return picks


def test_the_bandit_concentrates_on_the_rewarding_unit():
    picks = simulate(UNITS, 90, random.Random(0))
    assert Counter(picks[-40:])["Kernel"] >= 30
    assert set(picks[:3]) == set(UNITS)  # every unit is tried once before any is preferred


def test_pending_children_spread_parallel_picks():
    # Kernel is a little better; three Kernel children still running shrink its bonus below Decay's.
    records = as_records(seed_record(), child("k", "baseline", 1, 0.05, "Kernel"),
                         child("d", "baseline", 2, 0.04, "Decay"), child("r", "baseline", 3, 0.0, "Readout"))
    settings = CreditSettings()
    assert advise(records, UNITS, settings, 0.3, random.Random(0)).unit == "Kernel"
    busy = advise(records, UNITS, settings, 0.3, random.Random(0), pending_units=["Kernel"] * 3)
    assert busy.unit == "Decay"


def test_the_explore_share_follows_which_side_moves_the_frontier():
    settings = CreditSettings(window=100)
    base = seed_record()
    exploit_wins, explore_wins = [base], [base]
    best = 0.0
    for i in range(1, 41):  # one side's children keep moving the frontier, the other side's never do
        best += 0.01
        exploit_wins += [child(f"w{i}", "baseline", 2 * i, best, quadrant="design_exploit"),
                         child(f"l{i}", "baseline", 2 * i + 1, 0.0, quadrant="design_explore")]
        explore_wins += [child(f"w{i}", "baseline", 2 * i, best, quadrant="design_explore"),
                         child(f"l{i}", "baseline", 2 * i + 1, 0.0, quadrant="design_exploit")]
    low = explore_probability(child_credits(as_records(*exploit_wins)), 0.3, settings)
    high = explore_probability(child_credits(as_records(*explore_wins)), 0.3, settings)
    assert 0.05 <= low < 0.1 and 0.8 < high <= 0.95
    assert explore_probability([], 0.3, settings) == 0.3  # no evidence: the schedule
    assert explore_probability(child_credits(as_records(*explore_wins)), 0.0, settings) == 0.0  # pinned by the user


def test_credit_off_leaves_every_choice_unchanged():
    records = population(record("good", 0.97, 4), record("weak", 1.03, 4), record("new", 0.99, 1))
    records["child"] = child("child", "good", 5, 0.01, "Decay")  # an operator-tagged child changes nothing
    plain = GenesysSelector(SelectorSettings(), RUNGS, UNITS, ["lib-a"], random.Random(7))
    flagged = GenesysSelector(SelectorSettings(credit=False, credit_window=5, credit_exploration=2.0),
                              RUNGS, UNITS, ["lib-a"], random.Random(7))
    for step in range(30):
        a = plain.select_design(records, "baseline", step / 30)
        b = flagged.select_design(records, "baseline", step / 30, pending_units=["Kernel"])
        assert a == b and b.credit is None


def test_credit_on_picks_the_unit_by_the_bandit_and_says_why():
    records = population(record("good", 0.97, 4), record("weak", 1.03, 4))
    for i, unit in enumerate(UNITS * 4):
        records[f"c{i}"] = child(f"c{i}", "baseline", i + 1, 0.05 if unit == "Decay" else -0.05, unit, model="m")
    s = GenesysSelector(SelectorSettings(credit=True), RUNGS, UNITS, rng=random.Random(0))
    choices = [s.select_design(records, "baseline", 0.5) for _ in range(10)]
    assert {c.unit for c in choices} == {"Decay"}
    info = choices[0].credit
    assert info["unit"] == "Decay" and info["unit_score"] > 0
    assert 0 <= info["explore_probability"] <= 1 and info["scheduled_probability"] == s.explore_probability(0.5)


def test_the_table_has_every_dimension_and_unmutated_units():
    records = as_records(seed_record(), child("a", "baseline", 1, 0.2, "Kernel", model="big"),
                         child("b", "a", 2, None, "Decay", outcome="invalid", model="small", quadrant=None))
    rows = credit_table(records, units=UNITS)
    by = {(r["dimension"], r["arm"]): r for r in rows}
    assert {d for d, _ in by} == {"unit", "operator", "model", "quadrant"}
    assert by[("unit", "Readout")]["children"] == 0 and by[("unit", "Readout")]["score"] is None
    assert by[("model", "small")]["invalid"] == 1 and by[("quadrant", "fallback")]["children"] == 1
    assert math.isclose(by[("unit", "Kernel")]["mean_gain"], 0.2) and by[("unit", "Kernel")]["improved"] == 1


@pytest.mark.parametrize("key, value, named", [
    ("credit_window", 1, "credit_window"), ("credit_exploration", -1.0, "credit_exploration"),
    ("credit_change_threshold", 0.0, "credit_change_threshold"),
    ("credit_invalid_reward", 0.5, "credit_invalid_reward"),
    ("credit", "yes", "credit must be true or false"), ("credit_windw", 10, "did you mean 'credit_window'"),
])
def test_bad_credit_settings_are_named(key, value, named):
    with pytest.raises(ConfigError, match=named):
        SelectorSettings.from_dict({key: value})


def test_with_two_models_credit_picks_the_one_whose_children_gain():
    records = as_records(seed_record())
    for i in range(12):
        model = "strong" if i % 2 else "weak"
        records[f"c{i}"] = child(f"c{i}", "baseline", i + 1, 0.05 if model == "strong" else -0.05, model=model)
    settings = CreditSettings()
    advice = advise(records, UNITS, settings, 0.3, random.Random(0), models=["weak", "strong", "new"])
    assert advice.model == "new" and advice.model_score is None  # an untried model is tried first
    advice = advise(records, UNITS, settings, 0.3, random.Random(0), models=["weak", "strong"])
    assert advice.model == "strong" and advice.model_score > 0
    assert advise(records, UNITS, settings, 0.3, random.Random(0), models=["only"]).model is None
    s = GenesysSelector(SelectorSettings(credit=True), RUNGS, UNITS, rng=random.Random(0), models=["weak", "strong"])
    assert s.select_design(records, "baseline", 0.5).model == "strong"
    rows = credit_table(records, units=UNITS, models=["weak", "strong", "new"])
    assert {r["arm"]: r["children"] for r in rows if r["dimension"] == "model"} == {"weak": 6, "strong": 6, "new": 0}
