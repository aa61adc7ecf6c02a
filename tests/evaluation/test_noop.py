"""No-op screening: the probe distance, the tolerance setting, and a no-op child that the evaluator never trains."""

import math
import re

import numpy as np
import pytest

from openevolve_genesys.evaluation.evaluator import ScalingLawEvaluator
from openevolve_genesys.evaluation.hashing import functional_probe
from openevolve_genesys.evaluation.noop import probe_distance, relative_rms
from openevolve_genesys.evaluation.program import framework_path, load_program, replace_class
from openevolve_genesys.evaluation.sandbox import SandboxLimits
from openevolve_genesys.evaluation.settings import EvaluatorSettings
from openevolve_genesys.mutations.catalogue import catalogue
from openevolve_genesys.mutations.mutator import identify
from openevolve_genesys.mutations.units import class_texts
from openevolve_genesys.strict import ConfigError

FRAMEWORK = "coefficient_dynamics"
TEMPLATE = framework_path(FRAMEWORK).read_text()
TOLERANCE = EvaluatorSettings().noop_tolerance


def _probe(source):
    return functional_probe(load_program(source, framework=FRAMEWORK).build_mixer)


def _real_change():
    """A catalogue alternative that keeps the baseline's parameters, so the screen could pass it if it were wrong."""
    current = identify(TEMPLATE, FRAMEWORK)
    seed = _probe(TEMPLATE)
    for unit, alternatives in catalogue(FRAMEWORK).items():
        for alternative in alternatives:
            if alternative.name != current[unit]:
                child = replace_class(TEMPLATE, unit, alternative.text)
                distance = probe_distance(_probe(child), seed)
                if distance.params_match:
                    return child, distance
    raise AssertionError("no catalogue alternative keeps the baseline's parameters")


def _renamed_locals():
    """Coefficients with its local ``logits`` renamed everywhere (a textual edit, as a model writes it)."""
    text = class_texts(TEMPLATE)["Coefficients"]
    renamed = re.sub(r"\blogits\b", "scores_renamed", text)
    assert renamed != text
    return replace_class(TEMPLATE, "Coefficients", renamed)


def test_relative_rms_is_zero_for_equal_arrays_and_scale_free():
    a = np.arange(1.0, 7.0).reshape(2, 3)
    assert relative_rms(a, a) == 0.0
    assert relative_rms(1000 * (a + 0.01), 1000 * a) == pytest.approx(relative_rms(a + 0.01, a))
    assert relative_rms(np.ones(3), np.zeros(3)) == math.inf
    assert relative_rms(np.array([np.nan]), np.ones(1)) == math.inf


def test_the_same_program_is_at_distance_zero_and_a_no_op():
    distance = probe_distance(_probe(TEMPLATE), _probe(TEMPLATE))
    assert distance.distance == 0.0 and distance.params_match
    assert distance.is_noop(0.0)


def test_a_renamed_variable_is_below_the_tolerance_and_a_real_change_above():
    seed = _probe(TEMPLATE)
    renamed = probe_distance(_probe(_renamed_locals()), seed)
    assert renamed.params_match and renamed.distance <= TOLERANCE
    _, real = _real_change()
    assert real.distance > 10 * TOLERANCE and not real.is_noop(TOLERANCE)


@pytest.mark.parametrize("bad", [-1e-3, math.inf, math.nan, "small", True])
def test_a_bad_tolerance_stops_the_run_at_load_with_one_line(bad):
    with pytest.raises(ConfigError, match="genesys.noop_tolerance must be a finite number >= 0") as err:
        EvaluatorSettings(noop_tolerance=bad)
    assert "\n" not in str(err.value)


TINY = {
    "vocab_size": 512,
    "rungs": [{"d_model": 16, "n_layers": 1, "n_heads": 2}],
    "train": {"seq_len": 32, "batch_size": 4, "steps": 20, "eval_interval": 10, "chunk_steps": 10,
              "eval_tokens": 512, "warmup_steps": 2, "learning_rate": 0.01},
}


@pytest.mark.slow
def test_through_the_sandbox_a_no_op_child_is_not_trained_and_a_real_change_is(tmp_path):
    settings = EvaluatorSettings(
        framework=FRAMEWORK, profile="smoke", profile_overrides=TINY,
        data={"source": "stdlib", "max_corpus_bytes": 200_000}, cache_path=str(tmp_path / "fitness.sqlite"),
        sandbox=SandboxLimits(wall_seconds=180, heartbeat_seconds=60, startup_seconds=180, memory_bytes=6 << 30))
    evaluator = ScalingLawEvaluator(settings)
    noop = evaluator.evaluate(_renamed_locals(), ["r0"], seed_source=TEMPLATE)
    assert noop.outcome == "invalid" and noop.metrics["check"] == "no_change", noop.artifacts
    assert "within" in noop.artifacts["message"] and "of the seed's on the probe" in noop.artifacts["message"]
    assert noop.rungs == {} and noop.timing.get("train", 0.0) == 0.0
    assert noop.metrics["probe_distance"] <= TOLERANCE and noop.metrics["probe_params_match"]
    child, _ = _real_change()
    real = evaluator.evaluate(child, ["r0"], seed_source=TEMPLATE)
    assert real.outcome == "ok", real.artifacts
    assert real.artifacts["trained_rungs"] == ["r0"] and real.timing["train"] > 0
    assert real.metrics["probe_distance"] > TOLERANCE
    assert real.artifacts["noop_probe"]["tolerance"] == TOLERANCE
