"""Run one job on evolved code in a confined child process and classify how it ended.

Outcomes, as the budget needs them:
- ``ok``: the job returned a JSON value;
- ``invalid``: the design's fault: a check raised :class:`DesignInvalid`, the program raised any
  exception, or it ended the process itself (``sys.exit``, ``os._exit``);
- ``timeout``: no heartbeat for too long (``stall``), the wall-clock limit (``wall``) or the CPU-time
  limit (``cpu``);
- ``crashed``: killed by a signal, out of memory, or the sandbox itself failed (``startup``).

What is enforced, and how:
- a fresh process (``subprocess``, never ``fork``: forking a JAX-initialised parent deadlocks) in
  its own session, so the whole process tree can be killed; processes that leave the session with
  ``setsid`` are still found through a per-run environment marker and killed;
- memory: ``RLIMIT_DATA`` in the child (``RLIMIT_AS`` is unusable with JAX/CUDA reservations) and a
  poll of the session's anonymous + shmem RSS by the parent; CPU: ``RLIMIT_CPU``; file size:
  ``RLIMIT_FSIZE``; wall clock and heartbeats: the parent's ``select`` loop, no helper threads;
- files: the working directory, ``HOME`` and ``TMPDIR`` are a fresh temporary directory, removed
  afterwards. Where the kernel has Landlock (Linux >= 5.13) writes anywhere else are refused by the
  kernel, TCP is refused (ABI >= 4) and signals to processes outside the sandbox are refused
  (ABI >= 6: the program cannot kill the evaluator). Without Landlock it is a convention, not a jail;
  ``SandboxResult.confinement`` says which applied. Reads are never restricted. Because ``HOME``
  moves, a job that uses shared caches must get their locations explicitly (``env``) and may
  write there only if they are listed in ``writable_paths``;
- network: proxy variables point at a closed loopback port, hub libraries are set offline, and the
  child refuses non-loopback ``connect``/``sendto``/name lookups at the Python level (C code and
  exec'd programs bypass that part; UDP from C is not covered by any layer);
- secrets: environment variables whose names look like keys, tokens or passwords are not passed on.
"""

from __future__ import annotations

import json
import os
import re
import select
import shutil
import signal
import subprocess
import sys
import tempfile
import time
import uuid
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Callable, Mapping, Sequence

from openevolve_genesys.outcomes import Outcome, Reason

_CHILD = Path(__file__).with_name("_sandbox_child.py")
_PACKAGE_ROOT = str(Path(__file__).resolve().parents[2])
_SECRET_NAME = re.compile(r"KEY|TOKEN|SECRET|PASSW|CREDENTIAL|AUTH", re.IGNORECASE)
_MARKER = "GENESYS_SANDBOX_ID"
_POLL_SECONDS = 0.2
_EXIT_GRACE_SECONDS = 2.0
_MAX_MESSAGE_BYTES = 256 << 20


class DesignInvalid(Exception):
    """Raise inside a sandboxed job when the design (not the infrastructure) is at fault.

    ``payload`` (JSON-serialisable) reaches the parent as ``SandboxResult.value``, e.g. partial
    results or which check failed.
    """

    def __init__(self, message: str, payload: Any = None):
        super().__init__(message)
        self.payload = payload


@dataclass(frozen=True)
class SandboxLimits:
    wall_seconds: float = 3600.0  # hard limit for the whole job
    heartbeat_seconds: float = 120.0  # silence after the first heartbeat -> timeout (stall)
    startup_seconds: float = 300.0  # silence before the first heartbeat (imports, first compile)
    memory_bytes: int | None = 8 << 30  # RLIMIT_DATA per process and RSS of the whole session
    cpu_seconds: float | None = None  # RLIMIT_CPU of the main child process
    file_bytes: int | None = 1 << 30  # RLIMIT_FSIZE: no single file larger than this
    max_output_bytes: int = 64_000  # per stream; head and tail are kept
    jail: bool = True  # Landlock where available
    allow_network: bool = False

    def __post_init__(self) -> None:
        for name in ("wall_seconds", "heartbeat_seconds", "startup_seconds"):
            if not getattr(self, name) > 0:
                raise ValueError(f"SandboxLimits.{name} must be > 0, got {getattr(self, name)!r}")
        if self.max_output_bytes < 2:
            raise ValueError(f"SandboxLimits.max_output_bytes must be >= 2, got {self.max_output_bytes}")


