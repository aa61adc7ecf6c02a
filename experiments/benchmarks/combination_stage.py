"""Benchmark: a combination stage versus continuing the base stage, on the same extra budget.

    python experiments/benchmarks/combination_stage.py [--base 12] [--extra 8] [--output runs/bench_combination]

1. A base run: the shipped coefficient-dynamics config (smoke ladder, tune mode as shipped, offline mutator)
   for ``--base`` design attempts.
2. Its folder is copied. (a) The combination stage ``hybrids`` (pool: the top 3 confidently valued designs
   and the baseline) runs ``--extra`` attempts over the original; (b) the copy is resumed for ``--extra``
   more attempts of the base stage.
3. Both arms are valued against the base run's baseline at the base run's target scale (the stage's own
   utilities are relative to its best pool member), and each arm's best design is picked by the run's rule:
   highest utility among confidently valued designs. Results go to ``OUTPUT/results_<stage name>.json``.
   ``--reuse --stage-name NAME`` runs one more stage arm over the same base run (e.g. after changing the
   operators) and reports it against the same two other arms.

Everything runs in OUTPUT with its own fitness cache (GENESYS_CACHE_DIR), so the numbers do not depend on
earlier runs; the two arms share that cache, as a stage and its base run do.
"""

from __future__ import annotations

import argparse
import json
import logging
import os
import shutil
import sys
import time
from pathlib import Path

import yaml

ROOT = Path(__file__).resolve().parents[2]


def _config(output: Path, pool_size: int, names: list[str]) -> Path:
    raw = yaml.safe_load((ROOT / "configs" / "coefficient_dynamics.yaml").read_text())
    raw["checkpoint_interval"] = 4
    raw["genesys"].update(mutator="offline", profile="smoke", workers=1)
    raw["genesys"]["stages"] = [{"name": name, "pool_size": pool_size} for name in names]
    path = output / "combination.yaml"
    path.write_text(yaml.safe_dump(raw, sort_keys=False))
    return path


def _arm(run_dir: Path, valuer, threshold: float, label: str) -> dict:
    """The arm's designs valued against the base baseline; its best by the run's rule."""
    from openevolve_genesys.report.load import read_history
    from openevolve_genesys.validation.candidates import read_run_config, replay

    events = read_history(run_dir / "history.jsonl")
    records = replay(events, read_run_config(run_dir))
    codes = {e["id"]: e for e in events if e["type"] == "design"}
    for record in records.values():
        valuer.value(record, records.values())
    valued = [r for r in records.values() if r.valid and r.utility is not None]
    confident = [r for r in valued if r.confidence >= threshold]
    best = max(confident or valued, key=lambda r: (r.utility, r.confidence))
    state = json.loads((run_dir / "state.json").read_text())
    cycle = None
    if label == "stage":
        from openevolve_genesys.stages.operators import read_cycle

        code = codes[best.id]["code"] if best.id in codes else (run_dir / "template.py").read_text()
        cycle = read_cycle(code)
    designs = [e for e in events if e["type"] == "design" and e.get("attempt")]
    return {"run_dir": str(run_dir), "best_id": best.id, "best_operator": best.operator.get("operator"),
            "best_plan": cycle, "best_utility": best.utility, "best_confidence": best.confidence,
            "best_rungs": {n: r.loss for n, r in best.rungs.items()}, "attempts": state["attempts"],
            "designs_ok": sum(e["outcome"] == "ok" for e in designs),
            "designs_invalid": sum(e["outcome"] != "ok" for e in designs),
            "confident_designs": len(confident), "seconds": state["seconds"],
            "top5": sorted(([round(r.utility, 4), round(r.confidence, 2), r.operator.get("operator")]
                            for r in valued), reverse=True)[:5]}


