"""Selector benchmark: four design-search methods on a simulated landscape at equal compute.

Every design of one framework's offline mutation space gets a latent scaling law with family structure
and crossing curves (``selector_sim/landscape.py``); each method spends the same compute budget (units of
one smallest-rung training; cost proportional to N) with the same mutation operator, and hands over the
design it would pick. Regret = that design's true loss at the target N (10x the largest rung) minus the
best valid design of the whole space. Landscapes, observation noise and the starting state are shared by
the methods within a seed (common random numbers), so paired differences are reported too.

    python experiments/benchmarks/selector_benchmark.py                 # 24 seeds, both landscapes, ~4 min
    python experiments/benchmarks/selector_benchmark.py --seeds 4 --budgets 50 100 --landscapes crossing

Writes ``results/selector_benchmark.csv`` (one row per run) and ``results/selector_benchmark.png``.
"""

from __future__ import annotations

import argparse
import csv
import sys
import time
from pathlib import Path

import numpy as np

HERE = Path(__file__).resolve().parent
sys.path.insert(0, str(HERE.parents[1]))  # run from a checkout without installing
sys.path.insert(0, str(HERE))

from selector_sim import METHODS, Landscape, LandscapeSpec, run_method  # noqa: E402

LABELS = {"ours": "(a) ours: GenesysSelector + Valuer", "ours_p_better": "(a) ours, rank_by: p_better",
          "ours_lower": "(a) ours, rank_by: lower", "openevolve": "(b) OpenEvolve 0.4.0 ProgramDatabase",
          "genesys_code": "(c) Genesys-code-style selector", "random": "(d) random search"}
COLORS = {"ours": "tab:blue", "ours_p_better": "tab:purple", "ours_lower": "tab:cyan", "openevolve": "tab:orange", "genesys_code": "tab:green", "random": "tab:gray"}


def landscape_specs(names: list[str], noise: float) -> dict[str, LandscapeSpec]:
    base = LandscapeSpec(noise_sd=noise)
    known = {"crossing": base, "aligned": base.aligned()}
    unknown = [n for n in names if n not in known]
    if unknown:
        raise SystemExit(f"unknown landscape(s) {unknown}; choose from {sorted(known)}")
    return {n: known[n] for n in names}


def run_grid(specs: dict[str, LandscapeSpec], seeds: int, budgets: list[float], methods: list[str]) -> list[dict]:
    rows = []
    for name, spec in specs.items():
        for seed in range(seeds):
            land = Landscape(spec, seed)
            context = {"landscape": name, "baseline_regret": land.regret(0), "spearman_r0": land.rank_correlation(0),
                       "spearman_r3": land.rank_correlation(len(land.rungs) - 1)}
            for budget in budgets:
                for method in methods:
                    rows.append({**context, **run_method(method, land, budget, seed).row()})
        print(f"  {name}: {seeds} seeds done", file=sys.stderr)
    return rows


def summarise(rows: list[dict], methods: list[str]) -> list[str]:
    lines = []
    for name in dict.fromkeys(r["landscape"] for r in rows):
        sub = [r for r in rows if r["landscape"] == name]
        per_seed = {r["seed"]: r for r in sub}
        base = np.array([r["baseline_regret"] for r in per_seed.values()])
        lines += ["", f"### landscape: {name} ({len(per_seed)} seeds; Spearman of true loss vs target-N loss: "
                      f"r0 {np.mean([r['spearman_r0'] for r in per_seed.values()]):.2f}, "
                      f"r3 {np.mean([r['spearman_r3'] for r in per_seed.values()]):.2f}; "
                      f"regret of keeping the baseline {base.mean():.3f} +- {base.std(ddof=1):.3f})", "",
                  "| budget | method | regret mean +- sd | median [p10, p90] | best generated "
                  "| minus ours (paired, +-sem) | ours better in | designs | duplicate attempts | rungs of pick |",
                  "|---|---|---|---|---|---|---|---|---|---|"]
        for budget in sorted({r["budget"] for r in sub}):
            runs = {m: sorted((r for r in sub if r["budget"] == budget and r["method"] == m), key=lambda r: r["seed"])
                    for m in methods}
            ours = np.array([r["regret"] for r in runs.get("ours", [])])
            for m in methods:
                regret = np.array([r["regret"] for r in runs[m]])
                oracle = np.array([r["oracle_regret"] for r in runs[m]])
                paired = "-"
                better = "-"
                if m != "ours" and ours.size == regret.size and ours.size > 1:
                    diff = regret - ours
                    paired = f"{diff.mean():+.3f} +- {diff.std(ddof=1) / np.sqrt(diff.size):.3f}"
                    better = f"{np.mean(ours < regret - 1e-12):.0%}"
                p10, p50, p90 = np.percentile(regret, [10, 50, 90])
                lines.append(
                    f"| {budget:g} | {m} | {regret.mean():.3f} +- {regret.std(ddof=1):.3f} | {p50:.3f} [{p10:.3f}, "
                    f"{p90:.3f}] | {oracle.mean():.3f} | {paired} | {better} | "
                    f"{np.mean([r['designs'] for r in runs[m]]):.0f} | "
                    f"{np.mean([r['duplicates'] / r['attempts'] for r in runs[m]]):.0%} | "
                    f"{np.mean([r['rungs_of_reported'] for r in runs[m]]):.1f} |")
    return lines


