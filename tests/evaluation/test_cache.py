import math
import multiprocessing
import sqlite3
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
import pytest

from openevolve_genesys.evaluation.cache import CacheKey, FitnessCache, config_hash


def key(functional_hash: str = "f" * 64, rung: str = "r0") -> CacheKey:
    return CacheKey(functional_hash, "smoke", rung, "data-1", "train-1")


def test_get_after_put_and_hits_misses(tmp_path: Path) -> None:
    cache = FitnessCache(tmp_path / "sub" / "cache.sqlite")  # creates missing directories
    assert cache.get(key()) is None
    cache.put(key(), {"final_eval_loss": 5.25, "curve": [{"step": 1, "eval_loss": float("nan")}]})
    got = cache.get(key())
    assert got["final_eval_loss"] == 5.25 and math.isnan(got["curve"][0]["eval_loss"])
    assert cache.get(key(rung="r1")) is None  # every key field matters
    assert cache.get(CacheKey("f" * 64, "smoke", "r0", "data-2", "train-1")) is None
    assert cache.stats() == {"path": str(tmp_path / "sub" / "cache.sqlite"), "entries": 1, "code_hashes": 0,
                             "hits": 1, "misses": 3}


def test_put_replaces_and_persists_across_instances(tmp_path: Path) -> None:
    path = tmp_path / "cache.sqlite"
    with FitnessCache(path) as cache:
        cache.put(key(), {"loss": 1.0})
        cache.put(key(), {"loss": 2.0})
    reopened = FitnessCache(path)
    assert reopened.get(key()) == {"loss": 2.0}
    assert reopened.stats()["entries"] == 1
    with sqlite3.connect(path) as conn:
        assert conn.execute("PRAGMA journal_mode").fetchone()[0] == "wal"


def test_code_hash_table(tmp_path: Path) -> None:
    cache = FitnessCache(tmp_path / "cache.sqlite")
    assert cache.functional_hash_for("code-a") is None
    cache.remember_code("code-a", "func-1")
    cache.remember_code("code-b", "func-1")
    assert cache.functional_hash_for("code-a") == "func-1"
    assert cache.functional_hash_for("code-b") == "func-1"
    assert cache.stats()["code_hashes"] == 2


def test_bad_inputs_name_the_problem(tmp_path: Path) -> None:
    cache = FitnessCache(tmp_path / "cache.sqlite")
    with pytest.raises(TypeError, match="JSON-serialisable"):
        cache.put(key(), {"model": object()})
    with pytest.raises(TypeError, match="stores dicts"):
        cache.put(key(), [1, 2])  # type: ignore[arg-type]
    with pytest.raises(ValueError, match="rung"):
        CacheKey("f", "smoke", "", "d", "t")
    with pytest.raises(IsADirectoryError, match="file path"):
        FitnessCache(tmp_path)


def _writer(path: str, worker: int, n: int) -> None:
    cache = FitnessCache(path)
    for i in range(n):
        cache.put(key(f"{worker}-{i}"), {"worker": worker, "i": i})
        if i % 20 == 0:
            cache.remember_code(f"code-{worker}-{i}", f"{worker}-{i}")


def test_two_processes_writing_at_once_lose_nothing(tmp_path: Path) -> None:
    path = str(tmp_path / "cache.sqlite")
    ctx = multiprocessing.get_context("spawn")
    workers = [ctx.Process(target=_writer, args=(path, w, 200)) for w in range(2)]
    for p in workers:
        p.start()
    for p in workers:
        p.join(timeout=120)
        assert p.exitcode == 0
    cache = FitnessCache(path)
    assert cache.stats()["entries"] == 400
    assert cache.stats()["code_hashes"] == 20
    assert cache.get(key("1-199")) == {"worker": 1, "i": 199}


@dataclass(frozen=True)
class _Train:
    lr: float = 1e-3
    steps: int = 100
    betas: tuple = (0.9, 0.95)
    extra: dict = field(default_factory=lambda: {"b": 1, "a": 2})


def test_config_hash_is_stable_and_sensitive() -> None:
    base = config_hash(_Train())
    assert base == config_hash({"extra": {"a": 2, "b": 1}, "steps": 100, "betas": [0.9, 0.95], "lr": 1e-3})
    assert base == config_hash(_Train(betas=(np.float64(0.9), 0.95)))
    assert base != config_hash(_Train(lr=1.0001e-3))
    assert base != config_hash(_Train(extra={"a": 2, "b": 2}))
    assert len(base) == 64
    with pytest.raises(TypeError, match="cannot hash object"):
        config_hash({"x": object()})
