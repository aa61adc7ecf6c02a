"""The controller asks one model per attempt: credit's pick, or a weighted draw; the choice is recorded and
carried through a re-queue, and the run writes its per-operator credit table."""

import json
import random

import yaml

from openevolve_genesys.config import load_run_config
from openevolve_genesys.controller.jobs import DesignAttempt
from openevolve_genesys.controller.ledger import BASELINE_ID
from openevolve_genesys.controller.run import GenesysRun
from openevolve_genesys.selection.credit import OPERATORS_FILE
from run_configs import run_config

SIZES = {"r0": 25_000, "r1": 57_000, "r2": 150_000, "r3": 340_000}


def two_model_run(tmp_path, credit: bool, weights=(0.5, 0.5)) -> GenesysRun:
    path = run_config(tmp_path, "coefficient_dynamics", selector={"credit": credit, "verify_share": 0.0})
    raw = yaml.safe_load(path.read_text())
    raw["llm"] = {"models": [{"name": name, "api_base": "http://127.0.0.1:9/v1", "api_key": "k", "weight": w}
                             for name, w in zip(["weak", "strong"], weights)]}
    path.write_text(yaml.safe_dump(raw))
    return GenesysRun(load_run_config(str(path)), tmp_path / "run")


def rungs(scale: float, names=("r0", "r1", "r2", "r3")) -> dict:
    return {r: {"n_params": SIZES[r], "final_eval_loss": scale * (4.7 + 232.0 * SIZES[r] ** -0.5)} for r in names}


def design_event(run: GenesysRun, i: int, model: str, scale: float, quadrant: str = "design_exploit") -> dict:
    code = run.evaluator.template.replace("math.sqrt(", f"{1 + i / 100} * math.sqrt(", 1)
    return {"type": "design", "attempt": i, "id": f"d{i}", "seed_id": BASELINE_ID, "unit": "Kernel",
            "operator": "Kernel:x", "model": model, "quadrant": quadrant, "class": "ok", "failure": None,
            "message": "", "code": code, "notes": [], "seconds": 1.0, "outcome": "ok",
            "rungs": rungs(scale, ("r0", "r1")), "metrics": {}, "requeued": False, "quarantined": False}


def test_credit_sends_attempts_to_the_model_whose_children_gain(tmp_path):
    run = two_model_run(tmp_path, credit=True)
    run.ledger.apply({"type": "baseline", "id": BASELINE_ID, "code": run.evaluator.template,
                      "rungs": rungs(1.0), "metrics": {}})
    for i in range(1, 9):
        strong = i % 2 == 0
        run.ledger.apply(design_event(run, i, "strong" if strong else "weak", 0.97 if strong else 1.03))
    job = run._next_job([])
    assert isinstance(job, DesignAttempt)
    assert (job.model, job.model_index) == ("strong", 1) and job.credit["model"] == "strong"
    assert job.quadrant in {"design_exploit", "design_explore"}
    # A re-queued attempt asks the same model with the same prompt.
    job.attempt_class = "stalled"
    assert run._retry_fate(job)["requeued"]
    retry = run._requeued[0]
    assert (retry.model, retry.model_index, retry.prompt, retry.quadrant) == ("strong", 1, job.prompt, job.quadrant)
    assert run.database.records["d2"].operator["quadrant"] == "design_exploit"
    run.save()
    table = json.loads((run.output / OPERATORS_FILE).read_text())
    by = {(r["dimension"], r["arm"]): r for r in table}
    assert by[("model", "strong")]["improved"] == 4 and by[("model", "weak")]["improved"] == 0
    assert by[("unit", "Kernel")]["children"] == 8 and by[("unit", "Readout")]["children"] == 0


def test_without_credit_models_are_drawn_by_their_weights(tmp_path):
    run = two_model_run(tmp_path, credit=False, weights=(0.8, 0.2))
    run.rng = random.Random(3)
    picks = [run._model_index(None) for _ in range(400)]
    assert 0.72 < picks.count(0) / 400 < 0.88
