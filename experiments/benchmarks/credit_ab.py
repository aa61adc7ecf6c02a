"""Operator credit A/B: the same simulated offline evolution with and without credit.

The landscape, compute ledger and mutation operator are the selector benchmark's (``selector_sim``):
every design of one framework's offline mutation space has a known scaling law, one unit of compute is one
training at the smallest rung. Each run drives ``GenesysSelector`` + ``GenesysDatabase`` exactly as the
selector benchmark's method "ours" does (same interleaving of verification, same duplicate rule), except
that each child's record names the unit it mutated, the alternative it took and its seed's quadrant, as a
live run records them; arm B sets ``credit: true``, arm A leaves it off. Both arms of a seed share the
landscape and its observation noise.

Measured per run, on the true laws (the runs never see them):
- best true utility reached: max over generated designs of (baseline loss - design loss) at the target N;
- the utility of the design the run reports (``GenesysDatabase.best_design``);
- budget to reach: the compute spent when a generated design first reached ``--reach`` of the landscape's
  best possible utility (runs that never do are counted, and shown as censored at the budget).

    python experiments/benchmarks/credit_ab.py                       # 40 seeds x 2 budgets x 2 landscapes
    python experiments/benchmarks/credit_ab.py --seeds 4 --budgets 100 --landscapes aligned

Writes ``results/credit_ab.json`` (settings, the landscape check, every run, the summary).
"""

from __future__ import annotations

import argparse
import json
import sys
import time
from dataclasses import asdict
from pathlib import Path

import numpy as np

HERE = Path(__file__).resolve().parent
sys.path.insert(0, str(HERE.parents[1]))  # run from a checkout without installing
sys.path.insert(0, str(HERE))

from openevolve.database import Program  # noqa: E402

from openevolve_genesys.selection.credit import child_credits, credit_table  # noqa: E402
from openevolve_genesys.selection.selector import SelectorSettings  # noqa: E402
from selector_benchmark import landscape_specs  # noqa: E402
from selector_sim import Landscape, LandscapeSpec, Trial  # noqa: E402
from selector_sim.ours import BASELINE_ID, _design, design_record, start, verify_if_due  # noqa: E402
from selector_sim.trial import BASELINE  # noqa: E402

ARMS = {"off": False, "credit": True}


def true_utility(land: Landscape, design: int) -> float:
    """Target-N loss gap to the baseline (nats; positive = better), the quantity the run's utility forecasts."""
    return float(land.target_loss[BASELINE] - land.target_loss[design])


def run_once(land: Landscape, budget: float, seed: int, credit: bool, reach: float) -> dict:
    """One offline evolution; returns its outcome on the true laws plus the run's own credit table."""
    trial = Trial(land, budget, seed)
    settings = SelectorSettings(credit=credit)
    db, selector = start(trial, settings)
    best, reached_at, explore_p = 0.0, None, []
    while True:
        if verify_if_due(trial, selector, db, settings.verify_share):
            continue
        if not trial.fits(0):
            break
        pick = selector.select_design(db.records, BASELINE_ID, trial.progress)
        if pick.credit is not None:
            explore_p.append(pick.credit["explore_probability"])
        unit = land.units.index(pick.unit)
        child, status = trial.attempt(_design(pick.seed_id), unit)
        # A live run records a repeated child too (the fitness cache answers it); credit sees it by its code
        # hash. Here it is recorded without rungs, so the selector ignores it exactly as "ours" does.
        outcome = {"new": "ok", "invalid": "invalid", "duplicate": "duplicate"}[status]
        record = design_record(trial, child, pick.seed_id, outcome)
        if status == "duplicate":
            record.id = f"{child}-repeat-{trial.attempts}"
        record.operator = {"unit": pick.unit, "operator": f"{pick.unit}:{land.choices(child)[pick.unit]}",
                           "model": "simulated", "quadrant": pick.quadrant.value if pick.quadrant else None}
        db.add_design(Program(id=record.id, code="", parent_id=pick.seed_id, iteration_found=trial.attempts), record)
        if status == "new" and true_utility(land, child) > best:
            best = true_utility(land, child)
            if reached_at is None and best >= reach:
                reached_at = trial.spent
    reported = db.best_design()
    return {"best_utility": best, "reported_utility": true_utility(land, _design(reported.id)) if reported else 0.0,
            "reached_at": reached_at, "designs": len(trial.losses) - 1, "attempts": trial.attempts,
            "duplicates": trial.duplicates, "explore_probability": float(np.mean(explore_p)) if explore_p else None,
            "leader": leader_rewards(db.records, land.units, settings.credit_window),
            # Per unit: children, of which improved on their seed, and repeats (the run's credit table, trimmed).
            "units": {r["arm"]: [r["children"], r["improved"], r["repeats"]]
                      for r in credit_table(db.records, settings.credit_settings, land.units)
                      if r["dimension"] == "unit"}}


