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

Every child confines itself and imports the target's module before it reads its job from a pipe. A
``WarmSlot`` (one per engine slot) uses that to start the next child while the current job runs: the
job then skips the interpreter's start-up and the imports of JAX, Flax and Optax. Everything above is
applied when the child starts, from the same spawn (target module, limits, environment, writable paths) a cold
child would get; the wall-clock and start-up limits count from the hand-over of the job. A child serves
one job, warm or cold, and is killed after it.
"""

from __future__ import annotations

import atexit
import contextlib
import contextvars
import json
import logging
import os
import re
import select
import shutil
import signal
import subprocess
import sys
import tempfile
import threading
import time
import uuid
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Callable, Iterator, Mapping, Sequence

log = logging.getLogger(__name__)

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
    wall_seconds: float = 3600.0  # hard limit for the whole job, from its hand-over to the child
    heartbeat_seconds: float = 120.0  # silence after the first heartbeat -> timeout (stall)
    startup_seconds: float = 300.0  # silence before the first heartbeat (a cold child's imports, first compile)
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
    warm: bool = False  # the child was started before the job arrived (WarmSlot)


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


def _child_env(workdir: Path, sandbox_id: str, limits: SandboxLimits, extra: Mapping[str, str] | None,
               parent: Mapping[str, str]) -> dict[str, str]:
    """``parent`` is this process's environment without secrets, as it was when the child's spawn was taken."""
    env = dict(parent)
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
    paths = [extra.pop("PYTHONPATH", ""), _PACKAGE_ROOT, parent.get("PYTHONPATH", "")]
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

    def result(self, warm: bool = False) -> SandboxResult:
        outcome, reason, value, message = self.classify()
        return SandboxResult(
            outcome=outcome, reason=reason, value=value, message=message, stdout=self.out.text(),
            stderr=self.err.text(), seconds=time.monotonic() - self.start, heartbeats=self.heartbeats,
            last_progress=self.last_progress, returncode=self.proc.returncode, peak_memory_bytes=self.peak_memory,
            confinement=(self.started or {}).get("confinement", "unknown (the job never started)"), warm=warm)


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

    Inside ``WarmSlot.active()`` the job goes to the slot's pre-started child when that child was started
    with this very target module, limits, environment, writable paths and temporary root (else it is discarded and
    a fresh child started), and the slot's next child is started while this job runs. The wall-clock and
    start-up limits count from the hand-over; ``SandboxResult.warm`` says which kind of child ran the job.
    """
    module, sep, function = target.partition(":")
    if not (module and sep and function):
        raise ValueError(f"target must look like 'package.module:function', got {target!r}")
    kwargs = dict(kwargs)
    try:
        json.dumps(kwargs, allow_nan=True)
    except TypeError as exc:
        raise TypeError(f"run_in_sandbox kwargs must be JSON-serialisable ({exc}); pass paths and "
                        "plain numbers, and load heavier objects inside the job") from None
    missing = [os.fspath(p) for p in writable_paths if not os.path.exists(p)]
    if missing:
        raise FileNotFoundError(f"writable_paths {missing} do not exist; create them before starting the sandbox "
                                "(the jail can only grant access to existing paths)")
    spawn = _Spawn.of(module, limits, env, writable_paths, tmp_root)
    slot = _ACTIVE_SLOT.get()
    child = slot.take(spawn) if slot is not None else None
    warm = child is not None
    watch = None
    try:
        if child is None:
            child = _Child(spawn)
        child.give(function, kwargs)
        watch = _Watch(child.proc, child.msg_fd, limits, on_heartbeat)  # this job's clock starts at the hand-over
        if slot is not None:
            slot.prestart(spawn)  # the next job's child imports while this one runs
        watch.loop()
    finally:
        if child is not None:
            child.close(watch)
    return watch.result(warm)


@dataclass(frozen=True)
class _Spawn:
    """Everything a child is started with before it knows its job. A pre-started child serves a job only when
    the job's spawn equals the child's, so it runs under exactly the limits, environment, jail and imported
    module a child started for that job would have had; the job names the module's function to call."""

    module: str  # the target's module, imported before the job arrives
    limits: SandboxLimits
    extra_env: tuple[tuple[str, str], ...]  # the caller's env argument
    parent_env: tuple[tuple[str, str], ...]  # this process's environment without secrets, when it was asked
    writable: tuple[str, ...]
    tmp_root: str | None

    @classmethod
    def of(cls, module: str, limits: SandboxLimits, env: Mapping[str, str] | None,
           writable_paths: Sequence[str | os.PathLike], tmp_root: str | os.PathLike | None) -> "_Spawn":
        parent = {k: v for k, v in os.environ.items() if not _SECRET_NAME.search(k)}
        return cls(module, limits, tuple(sorted((env or {}).items())), tuple(sorted(parent.items())),
                   tuple(map(os.fspath, writable_paths)), None if tmp_root is None else os.fspath(tmp_root))


