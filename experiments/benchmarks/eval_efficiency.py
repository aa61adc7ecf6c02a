"""Evaluation efficiency: seconds per design attempt with tune mode on, three ways of running it, in one run.

    python experiments/benchmarks/eval_efficiency.py --designs 3
    python experiments/benchmarks/eval_efficiency.py --designs 3 --paths sequential,batched   # the batched grid only

An attempt here is what a design costs before it is charged: the learning-rate sweep (the config's
``genesys.tune``: 3 rates on the cheap target) and the first rung at the winning rate. The old path runs
every trial and the rung as its own sandboxed job (``tune.same_job: false``: one start-up and one compile
per trial, and no persistent compile cache, which the previous release's baked-in rates could not hit
within an attempt); the sequential path runs them in one job whose trials, one after another, and rung share
one compiled program per shape (``tune.batched: false``, the default on a CPU), with the persistent cache on;
the batched path is the same job with the grid's rates trained side by side as one vmapped program
(``tune.batched: true``, the default on an accelerator), then the rung alone. The sequential and batched paths
run as an engine slot runs them, with a pre-started sandbox child (``genesys.engine.warm_child``); the old
path starts every job's child cold, as the previous release did.
Each path gets a fresh cache directory (fitness results, compiled programs) and the same designs (the
template with its attention temperature scaled), so none answers another's work; all compare with one
baseline trained beforehand. Design by design, the paths take turns, the first path of one design going last
for the next, so that a change in the machine's load falls on every path alike. The ladder is the smoke
profile cut to its first rung, which is all an attempt trains. Printed: seconds per attempt, the training
share of the wall time, the ratios to the first path given (``--paths``) and of the batched path to the
sequential one, and whether the paths chose the same rates and reached the same trial and rung losses.
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
from openevolve_genesys.evaluation.sandbox import WarmSlot
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


PATHS = ("old", "sequential", "batched")


def compare(ours: dict[str, Any], theirs: dict[str, Any]) -> dict[str, Any]:
    """Our seconds per attempt over theirs, and whether the two paths chose and measured alike, design by design."""
    rows = list(zip(ours["designs"], theirs["designs"]))
    return {"seconds_ratio": ours["per_attempt"] / theirs["per_attempt"],
            "same_rates": [a["learning_rate"] == b["learning_rate"] for a, b in rows],
            "max_relative_trial_loss_difference": max(largest_difference(a["trial_losses"], b["trial_losses"])
                                                      for a, b in rows),
            "max_relative_r0_loss_difference": max(largest_difference([a["r0_loss"]], [b["r0_loss"]])
                                                   for a, b in rows)}


class AttemptPath:
    """One way of running an attempt, with its own caches and its own account of the jobs' seconds."""

    def __init__(self, name: str, settings: Any, baseline: Evaluation, cache: Path):
        self.name, self.cache = name, cache
        tune = dataclasses.replace(settings.tune, same_job=name != "old", batched=name == "batched")
        self.activate()
        self.evaluator = ScalingLawEvaluator(dataclasses.replace(settings, cache_path=str(cache / "fitness.sqlite"),
                                                                 tune=tune))
        self.evaluator.adopt_baseline(baseline)
        self.evaluator.data_fingerprint()  # the token stream is prepared before the clock starts, for every path
        self.recorder, self.tune, self.rows, self.wall = Recorder(self.evaluator), tune, [], 0.0
        # The release's engine slot keeps a pre-started sandbox child (genesys.engine.warm_child); the previous
        # release started every job's child cold.
        self.slot = WarmSlot() if name != "old" else None

    def activate(self) -> None:
        """This path's cache folders, read by the evaluator and its sandboxed children at every job."""
        os.environ["GENESYS_CACHE_DIR"] = str(self.cache / "root")
        # The previous release baked each rate into its program, so its trials never shared a compiled program,
        # not even through the persistent cache: the old path runs without it, which is what it got.
        os.environ[CACHE_LIMIT_ENV] = "0" if self.name == "old" else str(DEFAULT_CACHE_MB)

    def attempt(self, source: str) -> None:
        self.activate()
        t0 = time.perf_counter()
        if self.slot is None:
            sweep = tune_learning_rate(self.evaluator, source, self.tune, engine=self.recorder, budget=TuneBudget())
            evaluation = self.recorder.evaluate(source, ["r0"], learning_rate=sweep.best_learning_rate)
        else:
            with self.slot.active():
                evaluation = evaluate_tuned(self.recorder, self.evaluator.profile, source, ["r0"], self.tune,
                                            budget=TuneBudget())
            sweep = evaluation.tune
        seconds = time.perf_counter() - t0
        self.wall += seconds
        self.rows.append({"seconds": seconds, "learning_rate": sweep.best_learning_rate,
                          "trial_losses": [t.loss for t in sweep.trials], "trial_batch": [t.batch for t in sweep.trials],
                          "outcome": evaluation.outcome, "r0_loss": evaluation.rungs["r0"].final_eval_loss if "r0" in evaluation.rungs else None,
                          "compiles": evaluation.artifacts.get("compiles"), "load_average_1min": os.getloadavg()[0]})
        print(f"{self.name}: design {len(self.rows)} {seconds:.1f} s, lr {sweep.best_learning_rate:.4g}, "
              f"r0 loss {self.rows[-1]['r0_loss']}, compiles {self.rows[-1]['compiles']}, "
              f"load {self.rows[-1]['load_average_1min']:.1f}", flush=True)

    def summary(self) -> dict[str, Any]:
        timing = self.recorder.timing
        return {"wall_seconds": self.wall, "per_attempt": self.wall / len(self.rows), "jobs": self.recorder.jobs,
                "timing": timing, "train_share": timing.get("train", 0.0) / self.wall, "designs": self.rows}


