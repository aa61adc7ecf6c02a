"""Training speed of the jitted JAX loop against an eager PyTorch reference of the same model.

    python experiments/benchmarks/train_speed.py --profile seed --steps 5 --repeats 3

For every rung of a profile, at the profile's vocab, batch and sequence length, both
implementations train for ``--steps`` optimizer steps per repeat, alternating JAX and PyTorch
(ABAB...) so that load from other processes hits both; the table reports medians, the best-repeat
ratio, and how many cores other processes took meanwhile (the 2-core machine is shared). The JAX
side is ``RungTrainer.run_chunk`` (one jitted dispatch of ``--steps`` steps, the loop the evaluator runs);
the PyTorch side is ``torch_reference.make_torch_trainer``. Tokens are uniform random ids drawn
before timing: data loading is not measured.

Achieved GFLOP/s counts 6 x (matmul weights + tied head) per token plus the causal attention term
6 x layers x seq x d_model (Kaplan et al. 2020); the machine's own fp32 peak is the best of a
2048^3 matmul in numpy, XLA and PyTorch, measured in the same run (before and after the rungs).
"""

from __future__ import annotations

import argparse
import dataclasses
import json
import os
import platform
import statistics
import sys
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Callable

import jax
import jax.numpy as jnp
import numpy as np
import torch

sys.path.insert(0, str(Path(__file__).resolve().parents[2]))  # run from a checkout without installing
sys.path.insert(0, str(Path(__file__).resolve().parent))

from openevolve_genesys.training.loop import RungTrainer  # noqa: E402
from openevolve_genesys.training.model import build_model  # noqa: E402
from openevolve_genesys.training.profiles import PROFILES, Rung, TrainConfig, get_profile  # noqa: E402
from torch_reference import make_torch_trainer  # noqa: E402


@dataclass
class RungSpeed:
    rung: str
    shape: str
    flops_per_token: float
    jax_tokens_per_s: float
    torch_tokens_per_s: float
    ratio: float  # median of the per-repeat JAX/PyTorch speed ratios
    ratio_best: float  # best JAX repeat over best PyTorch repeat: the least-disturbed estimate
    other_load: float  # cores busy with other processes during the timed repeats (0 = a clean measurement)
    jax_compile_s: float
    jax_gflops: float
    torch_gflops: float
    jax_fraction_of_peak: float
    torch_fraction_of_peak: float


def flops_per_token(rung: Rung, vocab_size: int, seq_len: int) -> float:
    """Training FLOPs per token: 6 x matmul weights (QKV, out, FFN up/down, tied head) + causal attention."""
    d, layers = rung.d_model, rung.n_layers
    matmul_weights = layers * (3 * d * d + d * d + 2 * 4 * d * d) + vocab_size * d
    # QK^T and AV over an average causal context of seq/2: 2 x 2 x (seq/2) x d per layer forward, x3 with backward.
    attention = 6 * layers * seq_len * d
    return 6.0 * matmul_weights + attention


def _best_rate(run: Callable[[], object], flops: float, reps: int = 5, rounds: int = 3) -> float:
    run()
    best = float("inf")
    for _ in range(rounds):
        start = time.perf_counter()
        for _ in range(reps):
            run()
        best = min(best, (time.perf_counter() - start) / reps)
    return flops / best / 1e9


def matmul_peak(n: int = 2048) -> dict[str, float]:
    """fp32 GFLOP/s of an n x n x n matmul in numpy, XLA and PyTorch: the machine's practical peak."""
    rng = np.random.default_rng(0)
    a, b = (rng.standard_normal((n, n), dtype=np.float32) for _ in range(2))
    flops = 2.0 * n**3
    ja, jb = jnp.asarray(a), jnp.asarray(b)
    xla_matmul = jax.jit(jnp.matmul)
    ta, tb = torch.from_numpy(a), torch.from_numpy(b)
    return {
        "numpy": _best_rate(lambda: a @ b, flops),
        "xla": _best_rate(lambda: xla_matmul(ja, jb).block_until_ready(), flops),
        "torch": _best_rate(lambda: ta @ tb, flops),
    }


