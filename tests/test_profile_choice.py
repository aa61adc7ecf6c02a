import logging

import yaml

from openevolve_genesys import profile_choice
from openevolve_genesys.config import load_run_config


def test_without_an_accelerator_the_smoke_profile_is_announced_once(caplog, tmp_path):
    raw = yaml.safe_load(open("configs/matrix_mixer.yaml"))
    raw["genesys"]["profile"] = "seed"
    path = tmp_path / "seed.yaml"
    path.write_text(yaml.safe_dump(raw))
    with caplog.at_level(logging.INFO, logger="openevolve_genesys"):
        config = profile_choice.resolve_profile(load_run_config(path), None)
    assert config.genesys.evaluator.profile == "smoke"
    announcements = [r.message for r in caplog.records if "no accelerator" in r.message]
    assert len(announcements) == 1 and "--profile seed" in announcements[0]
    assert profile_choice.resolve_profile(load_run_config(path), "seed").genesys.evaluator.profile == "seed"


def test_the_controller_asks_for_the_backend_without_preallocating_and_leaves_the_environment(monkeypatch):
    seen = {}
    monkeypatch.delenv("XLA_PYTHON_CLIENT_PREALLOCATE", raising=False)
    monkeypatch.setattr(profile_choice.jax, "default_backend",
                        lambda: seen.setdefault("during", profile_choice.os.environ.get("XLA_PYTHON_CLIENT_PREALLOCATE")) and "gpu")
    assert profile_choice.controller_backend() == "gpu" and seen["during"] == "false"
    assert "XLA_PYTHON_CLIENT_PREALLOCATE" not in profile_choice.os.environ  # the evaluations inherit the user's setting
    monkeypatch.setenv("XLA_PYTHON_CLIENT_PREALLOCATE", "true")
    seen.clear()
    profile_choice.controller_backend()
    assert seen["during"] == "true" and profile_choice.os.environ["XLA_PYTHON_CLIENT_PREALLOCATE"] == "true"
