"""Run folders built by hand for the validation tests: a config.yaml and a history.jsonl whose events carry
every field the run's ledger reads, so they replay exactly as a real run's would."""

import json
from pathlib import Path
from types import SimpleNamespace

import pytest
import yaml

ROOT = Path(__file__).resolve().parents[2]
TEMPLATE = (ROOT / "frameworks" / "coefficient_dynamics.py").read_text()
# A real design: the softmax temperature halved (still causal, finite, learnable).
HALF_SCALE = TEMPLATE.replace("logits * (1.0 / math.sqrt", "logits * (0.5 / math.sqrt")
# Two tiny rungs trained 20 steps: a sandboxed training takes a few seconds.
TINY = {
    "vocab_size": 512,
    "rungs": [{"name": "r0", "d_model": 16, "n_layers": 1, "n_heads": 2},
              {"name": "r1", "d_model": 24, "n_layers": 1, "n_heads": 2}],
    "train": {"seq_len": 32, "batch_size": 8, "steps": 20, "eval_interval": 20, "chunk_steps": 20,
              "eval_tokens": 1024, "warmup_steps": 5, "learning_rate": 0.01},
}
THREE_RUNGS = [*TINY["rungs"], {"name": "r2", "d_model": 32, "n_layers": 1, "n_heads": 2}]
SHAPES = {r["name"]: r for r in THREE_RUNGS}
N_PARAMS = {"r0": 3_000, "r1": 7_000, "r2": 15_000}


def rung_results(losses: dict[str, float]) -> dict[str, dict]:
    return {name: {"rung": name, "n_params": N_PARAMS[name], "final_eval_loss": loss, "train_seconds": 1.0,
                   "cache_hit": None, "steps": TINY["train"]["steps"],
                   **{k: v for k, v in SHAPES[name].items() if k != "name"}} for name, loss in losses.items()}


def swept(rate: float) -> dict:
    """A tune sweep's history record that chose ``rate``."""
    return {"best_learning_rate": rate, "base_learning_rate": 0.01, "tuned": True, "note": "", "seconds": 1.0,
            "trained": 0, "target": {}, "trials": []}


def design_event(design_id: str, attempt: int, code: str | None, losses: dict[str, float], *,
                 learning_rate: float | None = None, outcome: str = "ok", attempt_class: str = "ok",
                 tune: dict | None = None) -> dict:
    return {"type": "design", "attempt": attempt, "id": design_id, "seed_id": "baseline", "unit": "Coefficients",
            "operator": f"Coefficients:{design_id}", "model": "offline", "class": attempt_class, "failure": None,
            "message": "", "code": code, "notes": [], "seconds": 2.0, "llm_seconds": 0.0,
            "learning_rate": learning_rate, "tune": tune, "outcome": outcome,
            "rungs": rung_results(losses) if outcome == "ok" else {}, "metrics": {}, "artifacts": {},
            "requeues": 0, "requeued": False, "quarantined": False}


def verify_event(design_id: str, rung: str, loss: float) -> dict:
    return {"type": "verify", "design_id": design_id, "rung": rung, "outcome": "ok", "class": "ok",
            "rungs": rung_results({rung: loss}), "metrics": {}, "seconds": 1.0, "requeues": 0,
            "requeued": False, "quarantined": False}


def write_run(folder: Path, events: list[dict], *, rungs: list[dict] | None = None) -> Path:
    """A run folder with the shipped coefficient-dynamics config on the tiny ladder (``rungs`` replaces
    its rungs) and the given history."""
    raw = yaml.safe_load((ROOT / "configs" / "coefficient_dynamics.yaml").read_text())
    ladder = {**TINY, "rungs": rungs or TINY["rungs"]}
    raw["genesys"].update({"profile_overrides": ladder, "tune": {"enabled": False},
                           "data": {"source": "stdlib", "max_corpus_bytes": 300_000},
                           "cache_path": str(folder.parent / "fitness.sqlite")})
    raw["evaluator"]["timeout"] = 300  # the wall-clock limit of a job (genesys.sandbox.wall_seconds)
    raw["genesys"]["sandbox"].update(heartbeat_seconds=120, startup_seconds=300)
    folder.mkdir(parents=True, exist_ok=True)
    (folder / "config.yaml").write_text(yaml.safe_dump(raw))
    (folder / "history.jsonl").write_text("".join(json.dumps(e) + "\n" for e in events))
    return folder


@pytest.fixture
def runs():
    """The builders above, for test modules (with --import-mode=importlib they cannot import this file)."""
    return SimpleNamespace(template=TEMPLATE, half_scale=HALF_SCALE, rung_results=rung_results,
                           design_event=design_event, verify_event=verify_event, write_run=write_run)


@pytest.fixture
def three_rung_run(tmp_path):
    """Baseline at three rungs (tuned rate); a confident design (three rungs, modest gain), a one-rung
    design with a larger apparent gain (not confident), an attempt without code and a design that failed
    its checks."""
    events = [
        {"type": "baseline", "id": "baseline", "code": TEMPLATE, "metrics": {}, "learning_rate": 0.02,
         "tune": swept(0.02), "rungs": rung_results({"r0": 6.0, "r1": 5.6, "r2": 5.3})},
        design_event("steady", 1, HALF_SCALE, {"r0": 5.97}, learning_rate=0.015, tune=swept(0.015)),
        verify_event("steady", "r1", 5.57),
        verify_event("steady", "r2", 5.27),
        design_event("lucky", 2, HALF_SCALE.replace("0.5 /", "0.6 /"), {"r0": 5.8}),
        design_event("no-diff", 3, None, {}, outcome="syntax", attempt_class="invalid"),
        design_event("acausal", 4, TEMPLATE.replace("# acausal", ""), {}, outcome="invalid", attempt_class="invalid"),
    ]
    return write_run(tmp_path / "run", events, rungs=THREE_RUNGS)