def plot(rows: list[dict], methods: list[str], path: Path) -> None:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    names = list(dict.fromkeys(r["landscape"] for r in rows))
    fig, axes = plt.subplots(2, len(names), figsize=(6.2 * len(names), 9.0), squeeze=False, sharex=True,
                             sharey="col")
    for col, name in enumerate(names):
        sub = [r for r in rows if r["landscape"] == name]
        budgets = sorted({r["budget"] for r in sub})
        seeds = {r["seed"]: r for r in sub}
        base = np.mean([r["baseline_regret"] for r in seeds.values()])
        for row, (key, title) in enumerate((("regret", "regret of the design each method reports"),
                                            ("oracle_regret", "regret of the best design it generated"))):
            ax = axes[row][col]
            for m in methods:
                values = [np.array([r[key] for r in sub if r["budget"] == b and r["method"] == m]) for b in budgets]
                mean = np.array([v.mean() for v in values])
                sem = np.array([v.std(ddof=1) / np.sqrt(v.size) if v.size > 1 else 0.0 for v in values])
                ax.plot(budgets, mean, marker="o", color=COLORS[m], label=LABELS[m])
                ax.fill_between(budgets, mean - sem, mean + sem, color=COLORS[m], alpha=0.2)
            ax.axhline(base, color="black", linestyle=":", linewidth=1, label="keep the baseline")
            ax.set_xscale("log", base=2)
            ax.set_xticks(budgets, [f"{b:g}" for b in budgets])
            ax.set_ylim(bottom=0)
            ax.grid(alpha=0.3)
            spearman = np.mean([r["spearman_r0"] for r in seeds.values()])
            ax.set_title(f"{name} landscape (r0 vs target Spearman {spearman:.2f})\n{title}", fontsize=10)
            if col == 0:
                ax.set_ylabel("nats above the best design, at target N")
            if row == 1:
                ax.set_xlabel("compute budget (trainings at the smallest rung; cost ~ N)")
    handles, labels = axes[0][0].get_legend_handles_labels()
    fig.legend(handles, labels, loc="lower center", ncol=3, fontsize=9, frameon=False)
    n_seeds = len({r["seed"] for r in rows})
    fig.suptitle(f"Selector benchmark: mean \u00b1 sem over {n_seeds} seeds (regret in nats at the target N, "
                 f"lower is better)", fontsize=11)
    fig.tight_layout(rect=(0, 0.06, 1, 1))
    path.parent.mkdir(parents=True, exist_ok=True)
    fig.savefig(path, dpi=110)
    plt.close(fig)


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--seeds", type=int, default=24)
    parser.add_argument("--budgets", type=float, nargs="+", default=[100, 200, 400, 800])
    parser.add_argument("--landscapes", nargs="+", default=["crossing", "aligned"])
    parser.add_argument("--methods", nargs="+", default=list(METHODS), choices=METHODS)
    parser.add_argument("--noise", type=float, default=0.005, help="sd of ln(observed/true loss) per training run")
    parser.add_argument("--out", type=Path, default=HERE / "results", help="folder for the CSV and the PNG")
    parser.add_argument("--tag", default="selector_benchmark", help="file name stem of the outputs")
    args = parser.parse_args(argv)
    if args.seeds < 2 or any(b <= 0 for b in args.budgets):
        raise SystemExit("need --seeds >= 2 (a spread needs two runs) and positive --budgets")

    start = time.perf_counter()
    rows = run_grid(landscape_specs(args.landscapes, args.noise), args.seeds, sorted(args.budgets), args.methods)
    args.out.mkdir(parents=True, exist_ok=True)
    with open(args.out / f"{args.tag}.csv", "w", newline="") as f:
        writer = csv.DictWriter(f, fieldnames=list(rows[0]))
        writer.writeheader()
        writer.writerows(rows)
    plot(rows, args.methods, args.out / f"{args.tag}.png")
    spec = LandscapeSpec(noise_sd=args.noise)
    print(f"# {len(rows)} runs in {time.perf_counter() - start:.0f} s; framework {spec.framework}, rungs N "
          f"{', '.join(f'{n:,}' for n in spec.rung_n)}, target N {spec.target_factor * spec.rung_n[-1]:,.0f}, "
          f"noise sd {args.noise}, invalid {spec.invalid_fraction:.0%}; regret in nats at target N")
    print("\n".join(summarise(rows, args.methods)))
    print(f"\nwrote {args.out / (args.tag + '.csv')} and {args.out / (args.tag + '.png')}")


if __name__ == "__main__":
    main()
