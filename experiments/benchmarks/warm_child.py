"""Warm sandbox child: seconds per evaluation with the local engine's pre-started child and without, in one run.

    python experiments/benchmarks/warm_child.py --evaluations 4

Each mode runs ``--evaluations`` back-to-back evaluations of the framework's baseline on one tiny rung, through
a one-slot local engine (``genesys.engine.warm_child`` true or false), as a run's controller sends them. Every
evaluation trains another seed (``trial={"seed": i}``) and each mode has a fitness cache of its own, so every
evaluation is a sandboxed job and both modes train the same seeds. One untimed evaluation first fills the shared
token stream and JAX's persistent compilation cache, so neither mode compiles or tokenises on the clock. With
``--rounds 2`` the modes run cold, warm, warm, cold, so that a drift in the machine's load falls on both.

Printed per mode: wall seconds per evaluation (what the controller waits for), the start-up phase of each job
(``timing.startup``: process start, imports, backend; evaluation/timing.py) and whether the child was warm. The
first evaluation of a warm engine has no child waiting yet, so the warm mode is summarised over its warm jobs
and over all of them. Saving = cold minus warm per evaluation; ratio = cold / warm.
"""

from __future__ import annotations

import argparse
import dataclasses
import json
import os
import statistics
import tempfile
import time
from pathlib import Path
from typing import Any

from openevolve_genesys.engine.local import LocalEngine
from openevolve_genesys.evaluation import evaluator as evaluator_module
from openevolve_genesys.evaluation.evaluator import ScalingLawEvaluator
from openevolve_genesys.evaluation.sandbox import SandboxLimits
from openevolve_genesys.evaluation.settings import EvaluatorSettings

ROOT = Path(__file__).resolve().parents[2]
TINY = {
    "vocab_size": 512,
    "rungs": [{"d_model": 16, "n_layers": 1, "n_heads": 2}],
    "train": {"seq_len": 32, "batch_size": 8, "steps": 20, "eval_interval": 10, "chunk_steps": 10,
              "eval_tokens": 1024, "warmup_steps": 5, "learning_rate": 0.01},
}


def settings(framework: str, cache: Path) -> EvaluatorSettings:
    return EvaluatorSettings(framework=framework, profile="smoke", profile_overrides=TINY,
                             data={"source": "stdlib", "max_corpus_bytes": 300_000},
                             cache_path=str(cache / "fitness.sqlite"),
                             sandbox=SandboxLimits(wall_seconds=600, heartbeat_seconds=120, startup_seconds=300))


def run_mode(warm: bool, framework: str, evaluations: int, first_seed: int, cache: Path) -> list[dict[str, Any]]:
    evaluator = ScalingLawEvaluator(settings(framework, cache))
    evaluator.data_fingerprint()  # the parent's own data check, before the clock starts
    engine = LocalEngine(evaluator, devices=["cpu"], warm_child=warm)
    warmth: list[bool] = []
    original = evaluator_module.run_in_sandbox

    def recording(*args: Any, **kwargs: Any) -> Any:
        result = original(*args, **kwargs)
        warmth.append(result.warm)
        return result

    evaluator_module.run_in_sandbox = recording
    rows = []
    try:
        for i in range(evaluations):
            start = time.perf_counter()
            evaluation = engine.evaluate(evaluator.template, ["r0"], trial={"seed": first_seed + i})
            seconds = time.perf_counter() - start
            if evaluation.outcome != "ok":
                raise SystemExit(f"evaluation {i} failed ({evaluation.outcome}): {evaluation.artifacts.get('message')}")
            rows.append({"seconds": seconds, "startup": evaluation.timing.get("startup", 0.0), "warm": warmth[-1],
                         "loss": evaluation.rungs["r0"].final_eval_loss, "timing": evaluation.timing})
            print(f"{'warm' if warm else 'cold'} {i}: {seconds:.2f} s, start-up {rows[-1]['startup']:.2f} s, "
                  f"child {'warm' if warmth[-1] else 'cold'}", flush=True)
    finally:
        evaluator_module.run_in_sandbox = original
        engine.shutdown()
    return rows


def summary(rows: list[dict[str, Any]]) -> dict[str, Any]:
    phases = sorted({phase for r in rows for phase in r["timing"]})
    return {"n": len(rows), "seconds": statistics.mean(r["seconds"] for r in rows),
            "startup": statistics.mean(r["startup"] for r in rows),
            "phases": {p: round(statistics.mean(r["timing"].get(p, 0.0) for r in rows), 3) for p in phases}}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--framework", default="coefficient_dynamics")
    parser.add_argument("--evaluations", type=int, default=4, help="back-to-back evaluations per mode and round")
    parser.add_argument("--rounds", type=int, default=1, help="1: cold then warm; 2: cold, warm, warm, cold")
    parser.add_argument("--out", default=str(ROOT / "experiments/benchmarks/results/warm_child.json"))
    args = parser.parse_args()
    if args.evaluations < 2 or args.rounds not in (1, 2):
        raise SystemExit("--evaluations must be >= 2 (a warm engine's first job is cold) and --rounds 1 or 2")

    work = Path(tempfile.mkdtemp(prefix="warm_child-"))
    os.environ["GENESYS_CACHE_DIR"] = str(work / "root")  # tokenizer and compiled programs, shared by both modes
    prime = ScalingLawEvaluator(settings(args.framework, work / "prime"))
    prime.evaluate(prime.template, ["r0"], trial={"seed": 0})
    order = [False, True] if args.rounds == 1 else [False, True, True, False]
    rows: dict[str, list[dict[str, Any]]] = {"cold": [], "warm": []}
    for k, warm in enumerate(order):
        # Seeds 1..N in every mode and round: the same trainings, each in a fitness cache of its own.
        rows["warm" if warm else "cold"] += run_mode(warm, args.framework, args.evaluations, 1, work / f"mode{k}")
    cold, warm_all = summary(rows["cold"]), summary(rows["warm"])
    warm_only = summary([r for r in rows["warm"] if r["warm"]])
    same = all(a["loss"] == b["loss"] for a, b in zip(rows["cold"], rows["warm"]))
    print(f"{'mode':<22}{'n':>3}{'s / evaluation':>16}{'start-up s':>12}")
    for name, s in (("cold", cold), ("warm (warm jobs)", warm_only), ("warm (all jobs)", warm_all)):
        print(f"{name:<22}{s['n']:>3}{s['seconds']:>16.2f}{s['startup']:>12.2f}")
    saving = cold["seconds"] - warm_only["seconds"]
    print(f"per-evaluation saving (warm jobs): {saving:.2f} s wall, {cold['startup'] - warm_only['startup']:.2f} s "
          f"start-up; ratio cold / warm {cold['seconds'] / warm_only['seconds']:.2f} wall, "
          f"{cold['startup'] / warm_only['startup']:.2f} start-up")
    for name, s in (("cold", cold), ("warm (warm jobs)", warm_only)):
        print(f"{name} phases (mean s): " + ", ".join(f"{p} {v:.2f}" for p, v in s["phases"].items()))
    print(f"same losses warm and cold: {same}")
    Path(args.out).parent.mkdir(parents=True, exist_ok=True)
    Path(args.out).write_text(json.dumps({"framework": args.framework, "evaluations": args.evaluations,
                                          "rounds": args.rounds, "cpus": len(os.sched_getaffinity(0)),
                                          "rows": rows, "cold": cold, "warm_jobs": warm_only, "warm_all": warm_all,
                                          "same_losses": same}, indent=1))


if __name__ == "__main__":
    main()
