"""Process-wide JAX settings: the persistent compilation cache and where caches live."""

from __future__ import annotations

import os
from pathlib import Path

import jax

CACHE_LIMIT_ENV = "GENESYS_COMPILED_CACHE_MB"
DEFAULT_CACHE_MB = 2048


def cache_root() -> Path:
    """$GENESYS_CACHE_DIR, else ~/.cache/openevolve-genesys: tokenizers, token streams, compiled programs."""
    return Path(os.environ.get("GENESYS_CACHE_DIR") or Path.home() / ".cache" / "openevolve-genesys")


def compiled_cache_bytes() -> int:
    """The compiled-program cache's size bound: $GENESYS_COMPILED_CACHE_MB megabytes (default 2048; 0 turns
    the cache off, -1 lifts the bound)."""
    raw = os.environ.get(CACHE_LIMIT_ENV, "").strip()
    if not raw:
        return DEFAULT_CACHE_MB << 20
    try:
        megabytes = int(raw)
    except ValueError:
        raise ValueError(f"{CACHE_LIMIT_ENV}={raw!r} is not a whole number of megabytes; set it to e.g. 2048, "
                         "0 (no cache) or -1 (unbounded)") from None
    if megabytes < -1:
        raise ValueError(f"{CACHE_LIMIT_ENV}={megabytes} must be >= -1 (-1: unbounded, 0: no cache)")
    return megabytes if megabytes == -1 else megabytes << 20


def enable_compilation_cache(directory: str | os.PathLike | None = None) -> Path | None:
    """Persist XLA executables across processes under ``<cache>/compiled``, least recently used evicted past
    the bound: every sandboxed evaluation is a fresh process, and the baseline's rungs, validation, resumed
    runs and a design's later rungs of a known shape compile to programs compiled before. Sandboxed children
    share it (the cache root is one of their writable paths). None when the bound is 0 (no cache)."""
    limit = compiled_cache_bytes()
    if limit == 0:
        return None
    path = Path(directory) if directory is not None else cache_root() / "compiled"
    path.mkdir(parents=True, exist_ok=True)
    jax.config.update("jax_compilation_cache_dir", str(path))
    jax.config.update("jax_compilation_cache_max_size", limit)
    # Every one is kept: a fresh child compiles dozens of tiny programs (parameter inits, the checks' probe) of
    # about 0.1 s each, which together cost more than a smoke rung's training; read back they take milliseconds.
    jax.config.update("jax_persistent_cache_min_compile_time_secs", 0.0)
    jax.config.update("jax_persistent_cache_min_entry_size_bytes", 0)
    return path
