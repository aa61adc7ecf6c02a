"""Find the processes doing a job, to kill them mid-job in tests."""

from pathlib import Path


def pids_with(marker: bytes, ancestor: int) -> list[int]:
    """PIDs below ``ancestor`` whose command line contains ``marker``; other people's jobs are never touched."""
    pids = []
    for proc in Path("/proc").iterdir():
        try:
            if proc.name.isdigit() and marker in (proc / "cmdline").read_bytes() and _descends(int(proc.name), ancestor):
                pids.append(int(proc.name))
        except OSError:
            continue
    return pids


def _descends(pid: int, ancestor: int) -> bool:
    while pid > 1:
        if pid == ancestor:
            return True
        stat = Path(f"/proc/{pid}/stat").read_text()
        pid = int(stat.rsplit(")", 1)[1].split()[1])  # the field after the state is the parent's PID
    return False
