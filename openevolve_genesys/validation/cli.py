"""`openevolve validate RUN_DIR [--seeds K] [--top N]`: retrain a run's top designs and its baseline at K
fresh seeds on every rung, each at its own learning rate, and say per rung whether the design beats the
baseline (paired differences, t interval, tests). Resumable: finished trainings are journaled in
RUN_DIR/validation/journal.jsonl and the fitness cache answers repeats."""

from __future__ import annotations

import argparse
import logging
import sys
from pathlib import Path
from typing import Any, Callable

from openevolve_genesys.report.load import RunFolderError
from openevolve_genesys.validation.journal import JOURNAL_FILE, Journal
from openevolve_genesys.validation.plan import ValidationPlan, make_plan
from openevolve_genesys.validation.results import summarise, summary_lines, write_outputs
from openevolve_genesys.validation.runner import run_plan
from openevolve_genesys.validation.trainer import EvaluatorTrainer, Trainer

OUTPUT_DIR = "validation"


def validate(run_dir: str | Path, *, seeds: int = 3, top: int = 3, profile: str | None = None,
             config: str | Path | None = None, first_seed: int | None = None, level: float = 0.95,
             trainer_factory: Callable[[ValidationPlan], Trainer] = EvaluatorTrainer,
             progress: bool = True) -> tuple[dict[str, Any], dict[str, Path]]:
    """Plan, train what is missing, and write ``validation.json`` and ``validation.md`` into
    ``run_dir/validation/``; returns the summary and the paths. ``trainer_factory`` builds the function
    that trains one job (the real one trains through the run's ScalingLawEvaluator)."""
    plan = make_plan(run_dir, seeds=seeds, top=top, profile=profile, config=config, first_seed=first_seed,
                     level=level)
    out_dir = plan.run_dir / OUTPUT_DIR
    outcome = run_plan(plan, trainer_factory(plan), Journal(out_dir / JOURNAL_FILE), progress=progress)
    summary = summarise(plan, outcome)
    return summary, write_outputs(summary, out_dir)


def main(argv: list[str]) -> int:
    parser = argparse.ArgumentParser(prog="openevolve validate", description=__doc__)
    parser.add_argument("run_dir", help="the run folder (`openevolve CONFIG.yaml --output RUN_DIR`)")
    parser.add_argument("--seeds", type=int, default=3, help="training seeds per design and rung (default 3)")
    parser.add_argument("--top", type=int, default=3,
                        help="designs to validate: the best by utility, confident ones first (default 3)")
    parser.add_argument("--profile", default=None,
                        help="ladder profile (smoke, seed, genesys); default: the one the run trained on")
    parser.add_argument("--config", default=None, help="the run's YAML (default: RUN_DIR/config.yaml)")
    parser.add_argument("--first-seed", type=int, default=None,
                        help="first validation seed (default: the run's training seed + 1)")
    parser.add_argument("--level", type=float, default=0.95, help="confidence level of the intervals (default 0.95)")
    parser.add_argument("--log-level", default="INFO", choices=["DEBUG", "INFO", "WARNING", "ERROR"])
    args = parser.parse_args(argv)
    for name, value, least in (("--seeds", args.seeds, 1), ("--top", args.top, 1)):
        if value < least:
            parser.error(f"{name} must be at least {least}, got {value}")
    if not 0.0 < args.level < 1.0:
        parser.error(f"--level must lie strictly between 0 and 1 (e.g. 0.95), got {args.level}")
    logging.basicConfig(level=args.log_level, format="%(asctime)s %(levelname)s %(name)s: %(message)s")
    for noisy in ("jax", "absl", "openevolve.database"):
        logging.getLogger(noisy).setLevel(logging.WARNING)
    try:
        summary, paths = validate(args.run_dir, seeds=args.seeds, top=args.top, profile=args.profile,
                                  config=args.config, first_seed=args.first_seed, level=args.level)
    except (RunFolderError, ValueError) as err:
        print(f"openevolve validate: {err}", file=sys.stderr)
        return 2
    for line in summary_lines(summary):
        print(line)
    print(f"validation written to {paths['markdown'].parent}: " + ", ".join(p.name for p in paths.values()))
    return 0 if summary["complete"] else 1  # 1: some trainings failed outside the designs; a rerun retries them


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