def largest_difference(a: list[float | None], b: list[float | None]) -> float:
    """The largest relative difference of two lists of losses (inf when one failed where the other did not)."""
    worst = 0.0
    for x, y in zip(a, b):
        if x is None or y is None:
            worst = worst if x is y else float("inf")
        else:
            worst = max(worst, abs(x - y) / abs(y))
    return worst


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--framework", default="coefficient_dynamics")
    parser.add_argument("--designs", type=int, default=3)
    parser.add_argument("--paths", default=",".join(PATHS),
                        help=f"comma-separated, from {', '.join(PATHS)}; ratios are to the first (default: all three)")
    parser.add_argument("--out", default=str(ROOT / "experiments/benchmarks/results/eval_efficiency.json"))
    args = parser.parse_args()
    names = [n.strip() for n in args.paths.split(",") if n.strip()]
    unknown = [n for n in names if n not in PATHS]
    if unknown or len(set(names)) != len(names) or not names:
        parser.error(f"--paths takes distinct names from {', '.join(PATHS)}, got {args.paths!r}")

    settings = load_run_config(ROOT / "configs" / f"{args.framework}.yaml").genesys.evaluator
    first = {"rungs": [{"name": "r0", "d_model": 32, "n_layers": 2, "n_heads": 2}]}  # smoke's first rung
    settings = dataclasses.replace(settings, profile="smoke", profile_overrides={**settings.profile_overrides, **first},
                                   tune=dataclasses.replace(settings.tune, enabled=True))
    work = Path(tempfile.mkdtemp(prefix="eval_efficiency-"))
    os.environ["GENESYS_CACHE_DIR"] = str(work / "baseline" / "root")
    base = ScalingLawEvaluator(dataclasses.replace(settings, cache_path=str(work / "baseline" / "fitness.sqlite")))
    baseline = base.baseline()
    sources = designs(base.template, args.designs)
    paths = [AttemptPath(name, settings, baseline, work / name) for name in names]
    for i, source in enumerate(sources):
        for path in paths[i % len(paths):] + paths[:i % len(paths)]:  # each design, another path goes first
            path.attempt(source)
    for path in paths:
        if path.slot is not None:
            path.slot.close()
    results = {path.name: path.summary() for path in paths}
    for name, r in results.items():
        phases = ", ".join(f"{k} {v:.0f} s" for k, v in r["timing"].items())
        print(f"{name}: {r['per_attempt']:.1f} s per attempt, {r['jobs']} jobs, training {r['train_share']:.0%} "
              f"of the wall time ({phases})")
    pairs = [(name, names[0]) for name in names[1:]]
    if "sequential" in results and "batched" in results and ("batched", "sequential") not in pairs:
        pairs.append(("batched", "sequential"))
    comparisons = {f"{a}/{b}": compare(results[a], results[b]) for a, b in pairs}
    for label, c in comparisons.items():
        print(f"{label} seconds per attempt: {c['seconds_ratio']:.2f}; same rates chosen: "
              f"{sum(c['same_rates'])}/{len(c['same_rates'])}; largest relative trial loss difference "
              f"{c['max_relative_trial_loss_difference']:.1e}, r0 loss {c['max_relative_r0_loss_difference']:.1e}")
    Path(args.out).parent.mkdir(parents=True, exist_ok=True)
    Path(args.out).write_text(json.dumps({"framework": args.framework, "designs": args.designs, "paths": names,
                                          "cpus": os.cpu_count(), **results, "comparisons": comparisons}, indent=1))
    print(f"saved {args.out}")


if __name__ == "__main__":
    main()
