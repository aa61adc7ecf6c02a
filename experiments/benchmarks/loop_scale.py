"""The selection loop at scale: decision time, bytes per iteration and saved state size.

A ``GenesysDatabase`` is filled with 100, 1,000 and 10,000 simulated designs of the coefficient-dynamics
space (their real program text; losses from the selector benchmark's landscape; 1-4 verified rungs with
successive-halving odds: 1/3 of the designs reach each next rung), all valued through ``add_design``.
Then, per size:

- one ``select_design`` and one ``select_verification`` (median of repeats; target: under 50 ms at
  10,000 designs), and one ``update_record`` (the bookkeeping after every result);
- bytes a worker receives per design iteration: ours sends the prompt dict that ``PromptSampler.build``
  returns for the selector's choice (built as ``controller/run.py`` builds it); OpenEvolve 0.4.0 pickles a
  snapshot of every program into each submitted iteration (``ProcessParallelController.
  _create_database_snapshot``, called here on the same database);
- bytes on disk of ``GenesysDatabase.save`` (OpenEvolve's checkpoint plus our records) and its time.

    python experiments/benchmarks/loop_scale.py                      # ~1-2 min
    python experiments/benchmarks/loop_scale.py --sizes 100 1000 --profile
"""

from __future__ import annotations

import argparse
import cProfile
import io
import pickle
import pstats
import random
import shutil
import statistics
import sys
import tempfile
import time
from pathlib import Path
from types import SimpleNamespace
from typing import Callable

import numpy as np

HERE = Path(__file__).resolve().parent
sys.path.insert(0, str(HERE.parents[1]))  # run from a checkout without installing
sys.path.insert(0, str(HERE))

from openevolve.config import DatabaseConfig  # noqa: E402
from openevolve.database import Program  # noqa: E402
from openevolve.process_parallel import ProcessParallelController  # noqa: E402

from openevolve_genesys.controller.ledger import curve_text  # noqa: E402
from openevolve_genesys.prompts.sampler import PromptRequest, PromptSampler, ReferenceDesign  # noqa: E402
from openevolve_genesys.selection.database import RECORDS_FILE, GenesysDatabase  # noqa: E402
from openevolve_genesys.selection.selector import GenesysSelector, SelectorSettings  # noqa: E402
from selector_sim.landscape import Landscape, LandscapeSpec  # noqa: E402
from selector_sim.ours import BASELINE_ID, design_record  # noqa: E402
from selector_sim.trial import BASELINE, Trial  # noqa: E402

TARGET_MS = 50.0


def filled_database(size: int, seed: int = 0) -> tuple[GenesysDatabase, Landscape, float]:
    """A database of the baseline plus ``size`` valid designs; returns it and the mean ms per add_design
    over the last 100 adds (the cost of recording one result when the population is this big)."""
    land = Landscape(LandscapeSpec(invalid_fraction=0.0), seed)
    trial = Trial(land, budget=1.0, seed=seed)
    rng = np.random.default_rng(seed)
    db = GenesysDatabase(DatabaseConfig(random_seed=seed), baseline_id=BASELINE_ID, target_n=land.target_n)
    db.add_design(Program(id=BASELINE_ID, code=land.source(BASELINE)), design_record(trial, BASELINE, None, "ok"))
    designs = rng.choice(np.arange(1, land.size), size=size, replace=False)
    parents = [BASELINE_ID]
    tail_start = max(0, size - 100)
    tail_seconds = 0.0
    for i, design in enumerate(int(d) for d in designs):
        rungs = 1
        while rungs < len(land.rungs) and rng.random() < 1 / 3:  # successive halving's odds of promotion
            rungs += 1
        trial.losses[design] = {r: land.observe(design, r) for r in range(rungs)}
        parent = parents[int(rng.integers(len(parents)))]
        record = design_record(trial, design, parent, "ok")
        program = Program(id=record.id, code=land.source(design), parent_id=parent, iteration_found=i + 1,
                          metrics={"combined_score": 0.0, "outcome": "ok"})
        start = time.perf_counter()
        db.add_design(program, record)
        if i >= tail_start:
            tail_seconds += time.perf_counter() - start
        parents.append(record.id)
    return db, land, 1000.0 * tail_seconds / max(1, size - tail_start)


def median_ms(fn: Callable[[], object], repeats: int) -> float:
    fn()  # warm caches (numpy dispatch, first-call imports)
    times = []
    for _ in range(repeats):
        start = time.perf_counter()
        fn()
        times.append(time.perf_counter() - start)
    return 1000.0 * statistics.median(times)


def design_prompt(db: GenesysDatabase, selector: GenesysSelector, sampler: PromptSampler) -> dict[str, str]:
    """The prompt of one design iteration, built exactly as ``GenesysRun._design_attempt`` builds it."""
    choice = selector.select_design(db.records, BASELINE_ID, 0.5)
    record = db.records[choice.seed_id]
    references = [ReferenceDesign(rid, db.records[rid].operator.get("operator", "baseline"),
                                  curve_text(db.records[rid]), db.get(rid).code) for rid in choice.reference_ids]
    request = PromptRequest(framework="coefficient_dynamics", seed_code=db.get(choice.seed_id).code,
                            seed_curve=curve_text(record), unit=choice.unit, attempt=len(db.records),
                            instruction=choice.instruction, references=references,
                            library_refs=choice.library_refs, feedback=record.feedback)
    return sampler.build(request)


