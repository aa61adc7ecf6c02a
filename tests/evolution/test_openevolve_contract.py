"""Stock OpenEvolve 0.4.0 loads evolution/evaluator.py and gets scaling-law metrics through its cascade."""

import asyncio
from pathlib import Path

import pytest
import yaml
from openevolve.config import load_config
from openevolve.evaluator import Evaluator

REPO = Path(__file__).resolve().parents[2]
TINY_PROFILE = {
    "vocab_size": 512,
    "rungs": [{"d_model": 16, "n_layers": 1, "n_heads": 2}, {"d_model": 24, "n_layers": 1, "n_heads": 2}],
    "train": {"seq_len": 32, "batch_size": 8, "steps": 40, "eval_interval": 20, "chunk_steps": 20,
              "eval_tokens": 512, "warmup_steps": 2, "learning_rate": 0.01},
}


@pytest.fixture
def tiny_config(tmp_path, monkeypatch):
    config = yaml.safe_load((REPO / "configs" / "matrix_mixer.yaml").read_text())
    config["genesys"].update(profile_overrides=TINY_PROFILE, data={"source": "stdlib", "max_corpus_bytes": 200_000},
                             cache_path=str(tmp_path / "fitness.sqlite"))
    config["evaluator"]["cascade_thresholds"] = [-100.0]
    path = tmp_path / "run.yaml"
    path.write_text(yaml.safe_dump(config))
    monkeypatch.setenv("GENESYS_CONFIG", str(path))
    return path


@pytest.mark.slow
def test_openevolve_evaluator_runs_the_cascade_on_a_framework_baseline(tiny_config):
    # Tune mode (on in the shipped config) is covered by the --test command below; off here, the cascade costs two
    # sandbox runs instead of a sweep per side.
    raw = yaml.safe_load(tiny_config.read_text())
    raw["genesys"]["tune"]["enabled"] = False
    tiny_config.write_text(yaml.safe_dump(raw))
    config = load_config(str(tiny_config))
    evaluator = Evaluator(config.evaluator, str(REPO / "evolution" / "evaluator.py"))
    source = (REPO / "frameworks" / "matrix_mixer.py").read_text()
    metrics = asyncio.run(evaluator.evaluate_program(source, "baseline"))
    # OpenEvolve keeps the numeric metrics (it drops strings such as the outcome).
    assert {"loss_r0", "loss_r1", "slope", "combined_score", "forecast"} <= set(metrics)
    assert metrics["combined_score"] == pytest.approx(0.0, abs=1e-9)  # the baseline against itself


@pytest.mark.slow
def test_the_test_command_prints_per_rung_losses_and_the_fit(tiny_config, capsys):
    from importlib import util

    spec = util.spec_from_file_location("genesys_evolution_evaluator", REPO / "evolution" / "evaluator.py")
    module = util.module_from_spec(spec)
    spec.loader.exec_module(module)
    assert module.main(["--test", "--framework", "matrix_mixer"]) == 0
    out = capsys.readouterr().out
    assert '"loss_r0"' in out and '"slope"' in out and "r1 N=" in out
