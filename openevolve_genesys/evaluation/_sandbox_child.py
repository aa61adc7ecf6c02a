"""The child side of the sandbox: confine this process, run one job, report through a pipe.

``sandbox.run_in_sandbox`` starts ``python -P _sandbox_child.py SPEC`` in a fresh temporary
directory. This file is run as a script, not as ``-m openevolve_genesys.evaluation...``, so that no
package ``__init__`` (which may import JAX) runs before the limits are in place. Order matters:

1. resource limits (memory, CPU, file size, no core dumps) and a high OOM score, so that every later
   import and allocation is already limited and the kernel's OOM killer picks this process first;
2. confinement: a Python-level network guard and, where the kernel has Landlock, a real kernel jail
   (writes only below the working directory, no TCP, no signals to processes outside the sandbox);
3. import the target's module (the function is looked up once the job names it);
4. wait for the job: the parent writes its arguments to ``job.json`` in the working directory and then a
   line to the job pipe. A child may wait there while the previous job runs (a warm child); nothing of
   the job, and no evolved code, exists in the process before this point, so steps 1-3 are the same for
   a warm and a cold child. End of file without a line means the parent died: the child empties its
   working directory and exits;
5. call the target. Everything the job does is reported as one JSON line per message on the inherited
   pipe; stdout is never parsed, so a program printing garbage cannot forge a result.

Messages: ``started``, ``heartbeat``s, then one ``final`` carrying the child's verdict (outcome, reason,
value, message) unless the process dies first. After it the process ends with ``os._exit`` so that
threads or atexit handlers left behind by the program cannot keep it alive.
"""

from __future__ import annotations

import ctypes
import dataclasses
import importlib
import json
import os
import resource
import shutil
import signal
import sys
import threading
import time
import traceback
from typing import Any, Callable

_SANDBOX_MODULE = "openevolve_genesys.evaluation.sandbox"
_TRACEBACK_CHARS = 2500

# Landlock uapi constants (linux/landlock.h). Syscalls added since Linux 5.1 have the same number
# on every architecture but alpha.
_SYS_CREATE_RULESET, _SYS_ADD_RULE, _SYS_RESTRICT_SELF = 444, 445, 446
_FS_WRITE_FILE, _FS_REMOVE_DIR, _FS_REMOVE_FILE = 1 << 1, 1 << 4, 1 << 5
_FS_MAKE_ALL = sum(1 << bit for bit in range(6, 13))  # char, dir, reg, sock, fifo, block, sym
_FS_REFER, _FS_TRUNCATE = 1 << 13, 1 << 14
_NET_BIND_TCP, _NET_CONNECT_TCP = 1 << 0, 1 << 1
_SCOPE_ABSTRACT_UNIX, _SCOPE_SIGNAL = 1 << 0, 1 << 1
_PR_SET_NO_NEW_PRIVS = 38


class _RulesetAttr(ctypes.Structure):
    _fields_ = [("fs", ctypes.c_uint64), ("net", ctypes.c_uint64), ("scoped", ctypes.c_uint64)]


class _PathBeneath(ctypes.Structure):
    _pack_ = 1
    _fields_ = [("allowed", ctypes.c_uint64), ("parent_fd", ctypes.c_int32)]


class _Channel:
    """JSON lines to the parent; one lock so heartbeats from other threads never interleave."""

    def __init__(self, fd: int):
        self.fd = fd
        self.lock = threading.Lock()
        # Not inherited by exec'd programs (os.system, subprocess); forks still see it.
        os.set_inheritable(fd, False)

    def send(self, message: dict[str, Any]) -> None:
        data = (json.dumps(message, allow_nan=True) + "\n").encode()
        with self.lock:
            try:
                while data:
                    data = data[os.write(self.fd, data):]
            except BrokenPipeError:  # the parent is gone: nobody will read a result
                os._exit(1)


