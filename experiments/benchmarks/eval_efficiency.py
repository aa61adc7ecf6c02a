"""Evaluation efficiency: seconds per design attempt with tune mode on, the old path against the new, in one run.

    python experiments/benchmarks/eval_efficiency.py --designs 3

An attempt here is what a design costs before it is charged: the learning-rate sweep (the config's
``genesys.tune``: 3 rates on the cheap target) and the first rung at the winning rate. The old path runs
every trial and the rung as its own sandboxed job (``tune.same_job: false``: one start-up and one compile
per trial, and no persistent compile cache, which the previous release's baked-in rates could not hit
within an attempt); the new path runs them in one job whose trials and rung share one compiled program per
shape, with the persistent cache on.
Each path gets a fresh cache directory (fitness results, compiled programs) and the same designs (the
template with its attention temperature scaled), so neither answers the other's work; both compare with
one baseline trained beforehand. The ladder is the smoke profile cut to its first rung, which is all an
attempt trains. Printed: seconds per attempt, the training share of the wall time, the ratios, and whether
both paths chose the same rates and reached the same losses.
"""

from __future__ import annotations

import argparse
import dataclasses
import json
import os
import tempfile
import time
from pathlib import Path
from typing import Any

from openevolve_genesys.config import load_run_config
from openevolve_genesys.evaluation.evaluator import Evaluation, ScalingLawEvaluator
from openevolve_genesys.evaluation.timing import add_timing
from openevolve_genesys.evaluation.tuning import TuneBudget, evaluate_tuned, tune_learning_rate
from openevolve_genesys.training.runtime import CACHE_LIMIT_ENV, DEFAULT_CACHE_MB

ROOT = Path(__file__).resolve().parents[2]


class Recorder:
    """An engine that runs the evaluator in process and keeps every job's time accounting."""

    def __init__(self, evaluator: ScalingLawEvaluator):
        self.evaluator, self.timing, self.jobs = evaluator, {}, 0

    def evaluate(self, source: str, rungs: Any, **options: Any) -> Evaluation:
        evaluation = self.evaluator.evaluate(source, rungs, **options)
        add_timing(self.timing, evaluation.timing)
        self.jobs += 1
        return evaluation


def designs(template: str, count: int) -> list[str]:
    """``count`` distinct designs: the template's score scale times 1.1, 1.2, ..."""
    if "math.sqrt(" not in template:
        raise SystemExit("this framework's template has no math.sqrt( to vary; pick coefficient_dynamics")
    return [template.replace("math.sqrt(", f"{1 + 0.1 * (i + 1):.1f} * math.sqrt(", 1) for i in range(count)]


def run_path(name: str, settings: Any, sources: list[str], baseline: Evaluation, cache: Path) -> dict[str, Any]:
    os.environ["GENESYS_CACHE_DIR"] = str(cache / "root")
    # The previous release baked each rate into its program, so its trials never shared a compiled program,
    # not even through the persistent cache: the old path runs without it, which is what it got.
    os.environ[CACHE_LIMIT_ENV] = "0" if name == "old" else str(DEFAULT_CACHE_MB)
    evaluator = ScalingLawEvaluator(dataclasses.replace(settings, cache_path=str(cache / "fitness.sqlite")))
    evaluator.adopt_baseline(baseline)
    evaluator.data_fingerprint()  # the token stream is prepared before the clock starts, for both paths
    recorder, tune = Recorder(evaluator), settings.tune
    rows = []
    start = time.perf_counter()
    for source in sources:
        t0 = time.perf_counter()
        if name == "old":
            sweep = tune_learning_rate(evaluator, source, tune, engine=recorder, budget=TuneBudget())
            evaluation = recorder.evaluate(source, ["r0"], learning_rate=sweep.best_learning_rate)
        else:
            evaluation = evaluate_tuned(recorder, evaluator.profile, source, ["r0"], tune, budget=TuneBudget())
            sweep = evaluation.tune
        rows.append({"seconds": time.perf_counter() - t0, "learning_rate": sweep.best_learning_rate,
                     "trial_losses": [t.loss for t in sweep.trials], "outcome": evaluation.outcome,
                     "r0_loss": evaluation.rungs["r0"].final_eval_loss if "r0" in evaluation.rungs else None,
                     "compiles": evaluation.artifacts.get("compiles")})
        print(f"{name}: design {len(rows)} {rows[-1]['seconds']:.1f} s, lr {sweep.best_learning_rate:.4g}, "
              f"r0 loss {rows[-1]['r0_loss']}", flush=True)
    wall = time.perf_counter() - start
    return {"wall_seconds": wall, "per_attempt": wall / len(sources), "jobs": recorder.jobs,
            "timing": recorder.timing, "train_share": recorder.timing.get("train", 0.0) / wall, "designs": rows}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--framework", default="coefficient_dynamics")
    parser.add_argument("--designs", type=int, default=3)
    parser.add_argument("--out", default=str(ROOT / "experiments/benchmarks/results/eval_efficiency.json"))
    args = parser.parse_args()

    settings = load_run_config(ROOT / "configs" / f"{args.framework}.yaml").genesys.evaluator
    first = {"rungs": [{"name": "r0", "d_model": 32, "n_layers": 2, "n_heads": 2}]}  # smoke's first rung
    settings = dataclasses.replace(settings, profile="smoke", profile_overrides={**settings.profile_overrides, **first},
                                   tune=dataclasses.replace(settings.tune, enabled=True))
    work = Path(tempfile.mkdtemp(prefix="eval_efficiency-"))
    os.environ["GENESYS_CACHE_DIR"] = str(work / "baseline" / "root")
    base = ScalingLawEvaluator(dataclasses.replace(settings, cache_path=str(work / "baseline" / "fitness.sqlite")))
    baseline = base.baseline()
    sources = designs(base.template, args.designs)
    results = {name: run_path(name, settings, sources, baseline, work / name) for name in ("old", "new")}
    old, new = results["old"], results["new"]
    same_rates = [a["learning_rate"] == b["learning_rate"] for a, b in zip(old["designs"], new["designs"])]
    loss_gap = max(abs(a["r0_loss"] - b["r0_loss"]) / abs(a["r0_loss"]) for a, b in zip(old["designs"], new["designs"])
                   if a["r0_loss"] is not None and b["r0_loss"] is not None)
    for name, r in results.items():
        phases = ", ".join(f"{k} {v:.0f} s" for k, v in r["timing"].items())
        print(f"{name}: {r['per_attempt']:.1f} s per attempt, {r['jobs']} jobs, training {r['train_share']:.0%} "
              f"of the wall time ({phases})")
    print(f"new / old seconds per attempt: {new['per_attempt'] / old['per_attempt']:.2f} "
          f"({old['per_attempt'] / new['per_attempt']:.1f}x faster); training share {old['train_share']:.2f} -> "
          f"{new['train_share']:.2f}")
    print(f"same rates chosen: {sum(same_rates)}/{len(same_rates)}; largest relative r0 loss difference {loss_gap:.1e}")
    Path(args.out).parent.mkdir(parents=True, exist_ok=True)
    Path(args.out).write_text(json.dumps({"framework": args.framework, "designs": args.designs, **results,
                                          "same_rates": same_rates, "max_relative_loss_difference": loss_gap},
                                         indent=1))
    print(f"saved {args.out}")


if __name__ == "__main__":
    main()
