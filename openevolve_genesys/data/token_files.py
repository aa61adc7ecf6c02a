"""Pre-tokenised sources, nanoGPT style: a .npy or raw uint16 .bin file, or a folder of train + val files.

The files are memory-mapped, never copied, so a multi-gigabyte stream costs no RAM and is shared by
every worker through the page cache. The one full pass that checks the ids and hashes the stream is
remembered in the cache, keyed by the file's path, size and modification time.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np

from openevolve_genesys.data.cache import file_stat_key, read_json, write_json_atomic
from openevolve_genesys.data.config import TOKEN_SUFFIXES
from openevolve_genesys.data.tokens import TokenData, combine_fingerprint, describe, hash_stream

_SCAN_VERSION = 1


def split_files(folder: Path) -> tuple[Path, Path] | None:
    """(train, val) token files of a nanoGPT-style folder, or None if the folder holds neither."""
    found = {}
    for part in ("train", "val"):
        for suffix in TOKEN_SUFFIXES:
            if (folder / f"{part}{suffix}").is_file():
                found[part] = folder / f"{part}{suffix}"
                break
    if not found:
        return None
    if len(found) == 1:
        (have, path), = found.items()
        missing = "val" if have == "train" else "train"
        raise ValueError(f"token folder {folder} has {path.name} but no {missing}.bin or {missing}.npy; "
                         "a token folder needs both (or point data.source at the single file)")
    return found["train"], found["val"]


def is_token_source(path: Path) -> bool:
    if path.is_dir():
        return split_files(path) is not None
    return path.suffix.lower() in TOKEN_SUFFIXES


def load_token_source(path: Path, vocab_size: int, val_fraction: float, cache_root: Path) -> TokenData:
    """TokenData from a token file (split by val_fraction of the stream) or a train/val folder."""
    if vocab_size <= 0:
        raise ValueError(f"vocab_size must be positive, got {vocab_size}")
    pair = split_files(path) if path.is_dir() else None
    if pair is not None:
        train_path, val_path = pair
        train, val = open_tokens(train_path), open_tokens(val_path)
        digests = [_checked_digest(p, s, vocab_size, cache_root) for p, s in ((train_path, train), (val_path, val))]
        parts = ["tokens", f"vocab={vocab_size}", f"train={digests[0]}", f"val={digests[1]}"]
    else:
        stream = open_tokens(path)
        if len(stream) < 2:
            raise ValueError(f"token file {path} holds {len(stream)} token(s), too few to split into "
                             "train and validation streams")
        n_val = min(len(stream) - 1, max(1, round(len(stream) * val_fraction)))
        train, val = stream[: len(stream) - n_val], stream[len(stream) - n_val:]
        digest = _checked_digest(path, stream, vocab_size, cache_root)
        parts = ["tokens", f"vocab={vocab_size}", f"stream={digest}", f"train_tokens={len(train)}"]
    return TokenData(train=train, val=val, vocab_size=vocab_size, fingerprint=combine_fingerprint(parts),
                     description=describe(f"tokens {path}", train, val, vocab_size))


def open_tokens(path: Path) -> np.ndarray:
    """Memory-map one token file: .npy of a 1-D integer array, or .bin of raw little-endian uint16."""
    if path.suffix.lower() == ".npy":
        try:
            stream = np.load(path, mmap_mode="r", allow_pickle=False)
        except (ValueError, OSError, EOFError) as err:
            raise ValueError(f"token file {path} is not a readable .npy array: {err}") from err
        if stream.ndim != 1 or not np.issubdtype(stream.dtype, np.integer):
            raise ValueError(f"token file {path} holds a {stream.dtype} array of shape {stream.shape}; "
                             "a .npy token file must be a 1-D integer array")
    else:
        size = path.stat().st_size
        if size % 2:
            raise ValueError(f"token file {path} has {size} bytes, not a whole number of tokens: a .bin "
                             "token file is raw little-endian uint16 (nanoGPT style); save other dtypes as .npy")
        if size == 0:
            raise ValueError(f"token file {path} is empty; it holds no tokens")
        stream = np.memmap(path, dtype="<u2", mode="r")
    if len(stream) == 0:
        raise ValueError(f"token file {path} is empty; it holds no tokens")
    return stream


def _checked_digest(path: Path, stream: np.ndarray, vocab_size: int, cache_root: Path) -> str:
    """The stream's hash, after checking every id lies in [0, vocab_size)."""
    record = cache_root / "scans" / f"{file_stat_key(path)}.json"
    scan = read_json(record)
    if scan is None or scan.get("version") != _SCAN_VERSION:
        digest, lo, hi = hash_stream(stream)
        scan = {"version": _SCAN_VERSION, "path": str(path), "sha256": digest, "min_id": lo, "max_id": hi}
        write_json_atomic(record, scan)
    if scan["min_id"] < 0:
        raise ValueError(f"token file {path} holds a negative token id ({scan['min_id']}); ids must be >= 0")
    if scan["max_id"] >= vocab_size:
        raise ValueError(f"token file {path} holds token id {scan['max_id']} (its max), but vocab_size is "
                         f"{vocab_size}: ids must be < vocab_size; raise the profile's vocab_size to at "
                         f"least {scan['max_id'] + 1} or re-tokenise")
    return scan["sha256"]
