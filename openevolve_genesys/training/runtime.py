"""Process-wide JAX settings: the persistent compilation cache and where caches live."""

from __future__ import annotations

import os
from pathlib import Path

import jax


def cache_root() -> Path:
    """$GENESYS_CACHE_DIR, else ~/.cache/openevolve-genesys: tokenizers, token streams, compiled programs."""
    return Path(os.environ.get("GENESYS_CACHE_DIR") or Path.home() / ".cache" / "openevolve-genesys")


def enable_compilation_cache(directory: str | os.PathLike | None = None) -> Path:
    """Persist XLA executables across processes: every sandboxed evaluation is a fresh process, and
    the baseline's rungs compile to the same programs every time."""
    path = Path(directory) if directory is not None else cache_root() / "xla"
    path.mkdir(parents=True, exist_ok=True)
    jax.config.update("jax_compilation_cache_dir", str(path))
    jax.config.update("jax_persistent_cache_min_compile_time_secs", 0.5)
    jax.config.update("jax_persistent_cache_min_entry_size_bytes", 0)
    return path
