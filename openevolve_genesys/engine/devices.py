"""What a worker may see: the environment that pins an evaluation to one accelerator or to CPU cores.

JAX reads ``JAX_PLATFORMS`` and ``CUDA_VISIBLE_DEVICES`` once, at import, so they are set in the sandboxed
child's environment before it starts, never changed in a running process.
"""

from __future__ import annotations

import os
from typing import Sequence


def device_env(device: str) -> dict[str, str]:
    """``"0"``/``"cuda:0"``: that GPU only; ``"cpu"``: no accelerator."""
    device = device.strip().lower()
    if device == "cpu":
        return {"JAX_PLATFORMS": "cpu", "CUDA_VISIBLE_DEVICES": ""}
    index = device.removeprefix("cuda:").removeprefix("gpu:")
    if not index.isdigit():
        raise ValueError(f"unknown device {device!r}: use a CUDA index like '0' or 'cuda:1', or 'cpu'")
    return {"CUDA_VISIBLE_DEVICES": index}


def slot_envs(devices: Sequence[str], workers: int) -> list[dict[str, str]]:
    """One environment per slot: the listed devices, or ``workers`` unpinned slots when none are listed."""
    if not devices:
        return [{} for _ in range(workers)]
    return [device_env(d) for d in devices]


def core_groups(runs: int, cores: Sequence[int] | None = None) -> list[list[int]]:
    """Split this machine's cores among ``runs`` runs (round-robin when there are more runs than cores)."""
    cores = sorted(cores if cores is not None else os.sched_getaffinity(0))
    if runs <= len(cores):
        size = len(cores) // runs
        return [cores[i * size:(i + 1) * size] if i < runs - 1 else cores[i * size:] for i in range(runs)]
    return [[cores[i % len(cores)]] for i in range(runs)]
