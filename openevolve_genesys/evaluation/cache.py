"""A SQLite fitness cache shared by every worker process of a run (or of several runs).

Two tables: ``results`` maps (functional hash, ladder profile, rung, data fingerprint, training-config
hash) to the JSON result of that rung, so a design whose function is already known skips training;
``code_hashes`` maps a normalised-code hash to its functional hash, so a known source is answered
without even building its mixer.

Concurrency: WAL mode lets readers proceed during a write; writers are serialised by SQLite, wait up
to ``busy_timeout`` and are retried with backoff beyond it. A connection is never shared across a
``fork`` (the cache reopens itself in a new process) and is guarded by a lock across threads. WAL
needs a local filesystem: do not put the cache on NFS.
"""

from __future__ import annotations

import dataclasses
import enum
import hashlib
import json
import os
import random
import sqlite3
import threading
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Callable, TypeVar

_BUSY_TIMEOUT_MS = 30_000
_RETRY_SECONDS = 120.0
_SCHEMA = """
CREATE TABLE IF NOT EXISTS results (
    functional_hash TEXT NOT NULL, profile TEXT NOT NULL, rung TEXT NOT NULL,
    data_fingerprint TEXT NOT NULL, train_config_hash TEXT NOT NULL,
    result TEXT NOT NULL, created REAL NOT NULL,
    PRIMARY KEY (functional_hash, profile, rung, data_fingerprint, train_config_hash)
);
CREATE TABLE IF NOT EXISTS code_hashes (
    code_hash TEXT PRIMARY KEY, functional_hash TEXT NOT NULL, created REAL NOT NULL
);
"""
T = TypeVar("T")


@dataclass(frozen=True)
class CacheKey:
    """Everything a rung's result depends on besides the design's function."""

    functional_hash: str
    profile: str  # ladder profile name, e.g. "smoke" or "seed"
    rung: str
    data_fingerprint: str  # of the token data (corpus, tokenizer, split)
    train_config_hash: str  # config_hash of the TrainConfig used for this rung

    def __post_init__(self) -> None:
        for field in dataclasses.fields(self):
            value = getattr(self, field.name)
            if not isinstance(value, str) or not value:
                raise ValueError(f"CacheKey.{field.name} must be a non-empty string, got {value!r}")


def _canonical(obj: Any) -> Any:
    """A JSON-ready form that does not depend on dict order, tuple-vs-list or dataclass identity."""
    if dataclasses.is_dataclass(obj) and not isinstance(obj, type):
        return _canonical({f.name: getattr(obj, f.name) for f in dataclasses.fields(obj)})
    if isinstance(obj, enum.Enum):
        return _canonical(obj.value)
    if isinstance(obj, dict):
        return {str(k): _canonical(v) for k, v in obj.items()}
    if isinstance(obj, (list, tuple)):
        return [_canonical(v) for v in obj]
    if isinstance(obj, (set, frozenset)):
        return sorted((_canonical(v) for v in obj), key=lambda v: json.dumps(v, sort_keys=True))
    if isinstance(obj, os.PathLike):
        return os.fspath(obj)
    if hasattr(obj, "tolist") and callable(obj.tolist):  # numpy and JAX scalars and arrays
        return _canonical(obj.tolist())
    if obj is None or isinstance(obj, (str, int, float, bool)):
        return obj
    raise TypeError(f"config_hash cannot hash {type(obj).__name__} values ({obj!r}); convert it to "
                    "a dataclass, dict, list or plain scalar first")


def config_hash(obj: Any) -> str:
    """Stable SHA-256 of a dataclass, dict or list: sorted keys, tuples as lists, floats by repr."""
    text = json.dumps(_canonical(obj), sort_keys=True, separators=(",", ":"), allow_nan=True)
    return hashlib.sha256(text.encode()).hexdigest()


