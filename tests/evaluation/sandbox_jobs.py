"""Jobs for tests/evaluation/test_sandbox.py; imported by the sandbox child through PYTHONPATH.

Each job behaves like one kind of evolved program: well-behaved, buggy, hostile or greedy.
"""

from __future__ import annotations

import dataclasses
import os
import signal
import socket
import sys
import time
from typing import Any, Callable

from openevolve_genesys.evaluation.sandbox import DesignInvalid

Heartbeat = Callable[[Any], None]


def returns_value(x: int, heartbeat: Heartbeat) -> dict:
    for step in range(3):
        heartbeat({"step": step})
    print("garbage on stdout {not json")
    return {"double": 2 * x, "cwd": os.getcwd(), "home": os.environ["HOME"], "tmp": os.environ["TMPDIR"],
            "secret_visible": "GENESYS_TEST_API_KEY" in os.environ}


def raises(heartbeat: Heartbeat) -> None:
    raise ValueError("the mixer returned shape (2, 3)")


def design_invalid(heartbeat: Heartbeat) -> None:
    raise DesignInvalid("causality check failed", payload={"check": "causal", "max_leak": 0.5})


def calls_sys_exit(heartbeat: Heartbeat) -> None:
    sys.exit(3)


def calls_os_exit(heartbeat: Heartbeat) -> None:
    os._exit(0)


def kills_itself(heartbeat: Heartbeat) -> None:
    os.kill(os.getpid(), signal.SIGKILL)


def spins_silently(heartbeat: Heartbeat, beats_first: int = 0) -> None:
    for _ in range(beats_first):
        heartbeat({"step": 0})
    while True:
        pass


def beats_forever(heartbeat: Heartbeat) -> None:
    while True:
        heartbeat({"alive": True, "pid": os.getpid()})
        time.sleep(0.05)


def burns_cpu(heartbeat: Heartbeat) -> None:
    count = 0
    while True:
        count += 1
        if count % 200_000 == 0:
            heartbeat({"count": count})


def allocates(n_bytes: int, heartbeat: Heartbeat) -> int:
    import numpy as np

    block = np.ones(n_bytes // 8)
    return int(block.size)


def forks_allocators(n_children: int, n_bytes: int, heartbeat: Heartbeat) -> None:
    """Each process stays under the per-process limit; together they exceed it."""
    import numpy as np

    for _ in range(n_children):
        if os.fork() == 0:
            block = np.ones(n_bytes // 8)
            time.sleep(60 + block[0])
            os._exit(0)
    while True:
        heartbeat({"waiting": True})
        time.sleep(0.05)


def forks_sleepers(heartbeat: Heartbeat) -> list[int]:
    """Leaves a plain grandchild and one that escaped the session with setsid."""
    pids = []
    for escape in (False, True):
        read_fd, write_fd = os.pipe()
        pid = os.fork()
        if pid == 0:
            if escape:
                os.setsid()
            os.write(write_fd, b"x")
            time.sleep(600)
            os._exit(0)
        os.read(read_fd, 1)  # the escapee has called setsid before the job returns
        pids.append(pid)
    return pids


def prints_a_lot(n_bytes: int, heartbeat: Heartbeat) -> str:
    sys.stdout.write("H" * 100 + "x" * n_bytes + "T" * 100)
    sys.stderr.write("e" * n_bytes)
    return "done"


def returns_unserialisable(heartbeat: Heartbeat) -> object:
    return object()


@dataclasses.dataclass(frozen=True)
class Progress:
    rung: str
    step: int
    eval_loss: float | None


def sends_dataclass_progress(heartbeat: Heartbeat) -> None:
    heartbeat(Progress("r0", 10, None))


def tries_to_escape(outside_path: str, heartbeat: Heartbeat) -> dict:
    """Reports which forbidden actions failed; the test checks the effects, not only the report."""
    report: dict[str, str] = {}
    try:
        with open(outside_path, "w") as f:
            f.write("escaped")
        report["write_outside"] = "succeeded"
    except OSError as exc:
        report["write_outside"] = type(exc).__name__
    with open("inside.txt", "w") as f:
        f.write("fine")
    report["write_inside"] = "succeeded"
    try:
        socket.create_connection(("192.0.2.1", 80), timeout=5)
        report["network"] = "succeeded"
    except OSError as exc:
        report["network"] = f"{type(exc).__name__}: {exc}"
    try:  # loopback passes the Python guard; only the kernel jail refuses it
        socket.create_connection(("127.0.0.1", 9), timeout=5)
        report["loopback_tcp"] = "succeeded"
    except OSError as exc:
        report["loopback_tcp"] = type(exc).__name__
    try:
        os.kill(os.getppid(), 0)  # signal 0 only probes: the test process is never really signalled
        report["signal_parent"] = "succeeded"
    except OSError as exc:
        report["signal_parent"] = type(exc).__name__
    return report


def trains_jax(heartbeat: Heartbeat) -> float:
    import jax
    import jax.numpy as jnp

    x = jnp.arange(64.0).reshape(8, 8)
    total = jax.jit(lambda a: (a @ a.T).sum())(x)
    heartbeat({"compiled": True})
    return float(total)


def writes_cache(path: str, heartbeat: Heartbeat) -> int:
    from openevolve_genesys.evaluation.cache import CacheKey, FitnessCache

    cache = FitnessCache(path)
    cache.put(CacheKey("f", "smoke", "r0", "data", "train"), {"loss": 1.5})
    return cache.stats()["entries"]


def reports_process(heartbeat: Heartbeat) -> dict:
    """What a job can see of its process: the limits and environment a warm child must share with a cold one."""
    import resource

    heartbeat({"pid": os.getpid()})
    limits = {name: resource.getrlimit(getattr(resource, name))
              for name in ("RLIMIT_DATA", "RLIMIT_CPU", "RLIMIT_FSIZE", "RLIMIT_CORE")}
    with open("/proc/self/oom_score_adj") as f:
        oom = f.read().strip()
    return {"pid": os.getpid(), "cwd": os.getcwd(), "env": dict(os.environ), "limits": limits, "oom": oom,
            "session_leader": os.getsid(0) == os.getpid(), "stdin": os.readlink("/proc/self/fd/0"),
            "nice": os.nice(0), "argv": sys.argv[1:]}


def sleeps(seconds: float, heartbeat: Heartbeat) -> float:
    heartbeat({"sleeping": seconds})
    time.sleep(seconds)
    return seconds


def jax_backends_after_job_imports(heartbeat: Heartbeat) -> list[str]:
    """The JAX backends that importing the evaluation job started: none, so a waiting child holds no GPU memory."""
    import openevolve_genesys.evaluation.job  # noqa: F401 - the warm child's imports
    from jax._src import xla_bridge

    return sorted(xla_bridge._backends)
