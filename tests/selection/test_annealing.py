import math

import pytest

from openevolve_genesys.selection.annealing import exploration_probability


@pytest.mark.parametrize("schedule", ["constant", "linear", "cosine"])
def test_schedules_start_where_they_should(schedule):
    assert exploration_probability(schedule, 0.6, 0.1, 0.0) == pytest.approx(0.6)


def test_constant_never_moves():
    assert exploration_probability("constant", 0.3, 0.0, 1.0) == 0.3


def test_linear_and_cosine_end_at_end_and_meet_halfway():
    for schedule in ("linear", "cosine"):
        assert exploration_probability(schedule, 0.6, 0.1, 1.0) == pytest.approx(0.1)
        assert exploration_probability(schedule, 0.6, 0.1, 0.5) == pytest.approx(0.35)


def test_cosine_stays_high_longer_than_linear_early_on():
    assert exploration_probability("cosine", 0.6, 0.1, 0.2) > exploration_probability("linear", 0.6, 0.1, 0.2)
    assert exploration_probability("cosine", 0.6, 0.1, 0.2) == pytest.approx(0.1 + 0.25 * (1 + math.cos(0.2 * math.pi)))


def test_progress_is_clamped_and_probabilities_fall_monotonically():
    values = [exploration_probability("cosine", 0.5, 0.0, p / 10) for p in range(-2, 13)]
    assert values == sorted(values, reverse=True)
    assert values[0] == 0.5 and values[-1] == pytest.approx(0.0)


def test_an_unknown_schedule_is_named():
    with pytest.raises(ValueError, match="'exponential'.*constant"):
        exploration_probability("exponential", 0.5, 0.1, 0.5)
