"""The files the package ships: framework programs and run configs, found with importlib.resources.

They live in the package (``openevolve_genesys/frameworks``, ``openevolve_genesys/configs``) so that a wheel
or a non-editable install has them; in a checkout those entries are links to the top-level ``frameworks/``
and ``configs/`` folders, the copies users read and edit, so there is one source of truth.
"""

from __future__ import annotations

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