def leader_rewards(records: dict, units: tuple[str, ...], window: int, least: int = 3) -> list[float]:
    """Does a unit's recent reward predict its next one? Over the run's children (in order, once every unit
    has ``least`` children in the preceding ``window``): [sum and count of rewards of children whose unit led
    that window by mean reward, sum and count of all rewards]. Pooled over the arm "off"'s runs (units drawn
    uniformly), the ratio of the two means is the lift a perfect follow-the-leader would get; 1 = none."""
    credits = child_credits(records)
    led, every = [], []
    for i, child in enumerate(credits):
        past = credits[max(0, i - window):i]
        means = {}
        for unit in units:
            rewards = [c.reward for c in past if c.arms.get("unit") == unit]
            if len(rewards) >= least:
                means[unit] = float(np.mean(rewards))
        if len(means) < len(units):
            continue
        every.append(child.reward)
        if child.arms.get("unit") == max(means, key=means.get):
            led.append(child.reward)
    return [float(sum(led)), float(len(led)), float(sum(every)), float(len(every))]


def leader_lift(runs: list[dict]) -> float | None:
    led, n_led, every, n_every = np.sum([r["leader"] for r in runs], axis=0)
    return float((led / n_led) / (every / n_every)) if n_led and every else None


def unit_structure(land: Landscape, samples: int, rng: np.random.Generator) -> dict[str, float]:
    """Per unit: the mean true-utility improvement, max(child - seed, 0) with invalid children as 0, of one
    uniform mutation of that unit, averaged over random valid seeds. Equal values: nothing for credit to find."""
    seeds = rng.choice(np.flatnonzero(land.valid), size=samples, replace=False)
    out = {}
    for u, unit in enumerate(land.units):
        gains = []
        for seed in seeds:
            digits = land.digits(np.array([seed]))[0]
            for alt in range(land.radix[u]):
                if alt == digits[u]:
                    continue
                child = land.number(np.concatenate([digits[:u], [alt], digits[u + 1:]]))
                gains.append(max(true_utility(land, child) - true_utility(land, int(seed)), 0.0)
                             if land.valid[child] else 0.0)
        out[unit] = float(np.mean(gains))
    return out


def spread(values: list[float], digits: int = 4) -> str:
    a = np.asarray(values, dtype=float)
    return f"{a.mean():.{digits}f} +- {a.std(ddof=1):.{digits}f}" if a.size > 1 else f"{a.mean():.{digits}f}"


def summarise(runs: list[dict], reach_fraction: float) -> list[str]:
    lines = ["| landscape | budget | arm | best true utility reached | utility of the reported design "
             f"| runs reaching {reach_fraction:.0%} of the best possible | budget to reach it (those runs) "
             "| budget to reach, median (never = the budget) | credit minus off, best reached (paired, +- sem) "
             "| designs | repeated children | mean explore probability |",
             "|---|---|---|---|---|---|---|---|---|---|---|---|"]
    for name in dict.fromkeys(r["landscape"] for r in runs):
        for budget in sorted({r["budget"] for r in runs if r["landscape"] == name}):
            arms = {arm: sorted((r for r in runs if r["landscape"] == name and r["budget"] == budget
                                 and r["arm"] == arm), key=lambda r: r["seed"]) for arm in ARMS}
            for arm, rows in arms.items():
                reached = [r["reached_at"] for r in rows if r["reached_at"] is not None]
                censored = [r["reached_at"] if r["reached_at"] is not None else budget for r in rows]
                paired = "-"
                if arm != "off":
                    diff = np.array([c["best_utility"] - o["best_utility"] for c, o in zip(rows, arms["off"])])
                    paired = f"{diff.mean():+.4f} +- {diff.std(ddof=1) / np.sqrt(diff.size):.4f}"
                explore = [r["explore_probability"] for r in rows if r["explore_probability"] is not None]
                lines.append(
                    f"| {name} | {budget:g} | {arm} | {spread([r['best_utility'] for r in rows])} "
                    f"| {spread([r['reported_utility'] for r in rows])} | {len(reached)}/{len(rows)} "
                    f"| {spread(reached, 0) if reached else '-'} | {np.median(censored):.0f} | {paired} "
                    f"| {np.mean([r['designs'] for r in rows]):.0f} "
                    f"| {np.mean([r['duplicates'] / max(r['attempts'], 1) for r in rows]):.0%} "
                    f"| {f'{np.mean(explore):.2f}' if explore else 'schedule'} |")
    return lines


