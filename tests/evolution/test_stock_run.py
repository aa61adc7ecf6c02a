"""Stock openevolve-run evolves with its own controller and scores with evolution/evaluator.py under the -c file.

The run talks to the loopback fault server, whose one answer is a SEARCH/REPLACE diff of the framework; the
-c file's one-rung ladder is what makes its settings visible in the scored programs' metrics (the shipped
config's smoke ladder has four rungs)."""

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest
import yaml

from fault_server import FaultServer, answer
from openevolve_genesys.stock import config_option, export_config_option, stock_settings
from openevolve_genesys.strict import ConfigError

REPO = Path(__file__).resolve().parents[2]
EVALUATOR = REPO / "evolution" / "evaluator.py"
ONE_RUNG = {
    "vocab_size": 512,
    "rungs": [{"d_model": 16, "n_layers": 1, "n_heads": 2}],
    "train": {"seq_len": 32, "batch_size": 8, "steps": 20, "eval_interval": 20, "chunk_steps": 20,
              "eval_tokens": 512, "warmup_steps": 2, "learning_rate": 0.01},
}
SEARCH = "        return scores * (1.0 / math.sqrt(q.shape[-1]))"
DIFF = f"<<<<<<< SEARCH\n{SEARCH}\n=======\n{SEARCH.replace('1.0 /', '0.5 /')}\n>>>>>>> REPLACE\n"


def run_config(tmp_path: Path, api_base: str) -> Path:
    """configs/matrix_mixer.yaml with a one-rung ladder, the loopback LLM, and genesys keys of the openevolve
    command only (workers, selector), which openevolve-run must ignore, not refuse."""
    raw = yaml.safe_load((REPO / "configs" / "matrix_mixer.yaml").read_text())
    raw.update(max_iterations=2, checkpoint_interval=1)
    raw["llm"] = {"primary_model": "fake", "api_base": api_base, "api_key": "x", "timeout": 60, "retries": 0}
    raw["evaluator"] = {"timeout": 600, "cascade_evaluation": False, "parallel_evaluations": 1}
    raw["genesys"].update(profile_overrides=ONE_RUNG, data={"source": "stdlib", "max_corpus_bytes": 200_000},
                          cache_path=str(tmp_path / "fitness.sqlite"), workers=2, selector={"verify_share": 0.2})
    raw["genesys"]["tune"]["enabled"] = False
    path = tmp_path / "run.yaml"
    path.write_text(yaml.safe_dump(raw))
    return path


def test_the_config_option_is_read_only_from_a_command_line_naming_this_evaluation_file(tmp_path):
    config = tmp_path / "run.yaml"
    for argv in (["openevolve-run", "p.py", str(EVALUATOR), "-c", str(config)],
                 ["openevolve-run", "--iterations", "2", "p.py", str(EVALUATOR), f"--config={config}"],
                 ["cli.py", "p.py", str(EVALUATOR), f"-c{config}", "-o", "out"]):
        assert config_option(argv, EVALUATOR) == config
    assert config_option(["openevolve-run", "p.py", "other.py", "-c", str(config)], EVALUATOR) is None
    assert config_option(["pytest", "-c", "pytest.ini"], EVALUATOR) is None
    assert config_option(["openevolve-run", "p.py", str(EVALUATOR)], EVALUATOR) is None


def test_a_missing_config_file_is_one_clear_error(tmp_path, monkeypatch):
    monkeypatch.delenv("GENESYS_CONFIG", raising=False)
    with pytest.raises(ConfigError, match="no such file"):
        export_config_option(["openevolve-run", "p.py", str(EVALUATOR), "-c", str(tmp_path / "nope.yaml")], EVALUATOR)
    assert "GENESYS_CONFIG" not in os.environ


def test_the_config_option_wins_over_the_variable_and_is_exported(tmp_path, monkeypatch, caplog):
    config = run_config(tmp_path, "http://127.0.0.1:9/v1")
    monkeypatch.setenv("GENESYS_CONFIG", str(REPO / "configs" / "matrix_mixer.yaml"))
    assert export_config_option(["openevolve-run", "p.py", str(EVALUATOR), "-c", str(config)], EVALUATOR) == config
    assert os.environ["GENESYS_CONFIG"] == str(config)
    assert "wins over $GENESYS_CONFIG" in caplog.text


def test_genesys_keys_of_the_openevolve_command_are_ignored_in_one_line_and_misspelt_ones_refused(tmp_path, caplog):
    config = run_config(tmp_path, "http://127.0.0.1:9/v1")
    caplog.set_level("INFO")
    settings = stock_settings(config, framework="matrix_mixer")
    assert [r["d_model"] for r in settings.profile_overrides["rungs"]] == [16]
    assert settings.sandbox.wall_seconds == 600  # evaluator.timeout sets it, as for the openevolve command
    lines = [r.message for r in caplog.records if "ignored by openevolve-run" in r.message]
    assert len(lines) == 1 and "genesys.selector, genesys.workers" in lines[0]
    raw = yaml.safe_load(config.read_text())
    raw["genesys"]["wrokers"] = 2
    config.write_text(yaml.safe_dump(raw))
    with pytest.raises(ConfigError, match="did you mean 'workers'"):
        stock_settings(config, framework="matrix_mixer")


@pytest.mark.slow
def test_openevolve_run_scores_an_evolved_program_under_the_c_files_settings(tmp_path):
    initial = tmp_path / "matrix_mixer.py"
    initial.write_text((REPO / "frameworks" / "matrix_mixer.py").read_text())
    assert SEARCH in initial.read_text()
    env = {k: v for k, v in os.environ.items() if k != "GENESYS_CONFIG"}
    env["PYTHONPATH"] = os.pathsep.join([str(REPO), env.get("PYTHONPATH", "")])
    with FaultServer(answer(DIFF)) as server:
        config = run_config(tmp_path, server.url)
        done = subprocess.run([sys.executable, "-m", "openevolve.cli", str(initial), str(EVALUATOR), "-c", str(config),
                               "-o", str(tmp_path / "out"), "--iterations", "2"],
                              cwd=tmp_path, env=env, capture_output=True, text=True, timeout=600)
        asked = server.total
    assert done.returncode == 0, done.stdout[-3000:] + done.stderr[-3000:]
    assert asked >= 1
    checkpoints = sorted((tmp_path / "out" / "checkpoints").glob("checkpoint_*"), key=lambda p: int(p.name[11:]))
    programs = [json.loads(p.read_text()) for p in (checkpoints[-1] / "programs").glob("*.json")]
    evolved = [p for p in programs if p["parent_id"] and "0.5 / math.sqrt" in p["code"]]
    assert evolved, f"no evolved program among {[p['id'] for p in programs]}"
    for program in programs:  # the initial one and the evolved ones alike: the -c file's one-rung ladder
        losses = {k for k in program["metrics"] if k.startswith("loss_")}
        assert losses == {"loss_r0"}, program["metrics"]
        assert program["metrics"]["rungs_trained"] == 1