@dataclass(frozen=True)
class SandboxResult:
    outcome: Outcome
    reason: Reason  # the outcome's finer cause
    value: Any  # the return value when ok, the DesignInvalid payload when invalid, else None
    message: str  # readable cause: exception and traceback tail, signal name, limit hit
    stdout: str
    stderr: str
    seconds: float
    heartbeats: int
    last_progress: dict | None
    returncode: int | None
    peak_memory_bytes: int  # largest session RSS seen by the poll (0 when memory is not limited)
    confinement: str  # what the child could enforce (Landlock or convention)


class _Capped:
    """Keeps the first and the last half of a stream; counts what was dropped in between."""

    def __init__(self, limit: int):
        self.half = limit // 2
        self.head, self.tail, self.dropped = bytearray(), bytearray(), 0

    def add(self, data: bytes) -> None:
        room = self.half - len(self.head)
        if room > 0:
            self.head += data[:room]
            data = data[room:]
        self.tail += data
        if len(self.tail) > self.half:
            cut = len(self.tail) - self.half
            self.dropped += cut
            del self.tail[:cut]

    def text(self) -> str:
        marker = f"\n[... {self.dropped} bytes truncated ...]\n" if self.dropped else ""
        return self.head.decode(errors="replace") + marker + self.tail.decode(errors="replace")


def _proc_stat(pid: int | str) -> list[str] | None:
    """Fields of /proc/PID/stat after the command name (0 = state, 3 = session, 11/12 = CPU ticks)."""
    try:
        with open(f"/proc/{pid}/stat") as f:
            return f.read().rpartition(")")[2].split()
    except OSError:
        return None


def _tree(session: int, sandbox_id: str | None = None) -> set[int]:
    """Live processes of the child's session; with ``sandbox_id`` also those that left it via setsid
    but still carry this run's environment marker."""
    needle = f"{_MARKER}={sandbox_id}".encode()
    found = set()
    for pid in map(int, filter(str.isdigit, os.listdir("/proc"))):
        fields = _proc_stat(pid)
        if not fields or fields[0] == "Z":
            continue
        if int(fields[3]) == session:
            found.add(pid)
        elif sandbox_id is not None:
            try:
                with open(f"/proc/{pid}/environ", "rb") as f:
                    if needle in f.read().split(b"\0"):
                        found.add(pid)
            except OSError:
                continue
    return found


def _private_rss(pid: int) -> int:
    """Anonymous + shared-memory RSS: what a program allocates, without shared library pages."""
    try:
        with open(f"/proc/{pid}/status") as f:
            return sum(int(line.split()[1]) * 1024 for line in f if line.startswith(("RssAnon:", "RssShmem:")))
    except OSError:
        return 0


def _kill_tree(session: int, sandbox_id: str) -> None:
    """SIGKILL the session and any marked escapee; repeat while a fork bomb keeps spawning."""
    for _ in range(20):
        victims = _tree(session, sandbox_id)
        for kill, target in [(os.killpg, session)] + [(os.kill, pid) for pid in victims]:
            try:
                kill(target, signal.SIGKILL)
            except (ProcessLookupError, PermissionError):
                pass
        if not victims:
            return
        time.sleep(0.05)


def _child_env(workdir: Path, sandbox_id: str, limits: SandboxLimits, extra: Mapping[str, str] | None) -> dict[str, str]:
    env = {k: v for k, v in os.environ.items() if not _SECRET_NAME.search(k)}
    env.update(HOME=str(workdir), TMPDIR=str(workdir / "tmp"), XDG_CACHE_HOME=str(workdir / ".cache"),
               XDG_CONFIG_HOME=str(workdir / ".config"), XDG_DATA_HOME=str(workdir / ".local"),
               MPLCONFIGDIR=str(workdir / ".config"), PYTHONUNBUFFERED="1")
    if not limits.allow_network:
        closed_port = "http://127.0.0.1:9"  # discard port: nothing listens, connections fail at once
        for name in ("http_proxy", "https_proxy", "ftp_proxy", "all_proxy"):
            env[name] = env[name.upper()] = closed_port
        env.update(no_proxy="", NO_PROXY="", HF_HUB_OFFLINE="1", HF_DATASETS_OFFLINE="1",
                   TRANSFORMERS_OFFLINE="1", PIP_NO_INDEX="1")
    extra = dict(extra or {})
    paths = [extra.pop("PYTHONPATH", ""), _PACKAGE_ROOT, os.environ.get("PYTHONPATH", "")]
    env.update(extra)
    env["PYTHONPATH"] = os.pathsep.join(p for p in paths if p)
    env[_MARKER] = sandbox_id
    return env


