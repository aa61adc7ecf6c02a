"""`openevolve CONFIG.yaml [...]`: run an evolution from one YAML (OpenEvolve's sections plus `genesys:`), or
several side by side, one per config; with ``--stage NAME --from BASE_RUN_DIR``, a combination stage of
``genesys.stages`` over a finished run.

Subcommands on a run folder: `openevolve report RUN_DIR` (plots and a summary) and
`openevolve validate RUN_DIR --seeds K` (retrain the top designs and the baseline at K fresh seeds)."""

from __future__ import annotations

import argparse
import dataclasses
import logging
import sys
from pathlib import Path
from typing import Sequence

from openevolve_genesys.config import ConfigError, configured_log_level, load_run_config
from openevolve_genesys.profile_choice import resolve_profile
from openevolve_genesys.training.profiles import PROFILES

log = logging.getLogger("openevolve_genesys")


def run(config_path: str, *, iterations: int | None = None, output: str | None = None, resume: bool = False,
        profile: str | None = None, devices: Sequence[str] | None = None):
    """Run (or resume) an evolution; returns the best design's record. Usable from notebooks and scripts."""
    from openevolve_genesys.controller.run import GenesysRun

    config = resolve_profile(load_run_config(config_path), profile)
    if devices:
        run_settings = dataclasses.replace(config.genesys.run, devices=tuple(devices))
        config = dataclasses.replace(config, genesys=dataclasses.replace(config.genesys, run=run_settings))
    output_dir = Path(output) if output else Path("runs") / Path(config_path).stem
    if output_dir.joinpath("history.jsonl").exists() and not resume:
        raise ConfigError(f"{output_dir} already holds a run; pass --resume to continue it or --output DIR for a new one")
    runner = GenesysRun(config, output_dir, iterations=iterations)
    log.info("%s; output in %s", runner.agent_description, output_dir)
    best = runner.run(resume=resume)
    return best


def main(argv: list[str] | None = None) -> int:
    argv = sys.argv[1:] if argv is None else list(argv)
    if argv[:1] == ["report"]:  # `openevolve report RUN_DIR`: plots and a summary of a finished or running run
        from openevolve_genesys.report.cli import main as report_main

        return report_main(argv[1:])
    if argv[:1] == ["validate"]:  # `openevolve validate RUN_DIR --seeds K`: retrain the winners at K seeds
        from openevolve_genesys.validation.cli import main as validate_main

        return validate_main(argv[1:])
    parser = argparse.ArgumentParser(prog="openevolve", description=__doc__,
                                     formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("configs", nargs="+", metavar="config",
                        help="run YAML, e.g. configs/coefficient_dynamics.yaml; several run side by side")
    parser.add_argument("--iterations", type=int, default=None, help="design attempts (default: max_iterations)")
    parser.add_argument("--output", default=None,
                        help="run folder (default: runs/<config name>); with several configs, their parent folder")
    parser.add_argument("--devices", default="",
                        help="comma-separated devices (CUDA ids or cpu): one per config, or the slots of one run")
    parser.add_argument("--resume", action="store_true", help="continue the run in the output folder")
    parser.add_argument("--profile", default=None, choices=sorted(PROFILES), help="ladder profile")
    parser.add_argument("--log-level", default=None, choices=["DEBUG", "INFO", "WARNING", "ERROR"],
                        help="logging level (default: the config's log_level, else INFO)")
    parser.add_argument("--stage", default=None, metavar="NAME",
                        help="run combination stage NAME of genesys.stages over a base run (see --from)")
    parser.add_argument("--from", dest="from_run", default=None, metavar="BASE_RUN_DIR",
                        help="the base run folder of --stage (default: the stage's `from`, else runs/<config name>)")
    args = parser.parse_args(argv)
    level = args.log_level or configured_log_level(args.configs[0])
    logging.basicConfig(level=level, format="%(asctime)s %(levelname)s %(name)s: %(message)s")
    logging.getLogger().setLevel(level)  # also when a host (a notebook, a test) has set up logging first
    for noisy in ("jax", "absl", "httpx", "openevolve.llm.ensemble"):
        logging.getLogger(noisy).setLevel(logging.WARNING)
    devices = [d for d in args.devices.split(",") if d.strip()]
    if args.stage and len(args.configs) > 1:
        print("openevolve: --stage runs one stage of one config; pass a single config", file=sys.stderr)
        return 2
    if len(args.configs) > 1:
        from openevolve_genesys.multirun import run_many

        extra = [f"--{k.replace('_', '-')}={v}" for k, v in (("iterations", args.iterations), ("profile", args.profile),
                                                            ("log_level", args.log_level)) if v is not None]
        extra += ["--resume"] if args.resume else []
        try:
            return run_many(args.configs, devices=devices, output_root=args.output or "runs", extra_args=extra)
        except ValueError as err:
            print(f"openevolve: {err}", file=sys.stderr)
            return 2
    try:
        if args.stage:  # its own folder, BASE_RUN_DIR/stages/NAME, and its own budget (openevolve_genesys/stages)
            from openevolve_genesys.stages.run import run_stage

            best = run_stage(args.configs[0], args.stage, base_dir=args.from_run, iterations=args.iterations,
                             resume=args.resume, profile=args.profile)
        else:
            best = run(args.configs[0], iterations=args.iterations, output=args.output, resume=args.resume,
                       profile=args.profile, devices=devices)
    except ConfigError as err:
        print(f"openevolve: {err}", file=sys.stderr)
        return 2
    if best is not None:
        # rounding first, then + 0.0, prints a float-noise utility of the baseline (-2e-15) as +0.0000, not -0.0000
        utility = "unvalued" if best.utility is None else f"{round(best.utility, 4) + 0.0:+.4f}"
        print(f"best design {best.id}: utility {utility}, confidence {best.confidence:.2f}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
