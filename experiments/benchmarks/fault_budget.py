"""What a flaky LLM endpoint costs an evolution, with the budget layer and with OpenEvolve's stock accounting.

    python experiments/benchmarks/fault_budget.py --attempts 8 --hang-rate 0.3 --seed 0 [--fault slow]

The same offline evolution (coefficient dynamics, smoke ladder with 60 training steps per rung) runs twice
against a loopback OpenAI-compatible server (tests/llm/fault_server.py) that fails a fixed, seeded share
of requests and otherwise answers like the offline mutator. The fault is ``hang`` (headers, then nothing)
or ``slow`` (the answer streamed at ``--slow-rate`` tokens/s, far too slow to finish). Both runs get the
same attempt budget:

- budget layer: the streaming client cuts a hang after ``--first-token`` seconds without a token, and a
  slow stream once its rate stays under ``--min-rate`` tokens/s past a 5 s grace; the attempt is classed
  ``stalled``, re-queued with the same seed and prompt, and not charged;
- stock: OpenEvolve's own client waits ``--stock-timeout`` seconds, and every submission is charged (as
  OpenEvolve 0.4.0 counts iterations).

It prints the real design evaluations each run obtained, the LLM calls, seconds and tokens wasted on the
faults, and wall time. Tokens are completion tokens the client received (the server's usage, else
streamed chunks). OpenEvolve's own client reads ``usage`` only from a call that succeeds, and a call it
times out leaves no count, so the stock run's wasted tokens show as "not reported". The table and the
settings go to ``--out`` (default ``results/fault_budget_<fault>.json``); each run's folder is kept under
``--output`` for inspection.
"""

from __future__ import annotations

import argparse
import json
import math
import random
import shutil
import sys
import time
from pathlib import Path

import yaml

ROOT = Path(__file__).resolve().parents[2]
sys.path.insert(0, str(ROOT / "tests" / "llm"))  # the fault server is shared with the tests

from fault_server import FaultServer, Reply, Request  # noqa: E402

import openevolve_genesys  # noqa: E402
from openevolve_genesys.mutations.client import OfflineMutationLLM  # noqa: E402

SHORT_TRAINING = {"train": {"steps": 60, "warmup_steps": 10, "eval_interval": 30, "chunk_steps": 30}}


def faulty(rate: float, seed: int, fault: str = "hang", slow_rate: float = 1.0):
    """Fail exactly ``rate`` of the requests with ``fault``, spread evenly from a seeded offset (the same
    requests in both runs); otherwise answer like the offline mutator."""
    offset, mutator = random.Random(seed).random(), OfflineMutationLLM()

    def choose(request: Request) -> Reply:
        i = request.index
        if math.floor((i + 1) * rate + offset) > math.floor(i * rate + offset):
            if fault == "slow":
                return Reply("slow", text=mutator.respond(request.last_user_message), tokens_per_second=slow_rate)
            return Reply("hang")
        return Reply("ok", text=mutator.respond(request.last_user_message))
    return choose


def write_config(path: Path, url: str, accounting: str, first_token: float, stock_timeout: float,
                 min_rate: float) -> Path:
    raw = yaml.safe_load((ROOT / "configs" / "coefficient_dynamics.yaml").read_text())
    raw["checkpoint_interval"] = 0
    raw["llm"] = {"models": [{"name": "flaky-model", "api_base": url, "api_key": "benchmark", "weight": 1.0}],
                  "retries": 0, "retry_delay": 0, "timeout": int(stock_timeout)}
    # Tune mode is off: the LLM is what is measured, and sweeps would add the same seconds to both arms.
    raw["genesys"].update(profile_overrides=SHORT_TRAINING, accounting=accounting, tune={"enabled": False},
                          stall={"first_token_seconds": first_token, "idle_seconds": first_token,
                                 "min_tokens_per_second": min_rate, "grace_seconds": 5.0},
                          cache_path=str(path.with_suffix(".sqlite")))  # no run may reuse the other's results
    # Design attempts only (the LLM is what is measured): no verification beyond one per rung at the end.
    raw["genesys"]["selector"] = {"verify_share": 0.0, "halving_ratio": 1000.0, "min_per_rung": 0}
    path.write_text(yaml.safe_dump(raw))
    return path


