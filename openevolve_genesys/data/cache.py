"""The on-disk cache shared by every process of a run.

Several evaluation workers may load the same data at the same moment, so nothing is ever written in
place: a file goes to a private temporary name and is renamed over its final name, and a cache entry
(a folder) is built privately and published with one rename. A reader therefore sees a complete
entry or none, and two writers racing on the same key just produce identical entries, one of which
wins.
"""

from __future__ import annotations

import hashlib
import json
import os
import shutil
import tempfile
from pathlib import Path
from typing import Any


def new_entry_dir(root: Path, key: str) -> Path:
    """A private folder next to the entry ``key``, to be filled and then handed to ``publish_entry``."""
    root.mkdir(parents=True, exist_ok=True)
    tmp = Path(tempfile.mkdtemp(prefix=f".{key}.tmp-", dir=root))
    tmp.chmod(0o755)  # mkdtemp makes it private; a published entry should be as readable as its files
    return tmp


def publish_entry(tmp: Path, final: Path) -> None:
    """Rename the filled folder into place; if another process published first, keep theirs."""
    try:
        os.rename(tmp, final)
    except OSError:
        if not final.is_dir():
            raise
        shutil.rmtree(tmp, ignore_errors=True)


def discard_entry(final: Path) -> None:
    """Move a broken entry out of the way first, so readers never see it half deleted."""
    doomed = final.with_name(f".{final.name}.broken-{os.getpid()}")
    try:
        os.rename(final, doomed)
    except OSError:
        return
    shutil.rmtree(doomed, ignore_errors=True)


def write_json_atomic(path: Path, payload: dict[str, Any]) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(prefix=f".{path.name}.tmp-", dir=path.parent)
    try:
        with os.fdopen(fd, "w", encoding="utf-8") as handle:
            json.dump(payload, handle, indent=1, sort_keys=True)
        os.replace(tmp, path)
    except BaseException:
        Path(tmp).unlink(missing_ok=True)
        raise


def read_json(path: Path) -> dict[str, Any] | None:
    try:
        with open(path, encoding="utf-8") as handle:
            return json.load(handle)
    except (OSError, ValueError):
        return None


def file_stat_key(path: Path) -> str:
    """Identify a file by where it is, its size and its modification time, without reading it.

    Used for large token files, whose full scan (max id, hash) we do once and then remember.
    """
    st = path.stat()
    ident = f"{path.resolve()}|{st.st_size}|{st.st_mtime_ns}"
    return hashlib.sha256(ident.encode()).hexdigest()[:32]