def _machine_busy_seconds() -> float:
    """CPU seconds all processes have spent busy since boot (Linux /proc/stat; NaN elsewhere)."""
    try:
        fields = [int(x) for x in Path("/proc/stat").read_text().split("\n", 1)[0].split()[1:9]]
    except (OSError, ValueError):
        return float("nan")
    user, nice, system, _idle, _iowait, irq, softirq, steal = fields
    return (user + nice + system + irq + softirq + steal) / os.sysconf("SC_CLK_TCK")


class _Timer:
    """Wall seconds of a block, and the CPU seconds other processes took from the machine meanwhile."""

    def __enter__(self) -> "_Timer":
        self.wall, self.busy, self.cpu = time.perf_counter(), _machine_busy_seconds(), time.process_time()
        return self

    def __exit__(self, *exc: object) -> None:
        self.wall = time.perf_counter() - self.wall
        ours = time.process_time() - self.cpu
        self.others = max(_machine_busy_seconds() - self.busy - ours, 0.0)


def bench_rung(rung: Rung, vocab_size: int, train: TrainConfig, steps: int, repeats: int) -> dict[str, object]:
    """Raw per-repeat seconds of both implementations on the same random tokens, alternated."""
    rng = np.random.default_rng(train.seed)
    tokens = rng.integers(0, vocab_size, size=(repeats + 1, steps, train.batch_size, train.seq_len + 1),
                          dtype=np.int32)

    trainer = RungTrainer(build_model(vocab_size, rung.d_model, rung.n_layers, rung.n_heads,
                                      dropout=train.dropout, seed=train.seed), train)
    trainer.run_chunk(tokens[0], 0).block_until_ready()  # compiles, then one untimed warm-up chunk
    _, torch_step = make_torch_trainer(vocab_size, rung.d_model, rung.n_layers, rung.n_heads, train)
    for batch in tokens[0, :2]:  # warm-up: allocator, oneDNN primitive caches
        float(torch_step(batch))

    jax_seconds, torch_seconds, others = [], [], []
    for r in range(1, repeats + 1):
        with _Timer() as jax_timer:
            losses = np.asarray(trainer.run_chunk(tokens[r], r * steps))
        with _Timer() as torch_timer:
            for batch in tokens[r]:
                loss = torch_step(batch)
            torch_loss = float(loss)
        jax_seconds.append(jax_timer.wall)
        torch_seconds.append(torch_timer.wall)
        others.append(jax_timer.others + torch_timer.others)
        if not (np.isfinite(losses).all() and np.isfinite(torch_loss)):
            raise FloatingPointError(f"rung {rung.name}: a non-finite loss (JAX {losses[-1]}, PyTorch {torch_loss})")
    return {"compile_s": trainer.compile_seconds, "jax_s": jax_seconds, "torch_s": torch_seconds,
            "others_cpu_s": others}


def summarise(rung: Rung, vocab_size: int, train: TrainConfig, steps: int, raw: dict[str, object],
              peak: float) -> RungSpeed:
    tokens = steps * train.batch_size * train.seq_len
    jax_tps = tokens / statistics.median(raw["jax_s"])
    torch_tps = tokens / statistics.median(raw["torch_s"])
    ratio = statistics.median(t / j for j, t in zip(raw["jax_s"], raw["torch_s"]))
    fpt = flops_per_token(rung, vocab_size, train.seq_len)
    return RungSpeed(
        rung=rung.name, shape=f"d{rung.d_model} L{rung.n_layers} H{rung.n_heads}", flops_per_token=fpt,
        jax_tokens_per_s=jax_tps, torch_tokens_per_s=torch_tps, ratio=ratio,
        ratio_best=min(raw["torch_s"]) / min(raw["jax_s"]),
        other_load=sum(raw["others_cpu_s"]) / (sum(raw["jax_s"]) + sum(raw["torch_s"])),
        jax_compile_s=raw["compile_s"],
        jax_gflops=fpt * jax_tps / 1e9, torch_gflops=fpt * torch_tps / 1e9,
        jax_fraction_of_peak=fpt * jax_tps / 1e9 / peak, torch_fraction_of_peak=fpt * torch_tps / 1e9 / peak,
    )


