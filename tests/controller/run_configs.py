"""Run YAMLs for end-to-end tests: a shipped config on the smoke ladder with shorter training."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import yaml

ROOT = Path(__file__).resolve().parents[2]
# The smoke ladder's four rungs, trained 60 steps instead of 300: enough for the checks to see learning.
SHORT_TRAINING = {"train": {"steps": 60, "warmup_steps": 10, "eval_interval": 30, "chunk_steps": 30}}


def run_config(tmp_path: Path, framework: str, **genesys: Any) -> Path:
    """The shipped config with short training; tune mode is off unless ``tune=`` is given (it adds trials), and the
    baseline trains one seed unless ``baseline_seeds=`` is given: the default's extra seeds are a baseline job more
    in every run, and the tests of the seeds themselves ask for them (test_run.py, test_seed_verification.py)."""
    raw = yaml.safe_load((ROOT / "configs" / f"{framework}.yaml").read_text())
    raw["checkpoint_interval"] = 2
    raw["genesys"].update({"profile_overrides": SHORT_TRAINING, "tune": {"enabled": False}, "baseline_seeds": 1,
                           **genesys})
    raw["genesys"]["sandbox"].update(heartbeat_seconds=120, startup_seconds=300)
    path = tmp_path / f"{framework}.yaml"
    path.write_text(yaml.safe_dump(raw))
    return path


def events(output: Path) -> list[dict[str, Any]]:
    path = output / "history.jsonl"
    return [json.loads(line) for line in path.read_text().splitlines()] if path.exists() else []
