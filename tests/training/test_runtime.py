"""The persistent compilation cache: shared by processes, bounded, off on request."""

import json
import os
import subprocess
import sys

import pytest

from openevolve_genesys.training.runtime import CACHE_LIMIT_ENV, compiled_cache_bytes, enable_compilation_cache

# A fresh process trains a tiny rung and reports how many of its compiles the persistent cache answered.
CHILD = """
import json, sys
import jax
hits = []
jax.monitoring.register_event_listener(lambda name, **kw: hits.append(name)
                                       if name == "/jax/compilation_cache/cache_hits" else None)
from openevolve_genesys.training.runtime import enable_compilation_cache
path = enable_compilation_cache()
sys.path.insert(0, sys.argv[1])
import dataclasses
from test_loop import TINY, CountingData
from openevolve_genesys.training.loop import train_rung
from openevolve_genesys.training.profiles import Rung
short = dataclasses.replace(TINY, steps=16, eval_interval=16)  # one chunk program and one evaluation
result = train_rung(Rung("t", 16, 1, 2), CountingData(32), short, vocab_size=32)
print(json.dumps({"hits": len(hits), "path": str(path), "loss": result.final_eval_loss,
                  "bound": jax.config.jax_compilation_cache_max_size}))
"""


def _child(tmp_path, **env):
    run = subprocess.run([sys.executable, "-c", CHILD, os.path.dirname(__file__)], capture_output=True, text=True,
                         env={**os.environ, "GENESYS_CACHE_DIR": str(tmp_path), **env}, timeout=300)
    assert run.returncode == 0, run.stderr[-2000:]
    return json.loads(run.stdout.strip().splitlines()[-1])


def test_a_second_process_loads_its_programs_from_the_shared_bounded_cache(tmp_path):
    first = _child(tmp_path, **{CACHE_LIMIT_ENV: "64"})
    second = _child(tmp_path, **{CACHE_LIMIT_ENV: "64"})
    assert first["path"] == str(tmp_path / "compiled") and first["bound"] == 64 << 20
    assert first["hits"] == 0 and second["hits"] >= 1  # the chunk program, compiled once for both
    assert second["loss"] == first["loss"]


def test_a_zero_bound_turns_the_cache_off(tmp_path, monkeypatch):
    monkeypatch.setenv("GENESYS_CACHE_DIR", str(tmp_path))
    monkeypatch.setenv(CACHE_LIMIT_ENV, "0")
    assert enable_compilation_cache() is None and not (tmp_path / "compiled").exists()


def test_the_cache_bound_is_read_from_the_environment(monkeypatch):
    monkeypatch.delenv(CACHE_LIMIT_ENV, raising=False)
    assert compiled_cache_bytes() == 2048 << 20
    monkeypatch.setenv(CACHE_LIMIT_ENV, "-1")
    assert compiled_cache_bytes() == -1
    for bad in ("lots", "-5"):
        monkeypatch.setenv(CACHE_LIMIT_ENV, bad)
        with pytest.raises(ValueError, match=CACHE_LIMIT_ENV):
            compiled_cache_bytes()
