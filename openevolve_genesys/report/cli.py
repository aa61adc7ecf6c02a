"""`openevolve report RUN_DIR [--top K]`: plots and a one-page summary of a run, written to RUN_DIR/report/."""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

from openevolve_genesys.progress import bar_with_logs, progress_bar
from openevolve_genesys.report import plots
from openevolve_genesys.report.cache_savings import cache_lookup, cache_savings
from openevolve_genesys.report.load import RunFolderError, load_run
from openevolve_genesys.report.summary import write_summary


def build_report(run_dir: str | Path, *, top: int = 3, config: str | Path | None = None,
                 fitness_cache: str | Path | None = None, execute: bool = True,
                 progress: bool = True) -> dict[str, Path]:
    """Write the plots and ``summary.md`` into ``run_dir/report/``; returns their paths by name.

    ``config`` is the run's YAML (quadrant thresholds, fitness-cache location); ``execute=False`` skips
    running designs' code in the collision check and compares recorded results only."""
    if top < 1:
        raise ValueError(f"--top must be at least 1, got {top}")
    steps = ["read the run", "cache savings", "scaling curves", "best utility", "quadrants", "lineage", "summary"]
    bar = progress_bar(len(steps), "openevolve report", "step", enabled=None if progress else False)
    with bar_with_logs(bar):
        bar.set_postfix_str(steps[0])
        run = load_run(run_dir, config)
        out_dir = run.path / "report"
        out_dir.mkdir(exist_ok=True)
        bar.update()
        bar.set_postfix_str(steps[1])
        cache = cache_savings(run.events, lookup=cache_lookup(fitness_cache or _configured_cache(config, run.path)),
                              execute=execute)
        bar.update()
        drawn: dict[str, Path] = {}
        for name, draw in (("scaling_curves", lambda: plots.scaling_curves(run, out_dir, top)),
                           ("best_utility", lambda: plots.best_utility(run, out_dir)),
                           ("quadrants", lambda: plots.quadrant_map(run, out_dir)),
                           ("lineage", lambda: plots.lineage_tree(run, out_dir))):
            bar.set_postfix_str(name.replace("_", " "))
            drawn[name] = draw()
            bar.update()
        bar.set_postfix_str(steps[-1])
        summary = write_summary(run, cache, drawn, out_dir, top)
        bar.update()
    return {**drawn, "summary": summary}


def _configured_cache(config: str | Path | None, run_dir: Path) -> Path | None:
    """The fitness cache the run used: its YAML's genesys.cache_path, else the default location (None)."""
    path = Path(config) if config else run_dir / "config.yaml"
    if not path.is_file():
        return None
    from openevolve_genesys.config import load_run_config

    return load_run_config(path, run_folder_copy=True).genesys.evaluator.resolved_cache_path()


def main(argv: list[str]) -> int:
    parser = argparse.ArgumentParser(prog="openevolve report", description=__doc__)
    parser.add_argument("run_dir", help="the run folder (`openevolve CONFIG.yaml --output RUN_DIR`)")
    parser.add_argument("--top", type=int, default=3, help="designs shown with scaling curves and diffs (default 3)")
    parser.add_argument("--config", default=None,
                        help="the run's YAML, for its quadrant thresholds and fitness cache "
                             "(default: RUN_DIR/config.yaml when present, else the selector's defaults)")
    parser.add_argument("--fitness-cache", default=None,
                        help="the fitness cache SQLite file (default: the config's genesys.cache_path or "
                             "$GENESYS_CACHE_DIR/fitness.sqlite)")
    parser.add_argument("--no-exec", action="store_true",
                        help="collision check on recorded results only: do not run designs' code in the sandbox")
    args = parser.parse_args(argv)
    if args.top < 1:
        parser.error(f"--top must be at least 1, got {args.top}")
    if args.fitness_cache and not Path(args.fitness_cache).is_file():
        parser.error(f"--fitness-cache {args.fitness_cache} does not exist; pass the run's fitness.sqlite "
                     "(genesys.cache_path, default $GENESYS_CACHE_DIR/fitness.sqlite) or leave the option out")
    try:
        paths = build_report(args.run_dir, top=args.top, config=args.config, fitness_cache=args.fitness_cache,
                             execute=not args.no_exec)
    except RunFolderError as err:
        print(f"openevolve report: {err}", file=sys.stderr)
        return 2
    print(f"report written to {paths['summary'].parent}: " + ", ".join(p.name for p in paths.values()))
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