def _apply_limits(limits: dict[str, Any]) -> None:
    resource.setrlimit(resource.RLIMIT_CORE, (0, 0))
    if limits.get("memory_bytes"):
        # RLIMIT_DATA counts private writable mappings, i.e. what a program actually commits. Unlike
        # RLIMIT_AS it ignores PROT_NONE reservations and shared libraries, which JAX/XLA and CUDA
        # create in large amounts. The parent adds a process-group RSS poll on top of it.
        resource.setrlimit(resource.RLIMIT_DATA, (limits["memory_bytes"],) * 2)
    if limits.get("cpu_seconds"):
        soft = max(1, int(limits["cpu_seconds"] + 0.999))
        resource.setrlimit(resource.RLIMIT_CPU, (soft, soft + 2))  # SIGXCPU, then SIGKILL
    if limits.get("file_bytes"):
        resource.setrlimit(resource.RLIMIT_FSIZE, (limits["file_bytes"],) * 2)
    try:
        with open("/proc/self/oom_score_adj", "w") as f:
            f.write("1000")
    except OSError:
        pass


def _guard_network() -> None:
    """Fail fast, with a clear message, on connections or name lookups beyond the loopback.

    Python-level only: C extensions and exec'd programs bypass it (Landlock, when present, covers
    TCP for them). It exists mainly to turn a hanging DNS lookup into an immediate error.
    """
    import ipaddress
    import socket

    def is_local(address: Any) -> bool:
        if not isinstance(address, tuple):
            return True  # AF_UNIX path or abstract name
        host = address[0].decode() if isinstance(address[0], bytes) else str(address[0])
        if host in ("", "localhost"):
            return True
        try:
            return ipaddress.ip_address(host.split("%")[0]).is_loopback
        except ValueError:
            return False

    def refuse(what: str) -> None:
        raise PermissionError(f"network access is disabled in the evaluation sandbox ({what}); "
                              "an evolved program must compute everything locally")

    real_connect, real_connect_ex = socket.socket.connect, socket.socket.connect_ex
    real_sendto, real_getaddrinfo = socket.socket.sendto, socket.getaddrinfo

    def connect(self: socket.socket, address: Any) -> None:
        if not is_local(address):
            refuse(f"connect to {address!r}")
        return real_connect(self, address)

    def connect_ex(self: socket.socket, address: Any) -> int:
        if not is_local(address):
            refuse(f"connect to {address!r}")
        return real_connect_ex(self, address)

    def sendto(self: socket.socket, *args: Any) -> int:
        if not is_local(args[-1]):
            refuse(f"sendto {args[-1]!r}")
        return real_sendto(self, *args)

    def is_name(host: Any) -> bool:
        try:
            ipaddress.ip_address((host.decode() if isinstance(host, bytes) else str(host)).split("%")[0])
            return False
        except ValueError:
            return True

    def getaddrinfo(host: Any, *args: Any, **kwargs: Any) -> Any:
        # IP literals resolve locally and are judged by connect/sendto; names would need DNS.
        if host is not None and is_name(host) and not is_local((host,)):
            refuse(f"resolve {host!r}")
        return real_getaddrinfo(host, *args, **kwargs)

    socket.socket.connect, socket.socket.connect_ex, socket.socket.sendto = connect, connect_ex, sendto
    socket.getaddrinfo = getaddrinfo