def run_grid(specs: dict[str, LandscapeSpec], seeds: int, budgets: list[float], reach_fraction: float,
             structure_samples: int) -> tuple[list[dict], dict]:
    runs, structure = [], {}
    for name, spec in specs.items():
        per_unit = []
        for seed in range(seeds):
            land = Landscape(spec, seed)
            possible = true_utility(land, land.best)
            per_unit.append(unit_structure(land, structure_samples, np.random.default_rng(seed)))
            for budget in budgets:
                for arm, credit in ARMS.items():
                    out = run_once(land, budget, seed, credit, reach_fraction * possible)
                    runs.append({"landscape": name, "budget": budget, "seed": seed, "arm": arm,
                                 "best_possible": possible, **out})
        means = np.array([[u[k] for k in u] for u in per_unit])
        off = [r for r in runs if r["landscape"] == name and r["arm"] == "off"]
        structure[name] = {"units": list(per_unit[0]), "per_seed": per_unit, "leader_lift": leader_lift(off),
                           "best_over_worst_unit": float(np.mean(means.max(1) / np.maximum(means.min(1), 1e-12))),
                           "best_unit_counts": {k: int(np.sum(means.argmax(1) == i))
                                                for i, k in enumerate(per_unit[0])}}
        print(f"  {name}: {seeds} seeds done", file=sys.stderr)
    return runs, structure


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--seeds", type=int, default=40)
    parser.add_argument("--budgets", type=float, nargs="+", default=[200, 400])
    parser.add_argument("--landscapes", nargs="+", default=["crossing", "aligned"])
    parser.add_argument("--framework", default="coefficient_dynamics")
    parser.add_argument("--noise", type=float, default=0.005, help="sd of ln(observed/true loss) per training run")
    parser.add_argument("--reach", type=float, default=0.5,
                        help="the stated utility, as a fraction of the landscape's best possible utility")
    parser.add_argument("--structure-samples", type=int, default=50, help="random seeds per landscape check")
    parser.add_argument("--out", type=Path, default=HERE / "results" / "credit_ab.json")
    args = parser.parse_args(argv)
    if args.seeds < 2 or any(b <= 0 for b in args.budgets) or not 0 < args.reach <= 1:
        raise SystemExit("need --seeds >= 2 (a spread needs two runs), positive --budgets and 0 < --reach <= 1")

    start = time.perf_counter()
    specs = {name: LandscapeSpec(**{**asdict(spec), "framework": args.framework})
             for name, spec in landscape_specs(args.landscapes, args.noise).items()}
    runs, structure = run_grid(specs, args.seeds, sorted(args.budgets), args.reach, args.structure_samples)
    lines = summarise(runs, args.reach)
    print(f"# {len(runs)} runs in {time.perf_counter() - start:.0f} s; framework {args.framework}, noise sd "
          f"{args.noise}; utilities in nats at the target N (higher is better), budgets in smallest-rung trainings")
    print("\n".join(lines))
    print("\n# landscape check: mean true improvement of one mutation of each unit, over random valid seeds")
    for name, s in structure.items():
        means = np.mean([[u[k] for k in s["units"]] for u in s["per_seed"]], axis=0)
        print(f"  {name}: " + ", ".join(f"{k} {m:.4f}" for k, m in zip(s["units"], means))
              + f"; best/worst unit within a landscape {s['best_over_worst_unit']:.1f}x; most rewarding unit "
              f"per seed: {s['best_unit_counts']}")
        lift = s["leader_lift"]
        print(f"  {name}, within the runs without credit: the unit leading the last window's rewards paid "
              + (f"{lift:.2f}x the average child's reward on the next child" if lift else "(too few children)"))
    args.out.parent.mkdir(parents=True, exist_ok=True)
    args.out.write_text(json.dumps({"args": {k: str(v) if isinstance(v, Path) else v for k, v in vars(args).items()},
                                    "structure": structure, "summary": lines, "runs": runs}))
    print(f"\nwrote {args.out}")


if __name__ == "__main__":
    main()
