"""What a Ray job carries, without a Ray cluster: per-rung resources, and the controller's baseline."""

import pytest

from openevolve_genesys.engine.base import EngineSettings
from openevolve_genesys.engine.ray_engine import _EVALUATORS, evaluate_in_worker
from openevolve_genesys.evaluation.evaluator import BaselineSpeeds, Evaluation, ScalingLawEvaluator
from openevolve_genesys.evaluation.settings import EvaluatorSettings
from openevolve_genesys.strict import ConfigError
from openevolve_genesys.training.rung_result import rungs_from_dict


def test_a_job_asks_for_the_most_any_of_its_rungs_needs():
    settings = EngineSettings.from_dict({"kind": "ray", "cpus_per_job": 2, "gpus_per_job": 1,
                                         "gpus_per_rung": {"r3": 4, "r4": 8}, "cpus_per_rung": {"r0": 1}})
    assert settings.resources(["r0"]) == (1.0, 1.0)
    assert settings.resources(["r1"]) == (2.0, 1.0)
    assert settings.resources(["r2", "r3"]) == (2.0, 4.0)
    assert settings.resources(["r0", "r1", "r2", "r3", "r4"]) == (2.0, 8.0)


@pytest.mark.parametrize("raw", [{"gpus_per_rung": {"r3": -1}}, {"cpus_per_rung": {"r0": 0}},
                                 {"gpus_per_rung": [4]}, {"gpus_per_rung": {"r3": "four"}}])
def test_bad_per_rung_resources_are_named(raw):
    with pytest.raises((ConfigError, ValueError), match="per_rung"):
        EngineSettings.from_dict(raw)


def test_a_worker_adopts_the_controllers_baseline_instead_of_training_it(monkeypatch):
    settings = EvaluatorSettings(framework="matrix_mixer", profile="smoke")
    trained = []

    def fake_run(self, source, names, changes, speeds, on_heartbeat, env, sweep=None, seed_source=None, seeds=None,
                 params_dir=None):
        trained.append((source == self.template, names, speeds))
        rungs = {n: {"n_params": 1000 * (i + 1), "final_eval_loss": 6.0 - 0.1 * i, "tokens_per_second": 5.0}
                 for i, n in enumerate(names)}
        return Evaluation("ok", {}, {}, rungs_from_dict(rungs))

    monkeypatch.setattr(ScalingLawEvaluator, "_run", fake_run)
    monkeypatch.setattr(ScalingLawEvaluator, "_score", lambda self, rungs, base: {"combined_score": 0.0})
    controller = ScalingLawEvaluator(settings)
    baseline = controller.baseline()  # the controller trains it once (here: the fake)
    assert controller.known_baseline() is baseline and controller.known_baseline(1.0) is None
    trained.clear()
    _EVALUATORS.clear()  # a fresh worker process
    child = controller.template.replace("class", "class", 1) + "\n# a child\n"
    result = evaluate_in_worker(settings, child, ["r1"], {"baseline_learning_rate": None}, baseline)
    assert result.outcome == "ok"
    # only the design trained, checked against the baseline's speeds (no CPU time in the fake's records)
    assert trained == [(False, ["r1"], BaselineSpeeds({n: 5.0 for n in baseline.rungs}, {}))]
    with pytest.raises(ValueError, match="successful baseline"):
        controller.adopt_baseline(Evaluation("crashed", {}, {}))
