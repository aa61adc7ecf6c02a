import math
import random
from collections import Counter

import pytest

from openevolve_genesys.selection.budgets import seed_room
from openevolve_genesys.selection.quadrants import Quadrant
from openevolve_genesys.selection.selector import GenesysSelector, SelectorSettings
from openevolve_genesys.selection.valuation import Valuer
from openevolve_genesys.strict import ConfigError
from hand_records import RUNGS, SIZES, baseline, record, seeded_baseline

UNITS = ["Kernel", "Decay", "Readout"]


def population(*designs, base=None):
    base = base or baseline()
    valuer = Valuer.for_baseline(base)
    records = {"baseline": base, **{d.id: d for d in designs}}
    for r in records.values():
        valuer.value(r)
    return records


def selector(seed=0, **settings):
    return GenesysSelector(SelectorSettings(**settings), RUNGS, UNITS, ["lib-a", "lib-b"], random.Random(seed))


def test_a_design_choice_names_seed_unit_references_and_library_entries():
    records = population(record("good", 0.97, 4), record("other", 1.01, 1))
    choice = selector(num_references=1, num_library_refs=2).select_design(records, "baseline", 0.0)
    assert choice.seed_id in records and choice.unit in UNITS
    assert len(choice.reference_ids) == 1 and choice.seed_id not in choice.reference_ids
    assert sorted(choice.library_refs) == ["lib-a", "lib-b"]


def test_exploitation_seeds_from_the_confident_high_utility_designs():
    records = population(record("good", 0.97, 4), record("weak", 1.03, 4), record("new", 0.9, 1))
    s = selector(explore_start=0.0, explore_end=0.0)
    seeds = Counter(s.select_design(records, "baseline", 0.5).seed_id for _ in range(50))
    # "new" looks best but is unverified (low confidence): it is verified, not seeded from.
    assert set(seeds) <= {"good", "baseline"} and seeds["good"] > seeds["baseline"]


def test_exploration_seeds_from_confident_low_utility_designs():
    records = population(record("good", 0.97, 4), record("weak", 1.03, 4))
    s = selector(explore_start=1.0, explore_end=1.0, schedule="constant")
    choices = [s.select_design(records, "baseline", 0.5) for _ in range(20)]
    assert {c.seed_id for c in choices} == {"weak"}
    assert all(c.quadrant is Quadrant.DESIGN_EXPLORE for c in choices)
    assert "substantially different" in choices[0].instruction


def test_with_nothing_confident_the_best_valued_design_seeds():
    records = {"new": record("new", 0.97, 1)}
    records["new"].utility, records["new"].confidence = 0.1, 0.0
    choice = selector().select_design(records, "baseline", 0.0)
    assert choice.seed_id == "new" and choice.quadrant is None
    assert selector().select_design({}, "baseline", 0.0).seed_id == "baseline"


def test_a_user_instruction_reaches_every_choice():
    records = population(record("good", 0.97, 4))
    assert "use gating" in selector(instruction="use gating").select_design(records, "baseline", 0.3).instruction


def test_verification_prefers_promising_unconfident_designs_at_their_next_rung():
    records = population(record("promising", 0.95, 1), record("poor", 1.05, 1), record("done", 0.97, 4))
    s = selector(explore_start=0.0, explore_end=0.0, halving_ratio=1.5)  # r1 admits ceil(3 / 1.5) = 2 designs
    choice = s.select_verification(records, "baseline", 0.5)
    assert (choice.design_id, choice.rung, choice.quadrant) == ("promising", "r1", Quadrant.VERIFY_EXPLOIT)


def test_verification_explores_low_utility_designs_when_annealing_says_so():
    records = population(record("promising", 0.95, 1), record("poor", 1.05, 1))
    s = selector(explore_start=1.0, explore_end=1.0, schedule="constant")
    choice = s.select_verification(records, "baseline", 0.5)
    assert (choice.design_id, choice.quadrant) == ("poor", Quadrant.VERIFY_EXPLORE)