class _Watch:
    """Parent-side state of one run: reads the three pipes and applies the time and memory limits."""

    def __init__(self, proc: subprocess.Popen, msg_fd: int, limits: SandboxLimits,
                 on_heartbeat: Callable[[dict], None] | None):
        self.proc, self.limits, self.on_heartbeat = proc, limits, on_heartbeat
        self.out, self.err = _Capped(limits.max_output_bytes), _Capped(limits.max_output_bytes)
        self.streams: dict[int, _Capped | None] = {msg_fd: None, proc.stdout.fileno(): self.out,
                                                   proc.stderr.fileno(): self.err}
        for fd in self.streams:
            os.set_blocking(fd, False)
        self.pending = bytearray()
        self.start = self.last_beat = time.monotonic()
        self.heartbeats, self.last_progress, self.peak_memory, self.cpu_seen = 0, None, 0, 0.0
        self.started: dict | None = None
        self.final: dict | None = None  # the child's own verdict
        self.verdict: tuple[str, str, str] | None = None  # a limit the parent enforced

    def _dispatch(self, line: bytes) -> None:
        try:
            message = json.loads(line)
            kind = message["kind"]
        except (ValueError, KeyError, TypeError):
            return  # the program wrote to our pipe: ignore what is not a message
        if kind == "heartbeat":
            self.heartbeats, self.last_beat = self.heartbeats + 1, time.monotonic()
            self.last_progress = message.get("progress")
            if self.on_heartbeat is not None:
                self.on_heartbeat(self.last_progress)
        elif kind == "started":
            self.started = message
        elif kind == "final" and self.final is None:
            self.final = message

    def read(self, fds: Sequence[int]) -> None:
        for fd in fds:
            while fd in self.streams:
                try:
                    data = os.read(fd, 1 << 16)
                except BlockingIOError:
                    break
                sink = self.streams[fd]
                if not data:
                    del self.streams[fd]
                elif sink is not None:
                    sink.add(data)
                else:
                    *lines, rest = (self.pending + data).split(b"\n")
                    self.pending = bytearray(rest)
                    for line in lines:
                        self._dispatch(bytes(line))
                    if len(self.pending) > _MAX_MESSAGE_BYTES:
                        self.verdict = ("crashed", "protocol", "the child wrote an oversized message to the pipe")
                        return

    def check_limits(self) -> None:
        now, lim = time.monotonic(), self.limits
        if lim.memory_bytes:
            used = sum(_private_rss(pid) for pid in _tree(self.proc.pid))
            self.peak_memory = max(self.peak_memory, used)
            if used > lim.memory_bytes:
                self.verdict = ("crashed", "memory", f"memory limit: the process tree used {used >> 20} MiB "
                                f"> {lim.memory_bytes >> 20} MiB")
        if lim.cpu_seconds and (fields := _proc_stat(self.proc.pid)):
            self.cpu_seen = max(self.cpu_seen, (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK"))
        silence_limit = lim.heartbeat_seconds if self.heartbeats else lim.startup_seconds
        if now - self.start > lim.wall_seconds:
            self.verdict = ("timeout", "wall", f"wall-clock limit of {lim.wall_seconds:g} s exceeded "
                            f"after {self.heartbeats} heartbeats")
        elif now - self.last_beat > silence_limit:
            which = "heartbeat" if self.heartbeats else "first heartbeat (startup)"
            self.verdict = ("timeout", "stall", f"no {which} for {silence_limit:g} s: the job stalled")

    def loop(self) -> None:
        while self.verdict is None and self.final is None and self.proc.poll() is None:
            ready, _, _ = select.select(list(self.streams), [], [], _POLL_SECONDS)
            self.read(ready)
            self.check_limits()
        if self.final is not None and self.verdict is None:
            try:  # the job has answered; give the child a moment to exit by itself
                self.proc.wait(timeout=_EXIT_GRACE_SECONDS)
            except subprocess.TimeoutExpired:
                pass

    def classify(self) -> tuple[str, str, Any, str]:
        final, code = self.final or {}, self.proc.returncode
        if final.get("outcome") == "ok" or (final and self.verdict is None):
            return final["outcome"], final["reason"], final.get("value"), final.get("message", "")
        if self.verdict is not None:
            return (*self.verdict[:2], None, self.verdict[2])
        if code is not None and code < 0:
            name = signal.Signals(-code).name if -code in signal.valid_signals() else f"signal {-code}"
            cpu_hit = self.limits.cpu_seconds and self.cpu_seen >= self.limits.cpu_seconds - 0.5
            if -code == signal.SIGXCPU or (-code == signal.SIGKILL and cpu_hit):
                return "timeout", "cpu", None, f"CPU-time limit of {self.limits.cpu_seconds:g} s exceeded ({name})"
            hint = " (the kernel OOM killer or another process)" if -code == signal.SIGKILL else ""
            return "crashed", "signal", None, f"the job was killed by {name}{hint}"
        if self.started is not None:
            return "invalid", "exit", None, (f"the program ended the process with exit status {code} before the job "
                                            "returned (os._exit or similar); evolved code must not end the process")
        return "crashed", "startup", None, f"the sandbox child exited with status {code} before starting the job"

    def result(self) -> SandboxResult:
        outcome, reason, value, message = self.classify()
        return SandboxResult(
            outcome=outcome, reason=reason, value=value, message=message, stdout=self.out.text(),
            stderr=self.err.text(), seconds=time.monotonic() - self.start, heartbeats=self.heartbeats,
            last_progress=self.last_progress, returncode=self.proc.returncode, peak_memory_bytes=self.peak_memory,
            confinement=(self.started or {}).get("confinement", "unknown (the job never started)"))


def run_in_sandbox(
    target: str,
    kwargs: Mapping[str, Any],
    limits: SandboxLimits = SandboxLimits(),
    *,
    on_heartbeat: Callable[[dict], None] | None = None,
    env: Mapping[str, str] | None = None,
    writable_paths: Sequence[str | os.PathLike] = (),
    tmp_root: str | os.PathLike | None = None,
) -> SandboxResult:
    """Call ``target`` ("package.module:function") as ``function(**kwargs, heartbeat=hb)`` in a child.

    ``hb(progress)`` (a dict or a dataclass such as ``ChunkProgress``) resets the stall timer and is
    passed to ``on_heartbeat`` in the parent. ``kwargs`` and the return value must be JSON-serialisable.
    ``env`` adds or overrides child environment variables (its ``PYTHONPATH`` is prepended to the
    package root and the parent's). ``writable_paths`` are the places besides the temporary working
    directory the job may write to under the Landlock jail, e.g. the fitness cache's directory and a
    shared compilation cache. An exception raised by ``on_heartbeat`` kills the child and propagates.
    """
    module, sep, function = target.partition(":")
    if not (module and sep and function):
        raise ValueError(f"target must look like 'package.module:function', got {target!r}")
    spec = {"target": target, "kwargs": dict(kwargs), "jail": limits.jail, "allow_network": limits.allow_network,
            "limits": {"memory_bytes": limits.memory_bytes, "cpu_seconds": limits.cpu_seconds,
                       "file_bytes": limits.file_bytes}}
    try:
        json.dumps(spec, allow_nan=True)
    except TypeError as exc:
        raise TypeError(f"run_in_sandbox kwargs must be JSON-serialisable ({exc}); pass paths and "
                        "plain numbers, and load heavier objects inside the job") from None
    missing = [os.fspath(p) for p in writable_paths if not os.path.exists(p)]
    if missing:
        raise FileNotFoundError(f"writable_paths {missing} do not exist; create them before starting the sandbox "
                                "(the jail can only grant access to existing paths)")
    workdir = Path(tempfile.mkdtemp(prefix="genesys-sandbox-", dir=tmp_root))
    (workdir / "tmp").mkdir()
    sandbox_id = uuid.uuid4().hex
    read_fd, write_fd = os.pipe()
    spec.update(fd=write_fd, writable=[str(workdir), "/dev/null", *map(os.fspath, writable_paths)])
    (workdir / "spec.json").write_text(json.dumps(spec, allow_nan=True))
    proc = watch = None
    try:
        proc = subprocess.Popen(
            [sys.executable, "-P", str(_CHILD), str(workdir / "spec.json")], cwd=workdir,
            env=_child_env(workdir, sandbox_id, limits, env), stdin=subprocess.DEVNULL,
            stdout=subprocess.PIPE, stderr=subprocess.PIPE, pass_fds=(write_fd,), start_new_session=True)
        os.close(write_fd)
        write_fd = -1
        watch = _Watch(proc, read_fd, limits, on_heartbeat)
        watch.loop()
    finally:
        if proc is not None:
            _kill_tree(proc.pid, sandbox_id)
            proc.wait()
        if watch is not None:
            watch.read(list(watch.streams))  # whatever was written before the end
        for fd in (read_fd, write_fd):
            if fd >= 0:
                os.close(fd)
        if proc is not None:
            proc.stdout.close()
            proc.stderr.close()
        shutil.rmtree(workdir, ignore_errors=True)
    return watch.result()