def _landlock(writable: list[str], block_tcp: bool) -> str:
    """Kernel jail without privileges; returns a description of what is enforced."""
    libc = ctypes.CDLL(None, use_errno=True)
    libc.syscall.restype = ctypes.c_long
    abi = libc.syscall(ctypes.c_long(_SYS_CREATE_RULESET), None, ctypes.c_size_t(0), ctypes.c_uint32(1))
    if abi < 0:
        return f"convention only (Landlock unavailable: {os.strerror(ctypes.get_errno())})"
    fs = _FS_WRITE_FILE | _FS_REMOVE_DIR | _FS_REMOVE_FILE | _FS_MAKE_ALL
    fs |= (_FS_REFER if abi >= 2 else 0) | (_FS_TRUNCATE if abi >= 3 else 0)
    file_rights = _FS_WRITE_FILE | (_FS_TRUNCATE if abi >= 3 else 0)
    net = _NET_BIND_TCP | _NET_CONNECT_TCP if (block_tcp and abi >= 4) else 0
    scoped = _SCOPE_ABSTRACT_UNIX | _SCOPE_SIGNAL if abi >= 6 else 0
    attr = _RulesetAttr(fs, net, scoped)
    size = 8 if abi < 4 else 16 if abi < 6 else 24  # older kernels reject fields they do not know
    ruleset = libc.syscall(ctypes.c_long(_SYS_CREATE_RULESET), ctypes.byref(attr), ctypes.c_size_t(size),
                           ctypes.c_uint32(0))
    if ruleset < 0:
        return f"convention only (Landlock ruleset failed: {os.strerror(ctypes.get_errno())})"
    try:
        for path in writable:
            try:
                fd = os.open(path, os.O_PATH | os.O_CLOEXEC)
            except OSError:
                continue  # a missing optional path (e.g. /dev/tty) is simply not writable
            try:
                rights = fs if os.path.isdir(path) else file_rights
                rule = _PathBeneath(rights, fd)
                if libc.syscall(ctypes.c_long(_SYS_ADD_RULE), ctypes.c_int(ruleset), ctypes.c_int(1),
                                ctypes.byref(rule), ctypes.c_uint32(0)) < 0:
                    raise OSError(ctypes.get_errno(), f"Landlock rule for {path}")
            finally:
                os.close(fd)
        if libc.prctl(_PR_SET_NO_NEW_PRIVS, 1, 0, 0, 0) != 0:
            raise OSError(ctypes.get_errno(), "prctl(PR_SET_NO_NEW_PRIVS)")
        if libc.syscall(ctypes.c_long(_SYS_RESTRICT_SELF), ctypes.c_int(ruleset), ctypes.c_uint32(0)) < 0:
            raise OSError(ctypes.get_errno(), "landlock_restrict_self")
    finally:
        os.close(ruleset)
    parts = ["writes only below the working directory"]
    parts += ["no TCP"] if net else []
    parts += ["no signals outside the sandbox"] if scoped else []
    return f"landlock abi {abi}: " + ", ".join(parts)


def _watch_parent() -> None:
    """If the parent dies, kill this process group instead of running on as an orphan."""
    parent = os.getppid()

    def loop() -> None:
        while True:
            time.sleep(1.0)
            if os.getppid() != parent:
                os.killpg(0, signal.SIGKILL)

    threading.Thread(target=loop, name="sandbox-orphan-watch", daemon=True).start()


def _load_target(module: Any, attr: str) -> Callable[..., Any]:
    obj = module
    for part in attr.split("."):
        obj = getattr(obj, part)
    return obj


def _describe(exc: BaseException, from_job: bool = False) -> str:
    """Type and message first (what an LLM needs), then the tail of the traceback (where).

    ``from_job`` drops this module's own frame so the traceback starts in the job.
    """
    tb = exc.__traceback__
    if from_job and tb is not None and tb.tb_next is not None:
        tb = tb.tb_next
    text = "".join(traceback.format_exception(type(exc), exc, tb))
    if len(text) > _TRACEBACK_CHARS:
        text = "...\n" + text[-_TRACEBACK_CHARS:]
    return f"{type(exc).__name__}: {exc}\n{text}"


def _is_out_of_memory(exc: BaseException) -> bool:
    text = str(exc)[:300]
    return isinstance(exc, MemoryError) or ("RESOURCE_EXHAUSTED" in text and "memory" in text.lower())


def _to_jsonable(progress: Any) -> Any:
    if dataclasses.is_dataclass(progress) and not isinstance(progress, type):
        return dataclasses.asdict(progress)
    return progress


