"""openevolve-genesys: Genesys-style evolution of sequence mixers for OpenEvolve, scored by scaling laws in JAX."""

from typing import Any

__version__ = "0.1.0"
__all__ = ["run"]


def run(config_path: str, **options: Any) -> Any:
    """Run (or resume) the evolution a run YAML describes, as ``openevolve CONFIG`` does; returns the best
    design's record. Options: iterations, output, resume, profile. Imported lazily so that importing the
    package does not start JAX."""
    from openevolve_genesys.cli import run as run_config

    return run_config(config_path, **options)
