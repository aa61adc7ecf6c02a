"""What tune mode buys: a framework's baseline on every rung at the profile's learning rate and at the rate
a tune sweep picks, with the sweep's cost next to the ladder's.

    python experiments/benchmarks/tune_effect.py --framework coefficient_dynamics --profile smoke

The sweep is the config's own (``genesys.tune``; ``--grid`` overrides the multipliers). With
``--full-grid`` every rate of the grid is also trained on the whole ladder, to see whether the cheap
target (short trials at the smallest rung) ranks rates as full training does: short trials favour high
rates (Wu et al. 2018, "short-horizon bias"). Everything goes through the evaluator's sandbox and fitness
cache, so a rerun is answered from the cache.
"""

from __future__ import annotations

import argparse
import dataclasses
import json
import time
from pathlib import Path

from openevolve_genesys.config import load_run_config
from openevolve_genesys.evaluation.evaluator import ScalingLawEvaluator
from openevolve_genesys.evaluation.tuning import tune_learning_rate

ROOT = Path(__file__).resolve().parents[2]


def ladder(evaluator: ScalingLawEvaluator, learning_rate: float) -> tuple[dict[str, float], float]:
    """Final eval loss per rung of the baseline at ``learning_rate``, and the seconds it took here."""
    start = time.perf_counter()
    evaluation = evaluator.baseline(learning_rate)
    return {name: r.final_eval_loss for name, r in evaluation.rungs.items()}, time.perf_counter() - start


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--framework", default="coefficient_dynamics")
    parser.add_argument("--profile", default="smoke")
    parser.add_argument("--grid", type=float, nargs="+", help="tune multipliers (default: the config's)")
    parser.add_argument("--full-grid", action="store_true", help="also train every grid rate on the whole ladder")
    parser.add_argument("--out", default=str(ROOT / "experiments/benchmarks/results/tune_effect.json"))
    args = parser.parse_args()

    settings = load_run_config(ROOT / "configs" / f"{args.framework}.yaml").genesys.evaluator
    tune = dataclasses.replace(settings.tune, enabled=True, **({"grid": tuple(args.grid)} if args.grid else {}))
    evaluator = ScalingLawEvaluator(dataclasses.replace(settings, profile=args.profile, tune=tune))
    base = evaluator.profile.train.learning_rate

    sweep = tune_learning_rate(evaluator, evaluator.template, tune)
    rates = sorted({base, sweep.best_learning_rate} | ({base * m for m in tune.grid} if args.full_grid else set()))
    rows = {}
    for lr in rates:
        losses, seconds = ladder(evaluator, lr)
        rows[lr] = losses
        print(f"lr {lr:.4g} (x{lr / base:.3g}): " + "  ".join(f"{n} {v:.4f}" for n, v in losses.items())
              + f"   [{seconds:.0f} s here, 0 when cached]")
    trials = [(t.learning_rate, t.loss) for t in sweep.trials]
    print(f"sweep: {sweep.note}")
    print("trials (rate, loss at the cheap target): " + ", ".join(f"{lr:.4g}: {loss:.4f}" for lr, loss in trials))
    gain = {n: rows[base][n] - rows[sweep.best_learning_rate][n] for n in rows[base]}
    print("tuned baseline better than the profile's rate by (nats): "
          + "  ".join(f"{n} {v:+.4f}" for n, v in gain.items()))
    Path(args.out).parent.mkdir(parents=True, exist_ok=True)
    Path(args.out).write_text(json.dumps({
        "framework": args.framework, "profile": args.profile, "profile_learning_rate": base,
        "sweep": sweep.to_dict(), "ladder_by_rate": {str(lr): losses for lr, losses in rows.items()},
        "gain_of_tuned_over_profile_rate": gain}, indent=2))
    print(f"saved {args.out}")


if __name__ == "__main__":
    main()
