"""Where the training tokens come from: one small, strictly validated config.

The YAML loader hands us a plain mapping; a misspelt key must fail loudly here, because OpenEvolve
0.4.0 drops unknown keys silently and a run would quietly train on the default corpus.
"""

from __future__ import annotations

import dataclasses
import os
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Mapping

from openevolve_genesys.strict import reject_unknown

STDLIB = "stdlib"
HF_PREFIX = "hf:"
TOKEN_SUFFIXES = (".bin", ".npy")

SOURCE_FORMS = (
    "'stdlib' (the running Python's standard library, no download), "
    "a text file or a folder of *.txt/*.md/*.py files, "
    "a token file (.npy, or raw uint16 .bin) or a folder holding train.bin + val.bin (nanoGPT style), "
    "or 'hf:<dataset name or local dir>' (needs the 'datasets' extra)"
)


@dataclass(frozen=True)
class DataConfig:
    source: str = STDLIB
    # A cap on raw text read, so the default corpus and a huge text dataset both stay a bounded,
    # deterministic prefix (documents in sorted path order or dataset order).
    max_corpus_bytes: int = 24_000_000
    val_fraction: float = 0.05
    text_field: str = "text"  # column holding the text of a Hugging Face dataset
    hf_split: str = "train"
    cache_dir: str | None = None  # default: $GENESYS_CACHE_DIR or ~/.cache/openevolve-genesys

    def __post_init__(self) -> None:
        if not isinstance(self.source, str) or not self.source.strip():
            raise ValueError(f"data.source must be a non-empty string; accepted forms: {SOURCE_FORMS}")
        if self.max_corpus_bytes <= 0:
            raise ValueError(f"data.max_corpus_bytes must be positive, got {self.max_corpus_bytes}")
        if not 0.0 < self.val_fraction < 1.0:
            raise ValueError(f"data.val_fraction must lie strictly between 0 and 1, got {self.val_fraction}")

    @classmethod
    def from_dict(cls, d: Mapping[str, Any], where: str = "data") -> "DataConfig":
        """Build from a YAML mapping; an unknown key raises ValueError naming the nearest valid key."""
        reject_unknown(d, [f.name for f in dataclasses.fields(cls)], where)
        return cls(**dict(d))

    def resolved_cache_dir(self) -> Path:
        """The cache root: explicit setting, then $GENESYS_CACHE_DIR, then the user's cache folder."""
        if self.cache_dir:
            return Path(self.cache_dir).expanduser()
        env = os.environ.get("GENESYS_CACHE_DIR")
        if env:
            return Path(env).expanduser()
        return Path.home() / ".cache" / "openevolve-genesys"
