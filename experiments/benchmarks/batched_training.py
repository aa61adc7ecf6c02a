"""Batched against one-by-one training: 3 seeds and 3 rates of one rung in one vmapped program, side by side.

    python experiments/benchmarks/batched_training.py
    # faster, fewer rungs: --smoke-rungs r0,r1 --seed-rungs r0 --seed-steps 10

For every rung of the ``smoke`` profile (its full recipe) and the first rung(s) of the ``seed`` profile (its
recipe with the steps cut by ``--seed-steps`` so that it finishes in minutes on 2 cores; the printout says so),
two experiments: 3 seeds at the profile's rate, and 3 rates (0.5x, 1x, 2x the profile's) at seed 0. Each is
trained one by one (``train_rung``, the three runs sharing one ``Programs`` as a job's trials do, so one
compile serves them) and batched (``train_rung_batched``: one vmapped program), in one process, alternating
which goes first. Wall seconds include model initialisation and compiles; train seconds exclude compiles.
The losses of every curve point (train and eval) are compared, and the largest relative difference printed.

``--chunk-repeats N`` measures instead just the steps of warm, compiled programs (no evaluation, data or
compile): per repeat, one 50-step chunk of each of the 3 seeds one by one, then the same 3 as one batched chunk,
alternating N times, at ``--smoke-rungs``; it writes ``--out`` (give it another name).

Data: a synthetic Markov stream of the profile's vocab (the next token is a fixed random successor 3 times in
4, else uniform), generated before timing, so the losses fall and the runs' trajectories are worth comparing;
data loading is not what is measured.
"""

from __future__ import annotations

import argparse
import dataclasses
import json
import os
import platform
import sys
import time
from pathlib import Path
from typing import Any

import jax
import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parents[2]))  # run from a checkout without installing

from openevolve_genesys.training.batched import BatchedTrainer, train_rung_batched  # noqa: E402
from openevolve_genesys.training.loop import Programs, RungResult, RungTrainer, rung_shape, train_rung  # noqa: E402
from openevolve_genesys.training.model import CausalSelfAttention, build_model  # noqa: E402
from openevolve_genesys.training.profiles import Rung, TrainConfig, get_profile  # noqa: E402

ROOT = Path(__file__).resolve().parents[2]
RATE_FACTORS = (0.5, 1.0, 2.0)
SEEDS = (0, 1, 2)


