"""Synthetic calibration of ``scaling.value_design``: ladders of known truth, noisy paired runs, many replicates.

Truths: Hoffmann et al. 2022's N term (L = 1.69 + 406.4 N^-0.34) over 14M-350M, and the law fitted to the real
smoke baseline (E = 4.697, A = 232.4, alpha = 0.508) over its rungs 25k-336k; four rungs each, the target one
e-fold above the largest. Designs: "better" (0.05 nats better everywhere), "equal", "crossing" (0.02 worse at r0,
0.02 better at the target: a slope of ~0.011 nats per e-fold, about 4x the spread of real designs' slopes),
"random" (a level ~ N(0, 0.03^2) and a slope ~ N(0, 0.0025^2), exchangeable with the "mixed" population).
Each run's loss is the truth times exp(shared), shared ~ N(0, 0.005^2) per rung and seed (design and baseline of
one seed share it, so their difference cancels it), plus an independent N(0, indep^2) in nats: "quiet" 0.0015
(pair sd 0.0021, as measured on real smoke pairs) and "loud" 0.005 x loss (0.005 on log loss, unshared).
The baseline trains at three seeds (the default ``genesys.baseline_seeds``); designs at one, the run's seed.
Population (the run's other designs, each at all four rungs, paired with the same baseline draw):
"none"; "same" (8 designs of the same kind: the empirical prior is right); "mixed" (8 designs with slopes
~ N(0, 0.0025^2) and levels ~ N(0, 0.03^2), like a real run: the crossing design is then out of population).

Per (law, noise, population, design, rungs verified 1-4): coverage of the true target gap by the 80% interval,
of the design's true target loss by the 80% absolute-loss interval, utility RMSE against persistence's (the
measured gap at the design's top rung, used as the forecast), and how often "better" is ranked above "equal" by
utility, by p_better, by the interval's lower end and by persistence (same replicate, same baseline draw).

    python experiments/benchmarks/value_calibration.py                 # 500 replicates, ~4 min on 1 core
    python experiments/benchmarks/value_calibration.py --replicates 50

Writes ``results/value_calibration.json``.
"""

from __future__ import annotations

import argparse
import itertools
import json
import math
import sys
import time
from pathlib import Path

import numpy as np

HERE = Path(__file__).resolve().parent
sys.path.insert(0, str(HERE.parents[1]))  # run from a checkout without installing

from openevolve_genesys.scaling import value_design  # noqa: E402

LAWS = {"hoffmann": (1.69, 406.4, 0.34, np.geomspace(14e6, 350e6, 4)),
        "smoke": (4.697, 232.4, 0.508, np.array([25472.0, 56640.0, 150080.0, 335712.0]))}
NOISES = ("quiet", "loud")
POPULATIONS = ("none", "same", "mixed")
DESIGNS = ("better", "equal", "crossing", "random")
SHARED_SD = 0.005
POPULATION_SIZE = 8
BASELINE_SEEDS = 3  # genesys.baseline_seeds' default


def true_loss(law: str, n: np.ndarray | float) -> np.ndarray:
    e, a, alpha, _ = LAWS[law]
    return e + a * np.asarray(n, dtype=float) ** -alpha


def gap_curve(kind: str, log_n: np.ndarray | float, log_r0: float, log_target: float,
              level: float = 0.0, slope: float = 0.0) -> np.ndarray:
    """True gap (nats, positive: better) of a design kind at ln N."""
    log_n = np.asarray(log_n, dtype=float)
    if kind == "better":
        return np.full_like(log_n, 0.05)
    if kind == "equal":
        return np.zeros_like(log_n)
    if kind == "crossing":
        return -0.02 + 0.04 * (log_n - log_r0) / (log_target - log_r0)
    return level + slope * (log_n - log_target)  # "random": a population member of a real-looking run


def measure(truth: np.ndarray, shared: np.ndarray, noise: str, rng: np.random.Generator) -> np.ndarray:
    indep = 0.0015 if noise == "quiet" else 0.005 * truth
    return truth * np.exp(shared) + indep * rng.standard_normal(truth.shape)


def ladder(n: np.ndarray, losses: np.ndarray, k: int) -> dict:
    return {f"r{i}": (float(n[i]), [float(losses[i])]) for i in range(k)}