def test_budgets_stop_verification_and_busy_jobs_are_not_repeated():
    # Two designs: rung r1 admits ceil(2/3) = 1 design.
    records = population(record("a", 0.95, 1), record("b", 0.96, 1))
    s = selector(explore_start=0.0, explore_end=0.0)
    first = s.select_verification(records, "baseline", 0.0)
    assert first.rung == "r1"
    assert s.select_verification(records, "baseline", 0.0, busy={(first.design_id, "r1")}) is None


def test_a_failed_rung_blocks_the_rungs_above_it():
    failed = record("a", 0.95, 1)
    failed.failed_rungs["r1"] = "timeout"
    assert selector().select_verification(population(failed), "baseline", 0.0) is None


def test_the_best_confident_design_is_still_promoted_while_the_budget_allows():
    records = population(record("good", 0.97, 3), record("weak", 1.03, 3))
    assert all(0.2 < records[d].confidence < 0.9 for d in ("good", "weak"))  # three rungs: both confident at 0.2
    choice = selector(min_per_rung=1, confidence_threshold=0.2).select_verification(records, "baseline", 0.0)
    assert (choice.design_id, choice.rung, choice.quadrant) == ("good", "r3", Quadrant.DESIGN_EXPLOIT)


def test_the_rng_state_round_trips():
    records = population(record("good", 0.97, 4), record("weak", 1.03, 4), record("x", 0.99, 2))
    a = selector(seed=3)
    state = a.state_dict()
    first = [a.select_design(records, "baseline", 0.2) for _ in range(5)]
    b = selector(seed=99)
    b.load_state_dict(state)
    assert [b.select_design(records, "baseline", 0.2) for _ in range(5)] == first


def test_settings_are_strict_and_checked():
    with pytest.raises(ConfigError, match="'halving_ration'.*'halving_ratio'"):
        SelectorSettings.from_dict({"halving_ration": 2})
    with pytest.raises(ConfigError, match="schedule"):
        SelectorSettings.from_dict({"schedule": "exponential"})
    with pytest.raises(ConfigError, match="halving_ratio"):
        SelectorSettings.from_dict({"halving_ratio": 1})


def at_the_top(*designs, confidence_threshold=0.99, **settings):
    """Designs verified at every rung against a baseline with three seeds, none confident at the threshold."""
    records = population(*designs, base=seeded_baseline())
    return records, selector(explore_start=0.0, explore_end=0.0, confidence_threshold=confidence_threshold,
                             **settings)


def test_a_promising_unsure_design_at_the_top_rung_is_verified_at_its_next_seed():
    records, s = at_the_top(record("top", 0.95, 4), record("poor", 1.03, 4), seed_verification_share=0.5)
    choice = s.select_verification(records, "baseline", 0.5)
    assert (choice.design_id, choice.rung, choice.seed, choice.quadrant) == ("top", "r3", 1, Quadrant.VERIFY_EXPLOIT)
    records["top"].rungs["r3"].add_seed_loss(1, records["top"].rungs["r3"].loss, partners=3)
    assert s.select_verification(records, "baseline", 0.5).seed == 2  # then seed 2, the baseline's last
    assert s.select_verification(records, "baseline", 0.5, busy={("top", "r3")}) is None  # one in flight
    # Never a low-utility design, not even when exploring: a second seed is for designs worth the evidence.
    explorer = selector(explore_start=1.0, explore_end=1.0, schedule="constant", confidence_threshold=0.99,
                        seed_verification_share=0.5)
    assert explorer.select_verification(records, "baseline", 0.5).design_id == "top"


def test_no_seed_verification_with_a_zero_share_a_confident_design_or_no_baseline_partner():
    designs = record("top", 0.95, 4), record("poor", 1.03, 4)
    assert at_the_top(*designs, seed_verification_share=0.0)[1].select_verification(
        at_the_top(*designs)[0], "baseline", 0.5) is None
    records, s = at_the_top(*designs, confidence_threshold=0.5, seed_verification_share=0.5)
    records["top"].confidence = 0.9  # confident: it seeds mutation instead
    assert s.select_verification(records, "baseline", 0.5) is None
    one_seed = population(*designs)  # the baseline trained one seed: a design's seed 1 would have no partner
    assert selector(confidence_threshold=0.99, seed_verification_share=0.5).select_verification(
        one_seed, "baseline", 0.5) is None
    records, s = at_the_top(*designs, seed_verification_share=0.5)
    for seed in (1, 2):  # every baseline seed paired already
        records["top"].rungs["r3"].add_seed_loss(seed, records["top"].rungs["r3"].loss, partners=3)
    assert s.select_verification(records, "baseline", 0.5) is None