class _Child:
    """One sandboxed child process, from its start to its removal. It serves at most one job.

    The child confines itself and imports the target's module as soon as it starts, then blocks on the job
    pipe; ``give`` writes the job's arguments to its working directory and releases it. A child started and
    given its job at once is a cold start, one started earlier is a warm one: the same code runs in both.
    """

    def __init__(self, spawn: _Spawn):
        self.spawn = spawn
        self.proc: subprocess.Popen | None = None
        self.msg_fd = self.job_fd = -1
        self.workdir = Path(tempfile.mkdtemp(prefix="genesys-sandbox-", dir=spawn.tmp_root))
        self.sandbox_id = uuid.uuid4().hex
        msg_write = job_read = -1  # the child's ends of the two pipes
        try:
            (self.workdir / "tmp").mkdir()
            self.msg_fd, msg_write = os.pipe()
            job_read, self.job_fd = os.pipe()
            limits = spawn.limits
            spec = {"module": spawn.module, "jail": limits.jail, "allow_network": limits.allow_network,
                    "limits": {"memory_bytes": limits.memory_bytes, "cpu_seconds": limits.cpu_seconds,
                               "file_bytes": limits.file_bytes},
                    "fd": msg_write, "job_fd": job_read, "job": str(self.workdir / "job.json"),
                    "writable": [str(self.workdir), "/dev/null", *spawn.writable]}
            (self.workdir / "spec.json").write_text(json.dumps(spec, allow_nan=True))
            self.proc = subprocess.Popen(
                [sys.executable, "-P", str(_CHILD), str(self.workdir / "spec.json")], cwd=self.workdir,
                env=_child_env(self.workdir, self.sandbox_id, limits, dict(spawn.extra_env), dict(spawn.parent_env)),
                stdin=subprocess.DEVNULL, stdout=subprocess.PIPE, stderr=subprocess.PIPE,
                pass_fds=(msg_write, job_read), start_new_session=True)
        except BaseException:
            self.close()
            raise
        finally:
            for fd in (msg_write, job_read):  # the child holds its own copies: its exit then reads as end of file
                if fd >= 0:
                    os.close(fd)

    @property
    def pid(self) -> int | None:
        return None if self.proc is None else self.proc.pid

    def give(self, function: str, kwargs: Mapping[str, Any]) -> None:
        """Hand the job over: call the module's ``function`` (a dotted attribute path) with ``kwargs``. A child
        that already died gets nothing: the watch then classes how it ended, as for any child that dies before
        reporting."""
        job = {"function": function, "kwargs": dict(kwargs)}
        (self.workdir / "job.json").write_text(json.dumps(job, allow_nan=True))
        try:
            os.write(self.job_fd, b"go\n")  # a few bytes always fit in the pipe: never blocks on a busy child
        except BrokenPipeError:
            pass
        finally:
            os.close(self.job_fd)
            self.job_fd = -1

    def close(self, watch: _Watch | None = None) -> None:
        """Kill the child's process tree, keep the output it wrote before the end, remove its directory."""
        if self.proc is not None:
            _kill_tree(self.proc.pid, self.sandbox_id)
            self.proc.wait()
        if watch is not None:
            watch.read(list(watch.streams))  # whatever was written before the end
        for fd in (self.msg_fd, self.job_fd):
            if fd >= 0:
                os.close(fd)
        self.msg_fd = self.job_fd = -1
        if self.proc is not None:
            self.proc.stdout.close()
            self.proc.stderr.close()
        shutil.rmtree(self.workdir, ignore_errors=True)


_ACTIVE_SLOT: contextvars.ContextVar["WarmSlot | None"] = contextvars.ContextVar("genesys_warm_slot", default=None)
_OPEN_SLOTS: set["WarmSlot"] = set()
_OPEN_SLOTS_LOCK = threading.Lock()


class WarmSlot:
    """At most one pre-started sandbox child for one worker slot, so a job need not wait for a fresh
    interpreter to import JAX, Flax, Optax and the package.

    ``with slot.active(): ...`` makes every ``run_in_sandbox`` call in that block (in this thread) take the
    slot's waiting child and start the next one while the job runs. A child serves one job and is never reused;
    a waiting child whose spawn (target module, limits, environment, writable paths) differs from the job's is killed
    and the job gets a cold child, so a warm child never runs a job under other limits than a cold one would.
    Only one evaluation may use a slot at a time (an engine slot is held for one evaluation). ``close`` kills the
    waiting child; open slots are also closed when the interpreter exits (after Ctrl-C too), and a waiting child
    whose parent dies (even by SIGKILL) reads the end of its job pipe, empties its directory and exits by itself.
    """

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._child: _Child | None = None
        self._closed = False
        self._owner = os.getpid()  # a forked copy of this process must not kill the original's children at its exit
        with _OPEN_SLOTS_LOCK:
            _OPEN_SLOTS.add(self)

    @contextlib.contextmanager
    def active(self) -> Iterator[None]:
        token = _ACTIVE_SLOT.set(self)
        try:
            yield
        finally:
            _ACTIVE_SLOT.reset(token)

    @property
    def waiting_pid(self) -> int | None:
        """The pre-started child's process id, None when no child waits."""
        with self._lock:
            return None if self._child is None else self._child.pid

    def take(self, spawn: _Spawn) -> _Child | None:
        """The waiting child if it was started for ``spawn``; it leaves the slot either way."""
        with self._lock:
            child, self._child = self._child, None
        if child is None or child.spawn == spawn:
            return child
        child.close()
        return None

    def prestart(self, spawn: _Spawn) -> None:
        """Start the next child for ``spawn`` unless one waits or the slot is closed. A failure to start it
        (no processes or memory left) costs only the head start: the next job starts its own child."""
        with self._lock:
            if self._closed or self._child is not None:
                return
        try:
            child = _Child(spawn)
        except OSError as err:
            log.warning("could not pre-start a sandbox child (%s); the next evaluation starts its own", err)
            return
        with self._lock:
            if not self._closed and self._child is None:
                self._child = child
                return
        child.close()  # closed while it started: nobody will take it

    def close(self) -> None:
        """Kill the waiting child, if any, and start no more."""
        with self._lock:
            self._closed = True
            child, self._child = self._child, None
        with _OPEN_SLOTS_LOCK:
            _OPEN_SLOTS.discard(self)
        if child is not None:
            child.close()


@atexit.register
def _close_open_slots() -> None:
    with _OPEN_SLOTS_LOCK:
        slots = list(_OPEN_SLOTS)
    for slot in slots:
        if slot._owner == os.getpid():
            slot.close()
