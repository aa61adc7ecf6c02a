"""Benchmark: operator credit off and on in real offline evolutions on the smoke ladder, a few seeds.

    python experiments/benchmarks/credit_smoke.py [--seeds 0 1 2] [--attempts 12] [--reach 0.05]

The simulated A/B (``credit_ab.py``) has the statistical power; this one checks that the flag does what it
says on the real system: the shipped coefficient-dynamics config, offline mutator, one worker, the smoke
ladder at 300 steps, run once per (seed, arm) with ``random_seed`` = seed and ``genesys.selector.credit``
off or on. Tune mode is off unless ``--tune`` (it does not interact with credit and takes ~40% of a run).
All runs share one fitness cache under OUTPUT, so an arm that makes a child the other arm already trained
gets it from the cache (training is deterministic, so the result is the one it would have trained); every
such child is still charged as an attempt. Each run's designs are valued as its latest checkpoint values
them (against its own baseline: the same function in every run, so the same losses).

Per run: the best utility reached (any confidence, and confident designs only, which is how a run crowns
its best), the reported design's utility, the charged attempts until a confident design reached
``--reach`` nats, and how the credited units were spread. Results go to OUTPUT/credit_smoke.json and, with
``--record``, to experiments/benchmarks/results/credit_smoke.json.
"""

from __future__ import annotations

import argparse
import json
import logging
import os
import statistics
import sys
import time
from pathlib import Path
from typing import Any

import yaml

ROOT = Path(__file__).resolve().parents[2]
ARMS = {"off": False, "credit": True}


def write_config(output: Path, seed: int, credit: bool, tune: bool) -> Path:
    raw = yaml.safe_load((ROOT / "configs" / "coefficient_dynamics.yaml").read_text())
    raw.update(random_seed=seed, checkpoint_interval=4)
    raw["genesys"].update(mutator="offline", profile="smoke", workers=1)
    raw["genesys"]["tune"]["enabled"] = tune
    raw["genesys"].setdefault("selector", {})["credit"] = credit
    path = output / f"{'credit' if credit else 'off'}_s{seed}.yaml"
    path.write_text(yaml.safe_dump(raw, sort_keys=False))
    return path


def measure(run_dir: Path, reach: float) -> dict[str, Any]:
    """What one finished run reached, read back as ``openevolve report`` reads it."""
    from openevolve_genesys.report.load import load_run
    from openevolve_genesys.report.plots import utility_progress

    run = load_run(run_dir)
    progress = utility_progress(run)
    reached = next((attempt for attempt, best in zip(progress.attempts, progress.best_confident)
                    if best is not None and best >= reach), None)
    designs = [e for e in run.events if e["type"] == "design" and e.get("attempt") is not None]
    units: dict[str, int] = {}
    for event in designs:
        unit = event.get("unit") or "?"
        units[unit] = units.get(unit, 0) + 1
    reported = run.records.get(run.best_id) if run.best_id else None
    return {"run_dir": str(run_dir), "attempts": progress.attempts[-1],
            "best_any": progress.best_any[-1], "best_confident": progress.best_confident[-1],
            "reported": reported.utility if reported else None,
            "reported_operator": reported.operator.get("operator") if reported else None,
            "reached_at": reached,
            "valid": sum(e.get("outcome") == "ok" for e in designs),
            "verifications": sum(e["type"] == "verify" for e in run.events),
            "units": dict(sorted(units.items())), "job_seconds": progress.seconds[-1]}


def _mean_sd(values: list[float | None]) -> str:
    present = [v for v in values if v is not None]
    if not present:
        return "-"
    sd = statistics.stdev(present) if len(present) > 1 else 0.0
    return f"{statistics.fmean(present):+.4f} +- {sd:.4f} (n={len(present)})"


def table(results: dict[str, dict[str, dict[str, Any]]], attempts: int, reach: float) -> list[str]:
    lines = ["| seed | arm | best utility, any | best utility, confident | reported design | "
             f"attempts to a confident {reach:g} | valid / attempts | verifications | units mutated |",
             "|---|---|---|---|---|---|---|---|---|"]
    for seed, arms in results.items():
        for arm, r in arms.items():
            def show(v):
                return "-" if v is None else f"{v:+.4f}"
            lines.append(f"| {seed} | {arm} | {show(r['best_any'])} | {show(r['best_confident'])} | "
                         f"{show(r['reported'])} ({r['reported_operator']}) | {r['reached_at'] or 'never'} | "
                         f"{r['valid']} / {r['attempts']} | {r['verifications']} | "
                         f"{', '.join(f'{u} {n}' for u, n in r['units'].items())} |")
    lines.append("")
    for key in ("best_any", "best_confident", "reported"):
        per_arm = {arm: [results[s][arm][key] for s in results] for arm in ARMS}
        paired = [c - o for o, c in zip(per_arm["off"], per_arm["credit"]) if o is not None and c is not None]
        lines.append(f"{key}: off {_mean_sd(per_arm['off'])}; credit {_mean_sd(per_arm['credit'])}; "
                     f"credit minus off {_mean_sd(paired)}")
    for arm in ARMS:
        hits = [results[s][arm]["reached_at"] for s in results]
        lines.append(f"{arm}: reached a confident {reach:g} in {sum(h is not None for h in hits)}/{len(hits)} runs "
                     f"of {attempts} attempts, at {[h for h in hits]}")
    return lines


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--seeds", type=int, nargs="+", default=[0, 1, 2])
    parser.add_argument("--attempts", type=int, default=12, help="charged design attempts per run")
    parser.add_argument("--reach", type=float, default=0.05, help="the stated utility (nats)")
    parser.add_argument("--tune", action="store_true", help="keep tune mode on, as shipped")
    parser.add_argument("--output", type=Path, default=ROOT / "runs" / "bench_credit_smoke")
    parser.add_argument("--record", action="store_true", help="also write results/credit_smoke.json")
    args = parser.parse_args(argv)
    output = args.output.resolve()
    output.mkdir(parents=True, exist_ok=True)
    os.environ["GENESYS_CACHE_DIR"] = str(output / "cache")
    logging.basicConfig(level=logging.INFO, format="%(asctime)s %(levelname)s %(name)s: %(message)s")
    for noisy in ("jax", "absl", "httpx", "openevolve"):
        logging.getLogger(noisy).setLevel(logging.WARNING)
    from openevolve_genesys.cli import run

    results: dict[str, dict[str, dict[str, Any]]] = {}
    clock: dict[str, float] = {}
    for seed in args.seeds:
        for arm, credit in ARMS.items():
            run_dir = output / f"{arm}_s{seed}"
            config = write_config(output, seed, credit, args.tune)
            start = time.perf_counter()
            # An interrupted benchmark resumes each unfinished run; a finished one returns at once.
            run(str(config), iterations=args.attempts, output=str(run_dir), profile="smoke",
                resume=(run_dir / "history.jsonl").exists())
            clock[f"{arm}_s{seed}"] = round(time.perf_counter() - start, 1)
            results.setdefault(str(seed), {})[arm] = measure(run_dir, args.reach)
    lines = table(results, args.attempts, args.reach)
    print("\n".join(lines))
    payload = {"command": " ".join(sys.argv), "attempts": args.attempts, "reach": args.reach, "tune": args.tune,
               "wall_seconds": clock, "runs": results}
    (output / "credit_smoke.json").write_text(json.dumps(payload, indent=1))
    if args.record:
        (ROOT / "experiments" / "benchmarks" / "results" / "credit_smoke.json").write_text(json.dumps(payload, indent=1))
    return 0


if __name__ == "__main__":
    sys.exit(main())
