"""What a worker may see: the environment that pins an evaluation to one accelerator or to CPU cores.

JAX reads ``JAX_PLATFORMS``, ``CUDA_VISIBLE_DEVICES`` and its GPU memory settings once, at import, so they are
set in the sandboxed child's environment before it starts, never changed in a running process.
"""

from __future__ import annotations

import os
from typing import Sequence

# The share of a shared GPU's memory its slots split between them by default: each process also holds its own
# CUDA context (a few hundred MB) outside JAX's pool, which must fit in the rest.
SHARED_MEMORY = 0.9


def device_env(device: str) -> dict[str, str]:
    """``"0"``/``"cuda:0"``: that GPU only; ``"cpu"``: no accelerator."""
    device = device.strip().lower()
    if device == "cpu":
        return {"JAX_PLATFORMS": "cpu", "CUDA_VISIBLE_DEVICES": ""}
    index = device.removeprefix("cuda:").removeprefix("gpu:")
    if not index.isdigit():
        raise ValueError(f"unknown device {device!r}: use a CUDA index like '0' or 'cuda:1', or 'cpu'")
    return {"CUDA_VISIBLE_DEVICES": index}


def shared_memory_env(fraction: float) -> dict[str, str]:
    """A slot on a GPU it shares: JAX grows its pool on demand up to ``fraction`` of the device instead of
    taking 75% at start-up, which would leave the other slots on that GPU nothing."""
    if not 0 < fraction <= 1:
        raise ValueError(f"a slot's GPU memory fraction must be in (0, 1], got {fraction!r}")
    return {"XLA_PYTHON_CLIENT_PREALLOCATE": "false", "XLA_PYTHON_CLIENT_MEM_FRACTION": f"{fraction:.4g}"}


def slot_envs(devices: Sequence[str], workers: int = 0, slots_per_device: int = 1,
              memory_fraction: float = 0.0) -> list[dict[str, str]]:
    """One environment per evaluation slot.

    Listed ``devices``: ``slots_per_device`` slots on each GPU (a ``cpu`` entry is one slot), taken in turn
    across the devices, so that a ``workers`` count below the total still spreads over every device; no
    devices: unpinned slots, ``slots_per_device`` of them sharing the one GPU each child's JAX picks.
    ``workers`` (0: not set) is the number of slots, at most the devices' total. A slot that shares its GPU
    gets at most ``memory_fraction`` of it (0: ``SHARED_MEMORY / slots_per_device``). Callers on a machine
    without a GPU pass ``slots_per_device=1``: the setting has no device effect there."""
    if isinstance(slots_per_device, bool) or not isinstance(slots_per_device, int) or slots_per_device < 1:
        raise ValueError(f"slots_per_device must be a whole number >= 1, got {slots_per_device!r}")
    if not devices and slots_per_device == 1:
        return [{} for _ in range(max(workers, 1))]
    pinned = [device_env(d) for d in devices] or [{}]
    fraction = memory_fraction or SHARED_MEMORY / slots_per_device
    slots = []
    for turn in range(slots_per_device):
        for env in pinned:
            if env.get("JAX_PLATFORMS") == "cpu":
                if turn == 0:  # a CPU entry is one slot: its cores are not a device to split
                    slots.append(dict(env))
            else:
                slots.append({**env, **(shared_memory_env(fraction) if slots_per_device > 1 else {})})
    return slots[:workers] if workers else slots


def core_groups(runs: int, cores: Sequence[int] | None = None) -> list[list[int]]:
    """Split this machine's cores among ``runs`` runs (round-robin when there are more runs than cores)."""
    cores = sorted(cores if cores is not None else os.sched_getaffinity(0))
    if runs <= len(cores):
        size = len(cores) // runs
        return [cores[i * size:(i + 1) * size] if i < runs - 1 else cores[i * size:] for i in range(runs)]
    return [[cores[i % len(cores)]] for i in range(runs)]