class MarkovTokens:
    """Stands in for TokenData: a learnable stream, sampled the way TokenData samples its windows."""

    def __init__(self, vocab: int, n_tokens: int = 2_000_000, seed: int = 0):
        rng = np.random.default_rng(seed)
        successor = rng.permutation(vocab)
        noise = rng.integers(0, vocab, n_tokens)
        follow = rng.random(n_tokens) < 0.75
        stream = np.empty(n_tokens, np.int32)
        stream[0] = 0
        for i in range(1, n_tokens):
            stream[i] = successor[stream[i - 1]] if follow[i] else noise[i]
        split = int(0.95 * n_tokens)
        self.train, self.val = stream[:split], stream[split:]

    def sample_batches(self, rng: np.random.Generator, n_steps: int, batch_size: int, seq_len: int) -> np.ndarray:
        starts = rng.integers(0, len(self.train) - seq_len, size=(n_steps, batch_size))
        return self.train[starts[..., None] + np.arange(seq_len + 1)]

    def eval_batches(self, batch_size: int, seq_len: int, max_tokens: int) -> np.ndarray:
        n = max(1, max_tokens // (batch_size * seq_len))
        return self.val[: n * batch_size * (seq_len + 1)].reshape(n, batch_size, seq_len + 1)


def largest_relative_difference(a: list[RungResult], b: list[RungResult]) -> float:
    worst = 0.0
    for x, y in zip(a, b):
        if [p["step"] for p in x.curve] != [p["step"] for p in y.curve]:
            return float("inf")
        for p, q in zip(x.curve, y.curve):
            for name in ("train_loss", "eval_loss"):
                worst = max(worst, abs(p[name] - q[name]) / abs(q[name]))
    return worst


def timed(fn) -> tuple[list[RungResult], float, Programs]:
    programs = Programs()
    start = time.perf_counter()
    results = fn(programs)
    return results, time.perf_counter() - start, programs


def compare(rung: Rung, data: Any, trains: list[TrainConfig], vocab: int, batched_first: bool) -> dict[str, Any]:
    def one_by_one(programs: Programs) -> list[RungResult]:
        return [train_rung(rung, data, t, vocab_size=vocab, programs=programs) for t in trains]

    def batched(programs: Programs) -> list[RungResult]:
        return train_rung_batched(rung, data, trains, vocab_size=vocab, programs=programs)

    order = [("batched", batched), ("one_by_one", one_by_one)]
    measured = dict((name, timed(fn)) for name, fn in (order if batched_first else order[::-1]))
    alone, alone_wall, alone_programs = measured["one_by_one"]
    batch, batch_wall, batch_programs = measured["batched"]
    alone_train = sum(r.train_seconds for r in alone)
    batch_train = sum(r.train_seconds for r in batch)
    return {
        "rung": rung.name, "shape": f"d{rung.d_model} L{rung.n_layers} H{rung.n_heads}", "steps": trains[0].steps,
        "first": "batched" if batched_first else "one_by_one",
        "one_by_one": {"wall_s": alone_wall, "train_s": alone_train, "compile_s": alone_programs.seconds,
                       "compiles": alone_programs.compiles, "final_eval_loss": [r.final_eval_loss for r in alone]},
        "batched": {"wall_s": batch_wall, "train_s": batch_train, "compile_s": batch_programs.seconds,
                    "compiles": batch_programs.compiles, "final_eval_loss": [r.final_eval_loss for r in batch]},
        "speedup_wall": alone_wall / batch_wall,
        "speedup_train": alone_train / batch_train,
        "max_rel_loss_diff": largest_relative_difference(batch, alone),
        "diverged": [r.diverged for r in alone] + [r.diverged for r in batch],
    }


def run_profile(name: str, rungs: list[str], steps: int | None, eval_tokens: int | None,
                rows: list[dict[str, Any]], flip: list[bool]) -> None:
    profile = get_profile(name)
    train = profile.train
    if steps is not None:  # a cut recipe: warm-up scaled with it, one evaluation at the end
        warmup = max(1, round(train.warmup_steps * steps / train.steps))
        train = dataclasses.replace(train, steps=steps, warmup_steps=warmup,
                                    eval_interval=steps, chunk_steps=min(train.chunk_steps, steps))
    if eval_tokens is not None:
        train = dataclasses.replace(train, eval_tokens=eval_tokens)
    note = "" if steps is None else f" (steps cut to {train.steps} of {profile.train.steps})"
    print(f"\nprofile {name}{note}: batch {train.batch_size} x seq {train.seq_len}, vocab {profile.vocab_size}, "
          f"rate {train.learning_rate:g}, eval {train.eval_tokens} tokens")
    data = MarkovTokens(profile.vocab_size)
    experiments = {
        "3 seeds": [dataclasses.replace(train, seed=s) for s in SEEDS],
        "3 rates": [dataclasses.replace(train, learning_rate=train.learning_rate * f) for f in RATE_FACTORS],
    }
    for rung_name in rungs:
        rung = profile.rung(rung_name)
        for experiment, trains in experiments.items():
            flip[0] = not flip[0]
            row = {"profile": name, "cut_steps": steps is not None, "experiment": experiment,
                   **compare(rung, data, trains, profile.vocab_size, batched_first=flip[0]),
                   "load_average_1min": os.getloadavg()[0]}  # the 2 cores are shared: how busy they were
            rows.append(row)
            a, b = row["one_by_one"], row["batched"]
            print(f"  {rung_name} {row['shape']:>11} {experiment}: one-by-one {a['wall_s']:6.1f} s "
                  f"(train {a['train_s']:6.1f}, compile {a['compile_s']:4.1f}) | batched {b['wall_s']:6.1f} s "
                  f"(train {b['train_s']:6.1f}, compile {b['compile_s']:4.1f}) | speed-up wall "
                  f"{row['speedup_wall']:.2f}x, train {row['speedup_train']:.2f}x | max rel loss diff "
                  f"{row['max_rel_loss_diff']:.1e} | load {row['load_average_1min']:.1f}", flush=True)


def chunk_only(rungs: list[str], repeats: int) -> list[dict[str, Any]]:
    """Seconds of one warm 50-step chunk of 3 seeds, one by one against batched, alternating, per smoke rung."""
    profile = get_profile("smoke")
    train, rows = profile.train, []
    data = MarkovTokens(profile.vocab_size, 300_000)
    for name in rungs:
        rung = profile.rung(name)
        trains = [dataclasses.replace(train, seed=s) for s in SEEDS]

        def trainer(t: TrainConfig) -> RungTrainer:
            model = build_model(profile.vocab_size, rung.d_model, rung.n_layers, rung.n_heads, dropout=t.dropout,
                                seed=t.seed)
            return RungTrainer(model, t, programs, shape=rung_shape(rung, profile.vocab_size, CausalSelfAttention))

        programs = Programs()
        singles, batch = [trainer(t) for t in trains], BatchedTrainer([trainer(t) for t in trains])
        tokens = [data.sample_batches(np.random.default_rng(t.seed), train.chunk_steps, train.batch_size,
                                      train.seq_len) for t in trains]
        stacked = np.stack(tokens)
        alone_s, batched_s = [], []
        for repeat in range(repeats + 1):  # the first compiles and warms up, untimed
            start = time.perf_counter()
            for single, t in zip(singles, tokens):
                single.run_chunk(t, repeat * train.chunk_steps).block_until_ready()
            alone_s.append(time.perf_counter() - start)
            start = time.perf_counter()
            batch.run_chunk(stacked, repeat * train.chunk_steps).block_until_ready()
            batched_s.append(time.perf_counter() - start)
        alone_s, batched_s = alone_s[1:], batched_s[1:]
        row = {"rung": name, "one_by_one_s": alone_s, "batched_s": batched_s,
               "speedup_median": float(np.median(np.array(alone_s) / np.array(batched_s))),
               "speedup_best": min(alone_s) / min(batched_s), "load_average_1min": os.getloadavg()[0]}
        rows.append(row)
        print(f"  {name}: 3 x {train.chunk_steps} steps one by one {np.median(alone_s):.2f} s, batched "
              f"{np.median(batched_s):.2f} s (medians of {repeats}); speed-up median {row['speedup_median']:.2f}x, "
              f"best-of {row['speedup_best']:.2f}x | load {row['load_average_1min']:.1f}", flush=True)
    return rows


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--smoke-rungs", default="r0,r1,r2,r3")
    parser.add_argument("--seed-rungs", default="r0", help="rungs of the seed profile ('' for none)")
    parser.add_argument("--seed-steps", type=int, default=20, help="the seed profile's steps, cut (full: 100,000)")
    parser.add_argument("--seed-eval-tokens", type=int, default=65_536, help="the seed profile's eval tokens, cut")
    parser.add_argument("--tolerance", type=float, default=1e-5, help="largest relative loss difference accepted")
    parser.add_argument("--chunk-repeats", type=int, default=0, help="measure only warm chunks, this many times")
    parser.add_argument("--out", default=str(ROOT / "experiments/benchmarks/results/batched_training.json"))
    args = parser.parse_args()
    if args.chunk_repeats:
        rows = chunk_only(args.smoke_rungs.split(","), args.chunk_repeats)
        Path(args.out).write_text(json.dumps({"cpus": os.cpu_count(), "repeats": args.chunk_repeats, "rows": rows},
                                             indent=1))
        print(f"wrote {args.out}")
        return

    start = time.perf_counter()
    rows: list[dict[str, Any]] = []
    flip = [True]
    if args.smoke_rungs:
        run_profile("smoke", args.smoke_rungs.split(","), None, None, rows, flip)
    if args.seed_rungs:
        run_profile("seed", args.seed_rungs.split(","), args.seed_steps, args.seed_eval_tokens, rows, flip)
    worst = max(r["max_rel_loss_diff"] for r in rows)
    agree = worst <= args.tolerance
    print(f"\nlargest relative loss difference {worst:.1e} (tolerance {args.tolerance:g}): "
          f"{'losses agree' if agree else 'LOSSES DISAGREE'}; {time.perf_counter() - start:.0f} s in all")
    Path(args.out).parent.mkdir(parents=True, exist_ok=True)
    Path(args.out).write_text(json.dumps({
        "machine": {"cpus": os.cpu_count(), "backend": jax.default_backend(), "jax": jax.__version__,
                    "python": platform.python_version()},
        "seed_steps": args.seed_steps, "seed_eval_tokens": args.seed_eval_tokens, "tolerance": args.tolerance,
        "max_rel_loss_diff": worst, "losses_agree": agree, "rows": rows}, indent=1))
    print(f"wrote {args.out}")
    if not agree:
        sys.exit(1)


if __name__ == "__main__":
    main()
