import logging

import pytest
import yaml

from openevolve_genesys import cli
from openevolve_genesys.config import load_run_config


def test_without_an_accelerator_the_smoke_profile_is_announced_once(caplog, tmp_path):
    raw = yaml.safe_load(open("configs/matrix_mixer.yaml"))
    raw["genesys"]["profile"] = "seed"
    path = tmp_path / "seed.yaml"
    path.write_text(yaml.safe_dump(raw))
    with caplog.at_level(logging.INFO, logger="openevolve_genesys"):
        config = cli.resolve_profile(load_run_config(path), None)
    assert config.genesys.evaluator.profile == "smoke"
    announcements = [r.message for r in caplog.records if "no accelerator" in r.message]
    assert len(announcements) == 1 and "--profile seed" in announcements[0]
    assert cli.resolve_profile(load_run_config(path), "seed").genesys.evaluator.profile == "seed"


def test_a_config_error_exits_2_with_the_message(tmp_path, capsys):
    path = tmp_path / "bad.yaml"
    path.write_text("max_iteratons: 3\n")
    assert cli.main([str(path)]) == 2
    assert "did you mean 'max_iterations'" in capsys.readouterr().err


def test_an_existing_run_is_not_overwritten_without_resume(tmp_path, capsys):
    output = tmp_path / "run"
    output.mkdir()
    (output / "history.jsonl").write_text("{}\n")
    assert cli.main(["configs/matrix_mixer.yaml", "--output", str(output)]) == 2
    assert "--resume" in capsys.readouterr().err


def test_several_configs_need_one_device_each(capsys):
    code = cli.main(["configs/matrix_mixer.yaml", "configs/test_time_regression.yaml", "--devices", "0"])
    assert code == 2 and "one per config" in capsys.readouterr().err


@pytest.mark.parametrize("argv", [["--help"]])
def test_help_names_the_options(argv, capsys):
    with pytest.raises(SystemExit):
        cli.main(argv)
    out = capsys.readouterr().out
    for option in ("--iterations", "--output", "--resume", "--profile", "--log-level", "--devices"):
        assert option in out


def test_the_controller_asks_for_the_backend_without_preallocating_and_leaves_the_environment(monkeypatch):
    seen = {}
    monkeypatch.delenv("XLA_PYTHON_CLIENT_PREALLOCATE", raising=False)
    monkeypatch.setattr(cli.jax, "default_backend",
                        lambda: seen.setdefault("during", cli.os.environ.get("XLA_PYTHON_CLIENT_PREALLOCATE")) and "gpu")
    assert cli.controller_backend() == "gpu" and seen["during"] == "false"
    assert "XLA_PYTHON_CLIENT_PREALLOCATE" not in cli.os.environ  # the evaluations inherit the user's setting
    monkeypatch.setenv("XLA_PYTHON_CLIENT_PREALLOCATE", "true")
    seen.clear()
    cli.controller_backend()
    assert seen["during"] == "true" and cli.os.environ["XLA_PYTHON_CLIENT_PREALLOCATE"] == "true"
