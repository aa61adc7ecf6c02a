from openevolve_genesys.selection.quadrants import Quadrant, quadrant, split, utility_threshold
from hand_records import record


def valued(design_id, utility, confidence, outcome="ok"):
    r = record(design_id, outcome=outcome)
    r.utility, r.confidence = utility, confidence
    return r


def test_the_four_quadrants():
    assert quadrant(valued("a", 0.2, 0.9), 0.0, 0.5) is Quadrant.DESIGN_EXPLOIT
    assert quadrant(valued("b", 0.2, 0.1), 0.0, 0.5) is Quadrant.VERIFY_EXPLOIT
    assert quadrant(valued("c", -0.2, 0.9), 0.0, 0.5) is Quadrant.DESIGN_EXPLORE
    assert quadrant(valued("d", -0.2, 0.1), 0.0, 0.5) is Quadrant.VERIFY_EXPLORE


def test_high_utility_is_relative_to_the_population():
    records = [valued(str(i), u, 0.9) for i, u in enumerate([-0.3, -0.2, -0.1, 0.0])]
    cut = utility_threshold(records, 0.5)
    groups = split(records, cut, 0.5)
    # Every design is worse than the baseline, yet the better half is still exploited.
    assert [r.id for r in groups[Quadrant.DESIGN_EXPLOIT]] == ["2", "3"]
    assert [r.id for r in groups[Quadrant.DESIGN_EXPLORE]] == ["0", "1"]


def test_invalid_and_unvalued_designs_are_in_no_quadrant():
    records = [valued("ok", 0.1, 0.9), valued("bad", None, 0.0, outcome="invalid")]
    groups = split(records, utility_threshold(records, 0.5), 0.5)
    assert sum(len(g) for g in groups.values()) == 1
    assert utility_threshold([], 0.5) == 0.0
