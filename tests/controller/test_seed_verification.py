"""Seed verification through the real controller, with an engine that answers at once from a known law (no
training): designs promoted to the top rung are trained there again at the run's seed + k, the history says so,
summary.json counts it, and --resume folds the same records."""

from __future__ import annotations

import hashlib
import json
import math

import pytest

from openevolve_genesys.config import load_run_config
from openevolve_genesys.controller import run as run_module
from openevolve_genesys.controller.run import GenesysRun
from openevolve_genesys.evaluation.results import Evaluation
from openevolve_genesys.training.rung_result import rungs_from_dict
from run_configs import events, run_config

SIZES = {"r0": 25_000, "r1": 57_000, "r2": 150_000, "r3": 340_000}


def _unit(*parts: object) -> float:
    """A deterministic draw in [0, 1) from its arguments."""
    return int(hashlib.sha256(repr(parts).encode()).hexdigest()[:12], 16) / 16**12


class LawEngine:
    """Losses from a power law: the template's are the baseline's, a child's are a fixed ratio of them by its
    code (0.97-1.01), and each seed adds its own +-0.002 nats, so seeds pair and differ."""

    slots = 1

    def __init__(self, evaluator):
        self.evaluator = evaluator
        self.trials: list[dict | None] = []

    def evaluate(self, source, rungs, **options):
        if options.get("seeds"):  # the baseline's other seeds in one job, one Evaluation each
            seeds = options.pop("seeds")
            first = self.evaluate(source, rungs, **options, trial={"seed": seeds[0]})
            first.seeds = [first] + [self.evaluate(source, rungs, **options, trial={"seed": s}) for s in seeds[1:]]
            return first
        trial = options.get("trial")
        self.trials.append(trial)
        seed = (trial or {}).get("seed", self.evaluator.profile.train.seed)
        ratio = 1.0 if source == self.evaluator.template else 0.97 + 0.04 * _unit(source)
        results = {}
        for name in rungs:
            loss = (4.7 + 232.0 / math.sqrt(SIZES[name])) * ratio + 0.004 * (_unit(seed, name, source) - 0.5)
            results[name] = {"rung": name, "n_params": SIZES[name], "final_eval_loss": loss, "train_seconds": 0.01}
        lr = options.get("learning_rate") or self.evaluator.profile.train.learning_rate
        return Evaluation("ok", {"outcome": "ok", "learning_rate": lr}, {}, rungs_from_dict(results),
                          timing={"train": 0.01})

    def shutdown(self):
        pass


@pytest.fixture
def engines(monkeypatch):
    made = []

    def make_engine(settings, evaluator, workers, devices=()):
        made.append(LawEngine(evaluator))
        return made[-1]

    monkeypatch.setattr(run_module, "make_engine", make_engine)
    return made


def test_a_run_spends_seed_verifications_at_the_top_rung_and_a_resume_folds_them_alike(tmp_path, engines):
    selector = {"explore_start": 0.0, "explore_end": 0.0, "confidence_threshold": 0.99, "halving_ratio": 2.0,
                "seed_verification_share": 0.5}
    config = run_config(tmp_path, "coefficient_dynamics", mutator="offline", workers=1, baseline_seeds=3,
                        selector=selector)
    output = tmp_path / "run"
    live = GenesysRun(load_run_config(config), output, iterations=12)
    live.run()
    seeds = [e for e in events(output) if e["type"] == "verify" and e["seed"]]
    assert seeds and all(e["rung"] == "r3" and e["outcome"] == "ok" for e in seeds)
    run_seed = live.evaluator.profile.train.seed
    assert sorted(t["seed"] for t in engines[0].trials[3:] if t) == sorted(run_seed + e["seed"] for e in seeds)
    for design_id in {e["design_id"] for e in seeds}:
        mine = [e for e in seeds if e["design_id"] == design_id]
        assert [e["seed"] for e in mine] == list(range(1, len(mine) + 1))  # in order, at most baseline seeds - 1
        top = live.database.records[design_id].rungs["r3"]
        assert top.losses[1:] == tuple(e["rungs"]["r3"]["final_eval_loss"] for e in mine)
        assert len(top.losses) <= 3
    summary = json.loads((output / "summary.json").read_text())
    assert summary["seed_verifications"]["runs"] == summary["seed_verifications"]["ok"] == len(seeds)

    resumed = GenesysRun(load_run_config(config), output)
    assert resumed._replay()
    assert ({k: r.to_dict() for k, r in resumed.database.records.items()}
            == {k: r.to_dict() for k, r in live.database.records.items()})
    assert resumed.ledger.seed_verifications == live.ledger.seed_verifications


def test_with_a_zero_share_a_run_spends_no_seed_verification(tmp_path, engines):
    selector = {"explore_start": 0.0, "explore_end": 0.0, "confidence_threshold": 0.99, "halving_ratio": 2.0,
                "seed_verification_share": 0.0}
    config = run_config(tmp_path, "coefficient_dynamics", mutator="offline", workers=1, baseline_seeds=3,
                        selector=selector)
    GenesysRun(load_run_config(config), tmp_path / "run", iterations=12).run()
    verifications = [e for e in events(tmp_path / "run") if e["type"] == "verify"]
    assert any(e["rung"] == "r3" for e in verifications) and not any(e["seed"] for e in verifications)