def format_table(rows: list[RungSpeed], peak: float) -> str:
    lines = [
        "| rung | shape | MFLOP/token | tok/s JAX | tok/s torch | JAX/torch (median) | JAX/torch (best) "
        "| JAX compile s | GFLOP/s JAX | GFLOP/s torch | JAX of peak | torch of peak | other load (cores) |",
        "|---|---|---|---|---|---|---|---|---|---|---|---|---|",
    ]
    for r in rows:
        lines.append(
            f"| {r.rung} | {r.shape} | {r.flops_per_token / 1e6:.1f} | {r.jax_tokens_per_s:,.0f} "
            f"| {r.torch_tokens_per_s:,.0f} | {r.ratio:.2f}x | {r.ratio_best:.2f}x | {r.jax_compile_s:.1f} "
            f"| {r.jax_gflops:.1f} | {r.torch_gflops:.1f} | {r.jax_fraction_of_peak:.0%} "
            f"| {r.torch_fraction_of_peak:.0%} | {r.other_load:.2f} |"
        )
    lines.append(f"\nmachine fp32 peak (best 2048^3 matmul, numpy/XLA/torch): {peak:.1f} GFLOP/s")
    return "\n".join(lines)


def machine() -> str:
    model = platform.processor() or "unknown CPU"
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                model = line.split(":", 1)[1].strip()
                break
    except OSError:
        pass
    return (f"{model}, {os.cpu_count()} cores; python {platform.python_version()}, jax {jax.__version__}, "
            f"torch {torch.__version__}, numpy {np.__version__}; XLA_FLAGS={os.environ.get('XLA_FLAGS', '')!r}")


def parse_args(argv: list[str] | None = None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--profile", default="seed", choices=sorted(PROFILES))
    parser.add_argument("--rungs", default="", help="comma-separated rung names (default: every rung)")
    parser.add_argument("--steps", type=int, default=5, help="optimizer steps per timed repeat (= JAX chunk K)")
    parser.add_argument("--repeats", type=int, default=3, help="timed ABAB repeats per rung; medians are reported")
    parser.add_argument("--threads", type=int, default=os.cpu_count() or 1, help="torch.set_num_threads")
    parser.add_argument("--loss-chunk-tokens", type=int, default=None,
                        help="override the profile's train.loss_chunk_tokens (0 = unchunked head)")
    parser.add_argument("--json", type=Path, default=None, help="also write the results here")
    args = parser.parse_args(argv)
    if args.steps <= 0 or args.repeats <= 0 or args.threads <= 0:
        parser.error("--steps, --repeats and --threads must be positive")
    return args


def main(argv: list[str] | None = None) -> None:
    args = parse_args(argv)
    torch.set_num_threads(args.threads)
    profile = get_profile(args.profile)
    rungs = [profile.rung(name) for name in args.rungs.split(",")] if args.rungs else list(profile.rungs)
    overrides = {"chunk_steps": args.steps}
    if args.loss_chunk_tokens is not None:
        overrides["loss_chunk_tokens"] = args.loss_chunk_tokens
    train = dataclasses.replace(profile.train, **overrides)
    print(machine())
    print(f"torch threads {torch.get_num_threads()}; profile {profile.name}: vocab {profile.vocab_size}, batch "
          f"{train.batch_size} x seq {train.seq_len}, {args.steps} steps x {args.repeats} repeats, "
          f"loss_chunk_tokens {train.loss_chunk_tokens}", flush=True)

    peaks = matmul_peak()
    raws = {}
    for rung in rungs:
        raws[rung.name] = bench_rung(rung, profile.vocab_size, train, args.steps, args.repeats)
        raw = raws[rung.name]
        print(f"  {rung.name}: seconds per repeat JAX {' '.join('%.2f' % x for x in raw['jax_s'])}, "
              f"torch {' '.join('%.2f' % x for x in raw['torch_s'])}; other processes' CPU s "
              f"{' '.join('%.1f' % x for x in raw['others_cpu_s'])}", flush=True)
    after = matmul_peak()
    peaks = {k: max(v, after[k]) for k, v in peaks.items()}
    peak = max(peaks.values())
    print("matmul GFLOP/s: " + ", ".join(f"{k} {v:.1f}" for k, v in peaks.items()))

    rows = [summarise(rung, profile.vocab_size, train, args.steps, raws[rung.name], peak) for rung in rungs]
    print(format_table(rows, peak))
    if args.json is not None:
        args.json.write_text(json.dumps({"machine": machine(), "args": {k: str(v) for k, v in vars(args).items()},
                                         "matmul_gflops": peaks, "rows": [dataclasses.asdict(r) for r in rows],
                                         "raw": raws}, indent=2))


if __name__ == "__main__":
    main()
