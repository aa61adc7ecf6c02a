"""The files the package ships: framework programs, run configs and stock OpenEvolve's evaluation file,
found with importlib.resources.

They live in the package (``openevolve_genesys/frameworks``, ``configs``, ``evolution``) so that a wheel or a
non-editable install has them; in a checkout those entries are links to the top-level ``frameworks/``,
``configs/`` and ``evolution/`` folders, the copies users read and edit, so there is one source of truth.

    python -m openevolve_genesys.resources evaluator | framework NAME | config NAME   # prints the file's path

gives an install without the checkout what ``openevolve-run`` needs, e.g.
``openevolve-run "$(python -m openevolve_genesys.resources framework matrix_mixer)" "$(python -m
openevolve_genesys.resources evaluator)" -c "$(python -m openevolve_genesys.resources config matrix_mixer)"``.
"""

from __future__ import annotations

import argparse
import sys
from importlib import resources
from pathlib import Path


def _folder(name: str) -> Path:
    # A package installed as files (wheel, sdist, editable) is a real folder; the sandboxed child needs a path.
    return Path(str(resources.files("openevolve_genesys").joinpath(name)))


def framework_file(name: str) -> Path:
    """The shipped template of framework ``name`` (a name of evaluation.program.FRAMEWORKS)."""
    return _folder("frameworks") / f"{name}.py"


def shipped_configs() -> list[str]:
    """The names of the shipped run configs, e.g. ``matrix_mixer``."""
    return sorted(p.stem for p in _folder("configs").glob("*.yaml"))


def shipped_config(name: str) -> Path | None:
    """The shipped config a command-line argument names: ``matrix_mixer``, ``matrix_mixer.yaml`` or
    ``configs/matrix_mixer.yaml`` (the README's spelling, also outside a checkout); None for any other."""
    path = Path(name)
    if path.parent not in (Path("."), Path("configs")) or path.suffix not in ("", ".yaml"):
        return None
    stem = path.name.removesuffix(".yaml")
    return _folder("configs") / f"{stem}.yaml" if stem in shipped_configs() else None


def evaluation_file() -> Path:
    """Stock OpenEvolve's evaluation file for this project (``openevolve-run PROGRAM EVALUATION_FILE``)."""
    return _folder("evolution") / "evaluator.py"


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m openevolve_genesys.resources",
                                     description="print the path of a file the package ships")
    parser.add_argument("kind", choices=["evaluator", "framework", "config"])
    parser.add_argument("name", nargs="?", help="the framework or config name, e.g. matrix_mixer")
    args = parser.parse_args(argv)
    if args.kind == "evaluator":
        path: Path | None = evaluation_file()
    elif args.name is None:
        parser.error(f"{args.kind} needs a name: one of {', '.join(shipped_configs())}")
    else:
        path = framework_file(args.name) if args.kind == "framework" else shipped_config(args.name)
    if path is None or not path.is_file():
        parser.error(f"no shipped {args.kind} {args.name!r}; names: {', '.join(shipped_configs())}")
    print(path)
    return 0


if __name__ == "__main__":
    sys.exit(main())