def test_a_promotion_comes_before_a_seed_verification():
    records, s = at_the_top(record("top", 0.95, 4), record("climbing", 0.94, 2), record("poor", 1.03, 4),
                            seed_verification_share=0.5, min_per_rung=3)
    choice = s.select_verification(records, "baseline", 0.5)
    assert (choice.design_id, choice.rung, choice.seed) == ("climbing", "r2", 0)


@pytest.mark.parametrize("share, allowed", [(0.2, 2), (0.3, 4)])
def test_the_share_bounds_the_seed_verifications(share, allowed):
    """Six designs at the top rung are 6 x (N1 + N2 + N3) / N3 = 9.65 top-rung runs of promotion; seed runs S
    may then take S <= share * (9.65 + S): 2 at a fifth, 4 at 0.3 (seed 1 of each of the four designs at or above
    the median utility, the most promising first)."""
    records, s = at_the_top(*(record(f"d{i}", 0.95 + 0.005 * i, 4) for i in range(6)), seed_verification_share=share)
    promotions = 6 * sum(SIZES[r] for r in RUNGS[1:]) / SIZES["r3"]
    chosen = []
    while (choice := s.select_verification(records, "baseline", 0.5)) is not None:
        assert choice.seed > 0 and choice.quadrant is Quadrant.VERIFY_EXPLOIT
        chosen.append((choice.design_id, choice.seed))
        records[choice.design_id].rungs["r3"].add_seed_loss(choice.seed, 3.0, partners=3)  # the job finished
    assert len(chosen) == allowed
    assert allowed <= share * (promotions + allowed) and allowed + 1 > share * (promotions + allowed + 1)
    assert chosen == [(f"d{i}", 1) for i in range(allowed)]


def test_at_tokens_per_parameter_a_top_rung_seed_run_costs_its_steps_too():
    """With steps in proportion to N (a compute-scaled ladder) a run costs N^2: the lower rungs' promotions are
    worth less of a top-rung run, and the same share allows fewer seed runs than at equal steps."""
    designs = [record(f"d{i}", 0.95 + 0.005 * i, 4) for i in range(6)]
    steps = {r: round(20 * SIZES[r] / 1024) for r in RUNGS}  # 20 tokens per parameter at 1024 tokens per step
    records, equal = at_the_top(*designs, seed_verification_share=0.3)
    scaled = GenesysSelector(equal.settings, RUNGS, UNITS, ["lib-a", "lib-b"], random.Random(0), rung_steps=steps)
    promotions = 6 * sum(SIZES[r] * steps[r] for r in RUNGS[1:]) / (SIZES["r3"] * steps["r3"])
    allowed = math.floor(0.3 * promotions / 0.7 + 1e-9)
    chosen = 0
    while (choice := scaled.select_verification(records, "baseline", 0.5)) is not None:
        chosen += 1
        records[choice.design_id].rungs["r3"].add_seed_loss(choice.seed, 3.0, partners=3)
    assert chosen == allowed < 4  # 4 at equal steps (test_the_share_bounds_the_seed_verifications)
    with pytest.raises(ValueError, match=r"missing \['r3'\]"):
        seed_room(records, RUNGS, "baseline", 0.3, steps={r: 1 for r in RUNGS[:-1]})


def test_the_seed_verification_share_is_checked_at_load():
    for bad in (1.0, -0.1, "0.2", True, float("nan")):
        with pytest.raises(ConfigError, match="seed_verification_share must be a number in"):
            SelectorSettings.from_dict({"seed_verification_share": bad})
    assert SelectorSettings.from_dict({"seed_verification_share": 0}).seed_verification_share == 0
