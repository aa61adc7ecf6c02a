"""A rung result crosses every boundary as JSON and reads back typed, also from records older than its fields."""

import json
import math
import subprocess
import sys

import pytest

from openevolve_genesys.training.rung_result import RungResult, rungs_from_dict, rungs_to_dict

FULL = RungResult(rung="r0", d_model=16, n_layers=1, n_heads=2, n_params=3072, total_params=11264, steps=40,
                  final_eval_loss=5.25, best_eval_loss=5.2, curve=[{"step": 20, "train_loss": 6.0, "eval_loss": 5.5}],
                  tokens_per_second=900.0, compile_seconds=1.5, train_seconds=4.0, eval_seconds=0.5, compiles=2,
                  cache_hit="functional", seed_losses=(5.25, 5.3))


def test_to_dict_round_trips_through_json():
    assert RungResult.from_dict(json.loads(json.dumps(FULL.to_dict()))) == FULL
    assert rungs_from_dict(json.loads(json.dumps(rungs_to_dict({"r0": FULL})))) == {"r0": FULL}


def test_the_history_shape_is_unchanged():
    """A history line's rung: the measured fields plus cache_hit, and seed_losses only when there are seeds."""
    single = RungResult.from_dict({**FULL.to_dict(), "seed_losses": None})
    assert "seed_losses" not in single.to_dict() and single.to_dict()["cache_hit"] == "functional"
    assert FULL.to_dict()["seed_losses"] == [5.25, 5.3]
    measured = FULL.measurement()
    assert "cache_hit" not in measured and "seed_losses" not in measured  # what the fitness cache stores
    assert set(measured) | {"cache_hit", "seed_losses"} == set(FULL.to_dict())


def test_an_old_record_reads_with_defaults_and_its_rung_name_from_its_key():
    old = {"n_params": 1000, "final_eval_loss": 5.0}  # before shapes, seconds, compiles, cache hits, seeds
    result = rungs_from_dict({"r1": old})["r1"]
    assert (result.rung, result.n_params, result.final_eval_loss, result.best_eval_loss) == ("r1", 1000, 5.0, 5.0)
    assert result.cache_hit is None and result.losses == (5.0,) and result.train_seconds == 0.0
    assert RungResult.from_dict({**old, "a_later_field": 1}, "r1") == result  # newer keys are ignored


def test_a_loss_json_wrote_as_null_reads_back_as_nan():
    result = RungResult.from_dict({"rung": "r0", "n_params": 1, "final_eval_loss": None})
    assert math.isnan(result.final_eval_loss) and math.isnan(result.best_eval_loss)


def test_a_record_that_is_no_rung_result_names_what_is_missing():
    with pytest.raises(ValueError, match=r"needs \['final_eval_loss'\].*RungResult.to_dict\(\)"):
        RungResult.from_dict({"rung": "r0", "n_params": 1})
    with pytest.raises(ValueError, match=r"needs \['rung'\]"):
        RungResult.from_dict({"n_params": 1, "final_eval_loss": 5.0})
    with pytest.raises(ValueError, match="cache_hit must be one of"):
        RungResult.from_dict({"rung": "r0", "n_params": 1, "final_eval_loss": 5.0, "cache_hit": "function"})


def test_reading_a_result_imports_no_jax():
    """The controller and the report read results without the training stack."""
    code = ("import sys; import openevolve_genesys.evaluation.results, openevolve_genesys.outcomes; "
            "print('jax' in sys.modules)")
    assert subprocess.run([sys.executable, "-c", code], capture_output=True, text=True,
                          check=True).stdout.strip() == "False"
