import pytest

from openevolve_genesys.training.profiles import PROFILES, get_profile


def test_overrides_apply_and_leave_the_registry_alone():
    p = get_profile("smoke", {"train": {"steps": 10, "learning_rate": 0.01},
                              "rungs": [{"d_model": 16, "n_layers": 1, "n_heads": 2}]})
    assert p.train.steps == 10 and p.train.learning_rate == 0.01
    assert [(r.name, r.d_model) for r in p.rungs] == [("r0", 16)]
    assert PROFILES["smoke"].train.steps != 10


@pytest.mark.parametrize("overrides, where, near", [
    ({"trian": {}}, "profile", "train"),
    ({"train": {"learning_rat": 1.0}}, "profile.train", "learning_rate"),
    ({"rungs": [{"d_modle": 8, "n_layers": 1, "n_heads": 1}]}, "profile.rungs[0]", "d_model"),
])
def test_unknown_keys_name_the_key_and_the_nearest_valid_one(overrides, where, near):
    with pytest.raises(ValueError) as err:
        get_profile("smoke", overrides)
    assert where in str(err.value) and repr(near) in str(err.value)


def test_unknown_profile_and_bad_values():
    with pytest.raises(KeyError, match="smoke"):
        get_profile("smok")
    with pytest.raises(ValueError, match="schedule"):
        get_profile("smoke", {"train": {"schedule": "linear"}})