def replicate(law: str, noise: str, population: str, rng: np.random.Generator) -> dict[str, list[dict]]:
    """Values of every design kind at 1-4 rungs, on one baseline draw."""
    n = LAWS[law][3]
    log_n, log_r0 = np.log(n), math.log(n[0])
    log_target = math.log(n[-1]) + 1.0
    base_true = true_loss(law, n)
    shared = SHARED_SD * rng.standard_normal(n.size)
    # The baseline trains at BASELINE_SEEDS seeds as a run does by default; seed 0 shares its draw with the
    # designs (they train at the run's seed), the others have their own, so their spread is the single-run noise.
    base_seeds = [measure(base_true, shared, noise, rng)] + [
        measure(base_true, SHARED_SD * rng.standard_normal(n.size), noise, rng) for _ in range(BASELINE_SEEDS - 1)]
    base = {f"r{i}": (float(n[i]), [float(seed[i]) for seed in base_seeds]) for i in range(n.size)}

    def draw(kind: str, **shape: float) -> tuple[np.ndarray, float]:
        gap = gap_curve(kind, log_n, log_r0, log_target, **shape)
        target_gap = float(gap_curve(kind, log_target, log_r0, log_target, **shape))
        return measure(base_true - gap, shared, noise, rng), target_gap

    members = []
    for _ in range(POPULATION_SIZE if population != "none" else 0):
        shape = dict(level=0.03 * rng.standard_normal(), slope=0.0025 * rng.standard_normal())
        members.append(ladder(n, draw("random", **shape)[0], 4))
    out: dict[str, list[dict]] = {}
    for kind in DESIGNS:
        if population == "same":
            members = [ladder(n, (draw(kind, level=0.03 * rng.standard_normal(), slope=0.0025 * rng.standard_normal())
                                  if kind == "random" else draw(kind))[0], 4) for _ in range(POPULATION_SIZE)]
        shape = dict(level=0.03 * rng.standard_normal(), slope=0.0025 * rng.standard_normal())
        losses, target_gap = draw(kind, **shape) if kind == "random" else draw(kind)
        target_loss = float(true_loss(law, math.exp(log_target))) - target_gap
        rows = []
        for k in range(1, 5):
            v = value_design(ladder(n, losses, k), base, population=members, level=0.8)
            persistence = base[f"r{k - 1}"][1][0] - losses[k - 1]
            rows.append(dict(truth=target_gap, utility=v.utility, low=v.low, high=v.high, p_better=v.p_better,
                             confidence=v.confidence, persistence=persistence, loss_truth=target_loss,
                             loss_low=v.loss_low, loss_high=v.loss_high))
        out[kind] = rows
    return out


def summarise(reps: list[dict[str, list[dict]]]) -> dict:
    table: dict = {}
    for kind in DESIGNS:
        for k in range(4):
            rows = [r[kind][k] for r in reps]
            err = np.array([r["utility"] - r["truth"] for r in rows])
            pers = np.array([r["persistence"] - r["truth"] for r in rows])
            table[f"{kind}/{k + 1}"] = dict(
                coverage=float(np.mean([r["low"] <= r["truth"] <= r["high"] for r in rows])),
                loss_coverage=float(np.mean([r["loss_low"] <= r["loss_truth"] <= r["loss_high"] for r in rows])),
                rmse=float(np.sqrt(np.mean(err**2))), persistence_rmse=float(np.sqrt(np.mean(pers**2))),
                confidence_mean=float(np.mean([r["confidence"] for r in rows])),
                confidence_sd=float(np.std([r["confidence"] for r in rows])))
    for k in range(4):
        pairs = [(r["better"][k], r["equal"][k]) for r in reps]
        table[f"order/{k + 1}"] = {key: float(np.mean([b[key] > e[key] for b, e in pairs]))
                                   for key in ("utility", "p_better", "low", "persistence")}
    return table


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--replicates", type=int, default=500)
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--out", default=str(HERE / "results" / "value_calibration.json"))
    args = parser.parse_args()
    results, start = {}, time.perf_counter()
    for law, noise, population in itertools.product(LAWS, NOISES, POPULATIONS):
        rng = np.random.default_rng([args.seed, len(results)])
        reps = [replicate(law, noise, population, rng) for _ in range(args.replicates)]
        results[f"{law}/{noise}/{population}"] = table = summarise(reps)
        print(f"\n== {law} noise={noise} population={population} ({args.replicates} replicates)")
        print(f"{'design/rungs':<14}{'cover80':>8}{'lossCov':>8}{'rmse':>8}{'persist':>8}{'conf':>6}")
        for kind, k in itertools.product(DESIGNS, range(1, 5)):
            row = table[f"{kind}/{k}"]
            print(f"{kind + '/' + str(k):<14}{row['coverage']:>8.2f}{row['loss_coverage']:>8.2f}{row['rmse']:>8.4f}"
                  f"{row['persistence_rmse']:>8.4f}{row['confidence_mean']:>6.2f}")
        print("better above equal (utility / p_better / low / persistence): " + ", ".join(
            f"{k}: " + "/".join(f"{v:.2f}" for v in table[f"order/{k}"].values()) for k in range(1, 5)))
    payload = {"settings": {"replicates": args.replicates, "seed": args.seed, "shared_sd": SHARED_SD,
                            "baseline_seeds": BASELINE_SEEDS,
                            "population_size": POPULATION_SIZE, "level": 0.8},
               "seconds": round(time.perf_counter() - start, 1), "results": results}
    Path(args.out).write_text(json.dumps(payload, indent=1))
    print(f"\nwrote {args.out} in {payload['seconds']} s")


if __name__ == "__main__":
    main()