class FitnessCache:
    """Per-rung results by functional hash, plus code hash -> functional hash. Safe across processes."""

    def __init__(self, path: str | os.PathLike):
        self.path = Path(path)
        if self.path.exists() and self.path.is_dir():
            raise IsADirectoryError(f"FitnessCache path {self.path} is a directory; pass a file path "
                                    "such as <run_dir>/fitness_cache.sqlite")
        self.path.parent.mkdir(parents=True, exist_ok=True)
        self.hits = self.misses = 0
        self._lock = threading.Lock()
        self._conn: sqlite3.Connection | None = None
        self._pid = -1
        self._retry(lambda conn: conn.executescript(_SCHEMA))

    def _connection(self) -> sqlite3.Connection:
        if self._conn is None or self._pid != os.getpid():
            # After a fork the inherited connection belongs to the parent: open our own.
            conn = sqlite3.connect(self.path, timeout=_BUSY_TIMEOUT_MS / 1000, isolation_level=None,
                                   check_same_thread=False)
            conn.execute(f"PRAGMA busy_timeout = {_BUSY_TIMEOUT_MS}")
            conn.execute("PRAGMA journal_mode = WAL")
            conn.execute("PRAGMA synchronous = NORMAL")
            self._conn, self._pid = conn, os.getpid()
        return self._conn

    def _retry(self, operation: Callable[[sqlite3.Connection], T]) -> T:
        """Run ``operation`` under the lock, retrying while another process holds the write lock."""
        deadline, delay = time.monotonic() + _RETRY_SECONDS, 0.01
        while True:
            try:
                with self._lock:
                    return operation(self._connection())
            except sqlite3.OperationalError as exc:
                transient = "locked" in str(exc) or "busy" in str(exc)
                if not transient or time.monotonic() > deadline:
                    raise
                time.sleep(delay * (1 + random.random()))
                delay = min(delay * 2, 1.0)

    def get(self, key: CacheKey) -> dict | None:
        row = self._retry(lambda conn: conn.execute(
            "SELECT result FROM results WHERE functional_hash=? AND profile=? AND rung=? "
            "AND data_fingerprint=? AND train_config_hash=?", dataclasses.astuple(key)).fetchone())
        with self._lock:
            if row is None:
                self.misses += 1
            else:
                self.hits += 1
        return None if row is None else json.loads(row[0])

    def put(self, key: CacheKey, result: dict) -> None:
        if not isinstance(result, dict):
            raise TypeError(f"FitnessCache.put stores dicts, got {type(result).__name__}")
        try:
            text = json.dumps(result, sort_keys=True, allow_nan=True)
        except TypeError as exc:
            raise TypeError(f"FitnessCache.put needs a JSON-serialisable result ({exc}); "
                            "convert dataclasses with .to_dict() first") from None
        self._retry(lambda conn: conn.execute(
            "INSERT OR REPLACE INTO results VALUES (?, ?, ?, ?, ?, ?, ?)",
            (*dataclasses.astuple(key), text, time.time())))

    def functional_hash_for(self, code_hash: str) -> str | None:
        row = self._retry(lambda conn: conn.execute(
            "SELECT functional_hash FROM code_hashes WHERE code_hash=?", (code_hash,)).fetchone())
        return None if row is None else row[0]

    def remember_code(self, code_hash: str, functional_hash: str) -> None:
        self._retry(lambda conn: conn.execute(
            "INSERT OR REPLACE INTO code_hashes VALUES (?, ?, ?)", (code_hash, functional_hash, time.time())))

    def stats(self) -> dict[str, Any]:
        """Table sizes (all processes) and the hits/misses of this instance."""
        entries, codes = self._retry(lambda conn: conn.execute(
            "SELECT (SELECT COUNT(*) FROM results), (SELECT COUNT(*) FROM code_hashes)").fetchone())
        return {"path": str(self.path), "entries": entries, "code_hashes": codes,
                "hits": self.hits, "misses": self.misses}

    def close(self) -> None:
        with self._lock:
            if self._conn is not None and self._pid == os.getpid():
                self._conn.close()
            self._conn = None

    def __enter__(self) -> FitnessCache:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()