def openevolve_snapshot_bytes(db: GenesysDatabase) -> int:
    """What 0.4.0 pickles into every submitted iteration: its own snapshot function on this database."""
    snapshot = ProcessParallelController._create_database_snapshot(SimpleNamespace(database=db))
    snapshot["sampling_island"] = 0
    return len(pickle.dumps(snapshot, protocol=pickle.HIGHEST_PROTOCOL))


def saved_state(db: GenesysDatabase) -> tuple[int, int, int, float]:
    """(bytes, files, bytes of our records file, seconds) of ``GenesysDatabase.save`` into a fresh folder."""
    folder = Path(tempfile.mkdtemp(prefix="loop_scale_"))
    try:
        start = time.perf_counter()
        db.save(str(folder / "checkpoint"), iteration=len(db.records))
        seconds = time.perf_counter() - start
        files = [p for p in folder.rglob("*") if p.is_file()]
        records = (folder / "checkpoint" / RECORDS_FILE).stat().st_size
        return sum(p.stat().st_size for p in files), len(files), records, seconds
    finally:
        shutil.rmtree(folder)


def profile_top(fn: Callable[[], object], lines: int = 14) -> str:
    profiler = cProfile.Profile()
    profiler.enable()
    for _ in range(5):
        fn()
    profiler.disable()
    out = io.StringIO()
    pstats.Stats(profiler, stream=out).sort_stats("tottime").print_stats(lines)
    return out.getvalue()


def measure(size: int, repeats: int, profile: bool) -> dict:
    build_start = time.perf_counter()
    db, land, add_ms = filled_database(size)
    build_s = time.perf_counter() - build_start
    settings = SelectorSettings()
    sampler = PromptSampler()
    selector = GenesysSelector(settings, list(land.rungs), list(land.units),
                               sampler.library_keys("coefficient_dynamics"), random.Random(0))
    some_design = next(r for r in db.records.values() if r.id != BASELINE_ID and len(r.rungs) < 4)
    row = {
        "designs": size,
        "select_design_ms": median_ms(lambda: selector.select_design(db.records, BASELINE_ID, 0.5), repeats),
        "select_verification_ms": median_ms(
            lambda: selector.select_verification(db.records, BASELINE_ID, 0.5, busy=set()), repeats),
        "update_record_ms": median_ms(lambda: db.update_record(some_design), repeats),
        "add_design_ms": add_ms,
        "prompt_bytes": statistics.median(len(pickle.dumps(design_prompt(db, selector, sampler),
                                                           protocol=pickle.HIGHEST_PROTOCOL)) for _ in range(9)),
        "openevolve_snapshot_bytes": openevolve_snapshot_bytes(db),
        "build_s": build_s,
    }
    row["saved_bytes"], row["saved_files"], row["records_bytes"], row["save_s"] = saved_state(db)
    if profile:
        row["profile_select_verification"] = profile_top(
            lambda: selector.select_verification(db.records, BASELINE_ID, 0.5, busy=set()))
        row["profile_select_design"] = profile_top(lambda: selector.select_design(db.records, BASELINE_ID, 0.5))
    return row


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--sizes", type=int, nargs="+", default=[100, 1000, 10_000])
    parser.add_argument("--repeats", type=int, default=21)
    parser.add_argument("--profile", action="store_true", help="print cProfile's top functions of both decisions")
    args = parser.parse_args(argv)
    if any(s < 1 or s >= 24_570 for s in args.sizes) or args.repeats < 1:
        raise SystemExit("--sizes must be in [1, 24569] (the coefficient_dynamics space) and --repeats >= 1")

    rows = [measure(size, args.repeats, args.profile) for size in args.sizes]
    print("| designs | select_design ms | select_verification ms | update_record ms | add_design ms | "
          "ours: bytes per iteration (prompt) | OpenEvolve 0.4.0: bytes per iteration (snapshot) | ratio | "
          "saved state (files) | of which our records | save s |")
    print("|---|---|---|---|---|---|---|---|---|---|---|")
    for r in rows:
        print(f"| {r['designs']:,} | {r['select_design_ms']:.2f} | {r['select_verification_ms']:.2f} | "
              f"{r['update_record_ms']:.2f} | {r['add_design_ms']:.2f} | {r['prompt_bytes']:,.0f} | "
              f"{r['openevolve_snapshot_bytes']:,} | {r['openevolve_snapshot_bytes'] / r['prompt_bytes']:,.0f}x | "
              f"{r['saved_bytes'] / 1e6:.1f} MB ({r['saved_files']:,}) | {r['records_bytes'] / 1e6:.1f} MB | "
              f"{r['save_s']:.2f} |")
    largest = [r for r in rows if r["designs"] == max(args.sizes)]
    worst = max(max(r["select_design_ms"], r["select_verification_ms"]) for r in largest)
    verdict = "met" if worst < TARGET_MS else "NOT met"
    builds = ", ".join(f"{r['build_s']:.0f} s" for r in rows)
    print(f"\ntarget: a decision under {TARGET_MS:g} ms at {max(args.sizes):,} designs: {verdict} "
          f"(slowest decision {worst:.2f} ms); building the databases took {builds}")
    for r in rows:
        for key in ("profile_select_verification", "profile_select_design"):
            if key in r:
                print(f"\n## {key} at {r['designs']:,} designs (5 calls)\n{r[key]}")


if __name__ == "__main__":
    main()