def fresh(output: Path, name: str) -> Path:
    """The run's folder and fitness cache, emptied: history.jsonl appends and the cache would answer a
    repeated design, so an earlier run's leftovers would be counted (and evaluated for free) again."""
    run = output / name
    if run.exists():
        shutil.rmtree(run)
    for suffix in (".sqlite", ".sqlite-wal", ".sqlite-shm"):  # the cache is in WAL mode
        output.joinpath(name + suffix).unlink(missing_ok=True)
    return run


def one_run(name: str, args: argparse.Namespace) -> dict:
    output = fresh(Path(args.output), name)
    with FaultServer(faulty(args.hang_rate, args.seed, args.fault, args.slow_rate)) as server:
        config = write_config(Path(args.output) / f"{name}.yaml", server.url, name, args.first_token,
                              args.stock_timeout, args.min_rate)
        start = time.perf_counter()
        openevolve_genesys.run(str(config), iterations=args.attempts, output=str(output), profile="smoke")
        wall = time.perf_counter() - start
        requests = dict(server.requests)
    designs = [json.loads(line) for line in (output / "history.jsonl").read_text().splitlines()]
    designs = [e for e in designs if e["type"] == "design"]
    evaluated = [e for e in designs if e["code"] is not None and e["outcome"] in ("ok", "invalid")]
    failed = [e for e in designs if e["class"] in ("stalled", "infra") or e["failure"] == "llm_error"]
    summary = json.loads((output / "summary.json").read_text())
    model = summary["models"]["flaky-model"]
    return {"run": name, "fault": args.fault, "attempt budget": args.attempts, "LLM requests": sum(requests.values()),
            "faulty requests": requests.get(args.fault, 0), "designs evaluated": len(evaluated),
            "valid designs": sum(e["outcome"] == "ok" for e in evaluated),
            "charged attempts": summary["charged_attempts"],
            "seconds lost to faults": round(sum(e["llm_seconds"] for e in failed), 1),
            "tokens received": model["tokens"],
            # The stock client never reports a failed call's tokens: a 0 here would claim nothing was wasted.
            "tokens wasted": model["wasted_tokens"] if name == "genesys" else "not reported",
            "wall seconds": round(wall, 1)}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--attempts", type=int, default=8)
    parser.add_argument("--hang-rate", type=float, default=0.3, help="share of requests that fail")
    parser.add_argument("--fault", choices=["hang", "slow"], default="hang")
    parser.add_argument("--slow-rate", type=float, default=1.0, help="slow fault: tokens per second streamed")
    parser.add_argument("--min-rate", type=float, default=3.0, help="budget layer: rate floor (tokens/s)")
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--first-token", type=float, default=5.0, help="budget layer: stall cut (s)")
    parser.add_argument("--stock-timeout", type=float, default=30.0, help="stock client: llm.timeout (s)")
    parser.add_argument("--output", default="/tmp/fault_budget", help="folder for the two runs")
    parser.add_argument("--out", help="results JSON (default: results/fault_budget_<fault>.json)")
    args = parser.parse_args()
    out = Path(args.out) if args.out else Path(__file__).parent / "results" / f"fault_budget_{args.fault}.json"
    Path(args.output).mkdir(parents=True, exist_ok=True)
    rows = [one_run("genesys", args), one_run("stock", args)]
    out.parent.mkdir(parents=True, exist_ok=True)
    out.write_text(json.dumps({"command": " ".join(sys.argv), "settings": vars(args), "rows": rows}, indent=1))
    keys = list(rows[0])
    print("| " + " | ".join(keys) + " |")
    print("|" + "---|" * len(keys))
    for row in rows:
        print("| " + " | ".join(str(row[k]) for k in keys) + " |")


if __name__ == "__main__":
    main()
