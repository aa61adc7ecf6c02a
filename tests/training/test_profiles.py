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


# -- data policy: fixed steps or tokens per parameter -----------------------------------------------------------

import dataclasses
import math

from flax import nnx

from openevolve_genesys.evaluation.cache import config_hash
from openevolve_genesys.strict import ConfigError
from openevolve_genesys.training.model import build_model, count_parameters
from openevolve_genesys.training.profiles import MAX_WARMUP_FRACTION, Rung, TrainConfig, rung_n_params, rung_train


@pytest.mark.parametrize("rung, vocab", [(Rung("a", 16, 1, 2), 512), (Rung("b", 48, 2, 2), 2048),
                                         (Rung("c", 96, 3, 4), 2048), (Rung("d", 128, 6, 2), 50257)])
def test_the_counted_n_is_the_built_baseline_models_non_embedding_count(rung, vocab):
    model = nnx.eval_shape(lambda: build_model(vocab, rung.d_model, rung.n_layers, rung.n_heads))
    assert rung_n_params(rung) == count_parameters(model)[0]


def test_fixed_steps_keep_the_profiles_config_at_every_rung():
    smoke = PROFILES["smoke"]
    assert all(smoke.rung_train(r.name) is smoke.train for r in smoke.rungs)
    assert "tokens_per_param" not in smoke.train.identity()  # results cached before the setting keep their keys


def test_tokens_per_param_sets_each_rungs_steps_by_the_formula_and_caps_the_warmup():
    train = TrainConfig(seq_len=64, batch_size=16, steps=300, warmup_steps=30, tokens_per_param=20)
    smoke = get_profile("smoke", {"train": {"tokens_per_param": 20}})
    expected = {"r0": 498, "r1": 1107, "r2": 2932, "r3": 6557}  # ceil(20 N / 1024), N = 25,472 ... 335,712
    for rung in smoke.rungs:
        resolved = rung_train(train, rung)
        assert resolved.steps == math.ceil(20 * rung_n_params(rung) / (16 * 64)) == expected[rung.name]
        assert resolved.steps * 16 * 64 >= 20 * rung_n_params(rung) > (resolved.steps - 1) * 16 * 64
        assert resolved.warmup_steps == 30  # a tenth of 498 steps is more than the profile's warmup
        assert rung_train(resolved, rung) == resolved  # resolving twice changes nothing
        assert smoke.rung_train(rung.name).steps == resolved.steps
    short = rung_train(dataclasses.replace(train, tokens_per_param=1), smoke.rungs[0])
    assert short.steps == 25 and short.warmup_steps == math.floor(MAX_WARMUP_FRACTION * 25) == 2


def test_the_genesys_profile_trains_20_tokens_per_parameter_at_every_rung():
    genesys = PROFILES["genesys"]
    assert genesys.train.tokens_per_param == 20
    per_step = genesys.train.batch_size * genesys.train.seq_len
    steps = {r.name: genesys.rung_train(r.name).steps for r in genesys.rungs}
    assert steps == {"14M": 727, "31M": 2893, "70M": 11545, "125M": 51915, "350M": 184517}  # as docs/configuration.md
    for rung in genesys.rungs:
        assert 20 <= steps[rung.name] * per_step / rung_n_params(rung) < 20 + per_step / rung_n_params(rung)
    assert genesys.rung_train("14M").warmup_steps == 72 and genesys.rung_train("350M").warmup_steps == 1000
    assert genesys.max_train_tokens() == 184517 * per_step
    assert genesys.data_policy().words().startswith("compute-scaled at 20 tokens per parameter")
    # The other profiles stay at fixed steps: smoke as fast as before, seed the prototype's recipe.
    assert PROFILES["smoke"].data_policy().words().startswith("at fixed steps (300 steps, 307,200 tokens")
    assert PROFILES["seed"].data_policy().steps == 100_000 and not PROFILES["seed"].train.tokens_per_param


def test_the_cache_key_differs_between_policies():
    genesys = PROFILES["genesys"]
    fixed = genesys.override({"train": {"tokens_per_param": 0}})
    for rung in genesys.rungs:
        scaled_key = config_hash(genesys.rung_train(rung.name).identity())
        fixed_key = config_hash(fixed.rung_train(rung.name).identity())
        assert scaled_key != fixed_key
        assert fixed.rung_train(rung.name).steps == 20_000
    # Two ratios are two keys at every rung, too.
    other = genesys.override({"train": {"tokens_per_param": 40}})
    assert config_hash(other.rung_train("14M").identity()) != config_hash(genesys.rung_train("14M").identity())


@pytest.mark.parametrize("value", [-1, float("nan"), float("inf"), "20", True])
def test_a_bad_tokens_per_param_is_refused_in_one_line_naming_the_key(value):
    with pytest.raises(ConfigError) as err:
        get_profile("smoke", {"train": {"tokens_per_param": value}})
    message = str(err.value)
    assert "train.tokens_per_param" in message and ">= 0" in message and "\n" not in message
    with pytest.raises(ValueError, match="tokens_per_param"):
        TrainConfig(tokens_per_param=value)


def test_a_whole_ratio_and_its_float_share_one_cache_key():
    as_int = get_profile("smoke", {"train": {"tokens_per_param": 20}}).rung_train("r0")
    as_float = get_profile("smoke", {"train": {"tokens_per_param": 20.0}}).rung_train("r0")
    assert config_hash(as_int.identity()) == config_hash(as_float.identity())