def _run_job(channel: _Channel, job: Callable[..., Any], kwargs: dict[str, Any]) -> dict[str, Any]:
    def heartbeat(progress: Any = None) -> None:
        progress = _to_jsonable(progress if progress is not None else {})
        channel.send({"kind": "heartbeat", "progress": json.loads(json.dumps(progress, default=repr))})

    try:
        value = job(**kwargs, heartbeat=heartbeat)
    except SystemExit as exc:
        return _final("invalid", "exit", message=f"the program called sys.exit({exc.code!r}); "
                                                 "evolved code must not end the process")
    except BaseException as exc:  # noqa: BLE001 - anything the program raises is the design's fault
        if _is_out_of_memory(exc):
            return _final("crashed", "memory", message=f"out of memory inside the job: {_describe(exc, from_job=True)}")
        sandbox = sys.modules.get(_SANDBOX_MODULE)
        if sandbox is not None and isinstance(exc, sandbox.DesignInvalid):
            payload = json.loads(json.dumps(exc.payload, default=repr))
            return _final("invalid", "design_invalid", payload, _describe(exc, from_job=True))
        return _final("invalid", "exception", message=_describe(exc, from_job=True))
    try:
        json.dumps(value, allow_nan=True)
    except (TypeError, ValueError) as exc:
        return _final("crashed", "protocol", message=f"the job returned a value that is not JSON-serialisable: {exc}")
    return _final("ok", "ok", value)


def _final(outcome: str, reason: str, value: Any = None, message: str = "") -> dict[str, Any]:
    return {"kind": "final", "outcome": outcome, "reason": reason, "value": value, "message": message}


def _await_job(job_fd: int, job_path: str) -> dict[str, Any]:
    """Block until the parent hands over the job: the function to call and its keyword arguments."""
    with os.fdopen(job_fd, "rb") as pipe:
        if not pipe.readline():
            # The parent died before handing a job over (it kills a child it discards, so only its death closes
            # the pipe): nobody else will clean up, and nothing of a job ran here. The jail lets this process write
            # only below the working directory, so the emptied directory itself stays.
            workdir = os.path.dirname(job_path)
            for entry in os.listdir(workdir):
                path = os.path.join(workdir, entry)
                if os.path.isdir(path) and not os.path.islink(path):
                    shutil.rmtree(path, ignore_errors=True)
                else:
                    try:
                        os.unlink(path)
                    except OSError:
                        pass  # what cannot be removed stays in a temporary directory
            os._exit(0)
    with open(job_path) as f:
        return json.load(f)


def main(spec_path: str) -> None:
    with open(spec_path) as f:
        spec = json.load(f)
    channel = _Channel(spec["fd"])
    try:
        _apply_limits(spec["limits"])
        _watch_parent()
        if not spec["allow_network"]:
            _guard_network()
        if spec["jail"]:
            confinement = _landlock(spec["writable"], block_tcp=not spec["allow_network"])
        else:
            confinement = "convention only (jail disabled by the caller)"
        module = importlib.import_module(spec["module"])
        arrived = _await_job(spec["job_fd"], spec["job"])
        job, kwargs = _load_target(module, arrived["function"]), arrived["kwargs"]
    except BaseException as exc:  # noqa: BLE001 - reported to the parent as an infrastructure failure
        channel.send(_final("crashed", "startup", message="the sandbox could not start the job: " + _describe(exc)))
        os._exit(70)
    channel.send({"kind": "started", "pid": os.getpid(), "confinement": confinement})
    final = _run_job(channel, job, kwargs)
    channel.send(final)
    for stream in (sys.stdout, sys.stderr):
        try:
            stream.flush()
        except Exception:  # noqa: BLE001 - the program may have closed or replaced the stream
            pass
    os._exit(0)


if __name__ == "__main__":
    main(sys.argv[1])
