"""The smoke profile learns on the embedded default corpus, and bigger rungs learn more."""

import math

import pytest

from openevolve_genesys.data import DataConfig, load_data
from openevolve_genesys.training.ladder import train_ladder
from openevolve_genesys.training.profiles import get_profile


@pytest.mark.slow
def test_smoke_ladder_loss_falls_with_steps_and_with_size():
    profile = get_profile("smoke")
    data = load_data(DataConfig(), profile.vocab_size)
    result = train_ladder(profile, data, rungs=["r0", "r3"])
    small, large = result.rungs
    for rung in (small, large):
        losses = [point["eval_loss"] for point in rung.curve]
        assert losses == sorted(losses, reverse=True)  # falls at every evaluation
        assert losses[-1] < math.log(profile.vocab_size) - 1.0
    assert large.final_eval_loss < small.final_eval_loss - 0.3
    assert result.data_fingerprint == data.fingerprint
    assert result.fit["n_points"] == 2 and result.fit["r2"] is None  # two points: no fake R^2