def _confident(run_dir: Path) -> bool:
    from openevolve_genesys.report.load import read_history
    from openevolve_genesys.validation.candidates import read_run_config, replay

    config = read_run_config(run_dir)
    records = replay(read_history(run_dir / "history.jsonl"), config)
    threshold = config.genesys.selector.confidence_threshold
    return any(r.id != "baseline" and r.valid and r.confidence >= threshold for r in records.values())


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--base", type=int, default=12, help="design attempts of the base run")
    parser.add_argument("--extra", type=int, default=8, help="extra attempts of each arm")
    parser.add_argument("--pool-size", type=int, default=3)
    parser.add_argument("--output", default=str(ROOT / "runs" / "bench_combination"))
    parser.add_argument("--stage-name", default="hybrids", help="the stage's folder under base/stages/")
    parser.add_argument("--reuse", action="store_true",
                        help="keep OUTPUT's base and continued runs and only run stage --stage-name (a new one)")
    args = parser.parse_args()
    output = Path(args.output).resolve()
    if output.exists() != args.reuse:
        print(f"{output} {'exists; pass another --output, --reuse' if output.exists() else 'does not exist'}",
              file=sys.stderr)
        return 2
    output.mkdir(parents=True, exist_ok=True)
    os.environ["GENESYS_CACHE_DIR"] = str(output / "cache")
    logging.basicConfig(level=logging.INFO, format="%(asctime)s %(levelname)s %(name)s: %(message)s")
    for noisy in ("jax", "absl", "httpx", "openevolve"):
        logging.getLogger(noisy).setLevel(logging.WARNING)
    from openevolve_genesys.cli import run
    from openevolve_genesys.report.load import read_history
    from openevolve_genesys.selection.valuation import Valuer
    from openevolve_genesys.stages.run import run_stage
    from openevolve_genesys.validation.candidates import read_run_config, replay
    from openevolve_genesys.training.profiles import get_profile

    base, continued = output / "base", output / "continued"
    earlier = sorted(p.name for p in (base / "stages").glob("*")) if args.reuse else []
    config = _config(output, args.pool_size, sorted(set(earlier) | {args.stage_name}))
    clock = {}
    if not args.reuse:
        start = time.perf_counter()
        attempts = args.base
        run(str(config), iterations=attempts, output=str(base), profile="smoke")
        # The pool takes confidently valued designs only: extend the base run until it has one (both arms
        # start here).
        while not _confident(base) and attempts < args.base + 6:
            attempts += 2
            run(str(config), iterations=attempts, output=str(base), resume=True, profile="smoke")
        clock["base"] = time.perf_counter() - start
        shutil.copytree(base, continued)
    attempts = json.loads((base / "state.json").read_text())["attempts"]
    start = time.perf_counter()
    run_stage(config, args.stage_name, base_dir=base, iterations=args.extra, profile="smoke")
    clock["stage"] = time.perf_counter() - start
    if not args.reuse:
        start = time.perf_counter()
        run(str(config), iterations=attempts + args.extra, output=str(continued), resume=True, profile="smoke")
        clock["continued"] = time.perf_counter() - start

    base_config = read_run_config(base)
    selector = base_config.genesys.selector
    base_records = replay(read_history(base / "history.jsonl"), base_config)
    evaluator = base_config.genesys.evaluator
    profile = get_profile(evaluator.profile, evaluator.profile_overrides)
    valuer = Valuer.for_baseline(base_records["baseline"], target_n=evaluator.target_n, settings=evaluator.valuation,
                                 policy=profile.data_policy(), depths=profile.depths())
    threshold = selector.confidence_threshold
    results = {"command": " ".join(sys.argv), "base_attempts": attempts, "extra_attempts": args.extra,
               "target_n": valuer.target_n, "wall_seconds": clock,
               "pool": json.loads((base / "stages" / args.stage_name / "stage.json").read_text())["pool"],
               "at_start": _arm(base, valuer, threshold, "base"),
               "stage": _arm(base / "stages" / args.stage_name, valuer, threshold, "stage"),
               "continued": _arm(continued, valuer, threshold, "continued")}
    (output / f"results_{args.stage_name}.json").write_text(json.dumps(results, indent=1, default=str))
    for arm in ("at_start", "stage", "continued"):
        r = results[arm]
        plan = f", plan {r['best_plan']}" if r["best_plan"] else ""
        print(f"{arm:>10}: best {r['best_id'][:8]} ({r['best_operator']}{plan}) "
              f"utility {r['best_utility']:+.4f} confidence {r['best_confidence']:.2f}; attempts {r['attempts']}, "
              f"{r['designs_ok']} ok / {r['designs_invalid']} invalid, seconds {r['seconds']}")
    print(f"wall seconds: {clock}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
