"""Several runs side by side: ``openevolve a.yaml b.yaml c.yaml --devices 0,1,2``.

Each config runs as its own ``openevolve`` process with its own output folder, pinned to its own device
(``CUDA_VISIBLE_DEVICES``, set before JAX starts) or, without accelerators, to its own share of the CPU
cores (the child's affinity, inherited by its sandboxed evaluations). All share one fitness cache, so a
design two runs both find is trained once. One status line sums them up; Ctrl-C reaches every run, and
each saves its state before it exits.
"""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time
from pathlib import Path
from typing import Sequence

from openevolve_genesys.engine.devices import core_groups, device_env


def run_many(configs: Sequence[str], *, devices: Sequence[str] = (), output_root: str = "runs",
             extra_args: Sequence[str] = (), status_seconds: float = 30.0) -> int:
    if devices and len(devices) != len(configs):
        raise ValueError(f"--devices lists {len(devices)} device(s) for {len(configs)} configs: give one per config")
    outputs = [Path(output_root) / Path(c).stem for c in configs]
    if len(set(outputs)) != len(outputs):
        raise ValueError("two configs have the same file name, so their output folders would collide; rename one")
    cores = core_groups(len(configs)) if not devices else [None] * len(configs)
    children = []
    for i, (config, output) in enumerate(zip(configs, outputs)):
        command = [sys.executable, "-m", "openevolve_genesys.cli", config, "--output", str(output), *extra_args]
        env = dict(os.environ)
        if devices:
            env.update(device_env(devices[i]))
            command += ["--devices", devices[i]]
        children.append(subprocess.Popen(command, env=env, preexec_fn=_pin(cores[i])))
    forward = signal.signal(signal.SIGINT, lambda *_: [c.send_signal(signal.SIGINT) for c in children])
    try:
        while any(c.poll() is None for c in children):
            print(status_line(configs, outputs), file=sys.stderr, flush=True)
            _wait_any(children, status_seconds)
    finally:
        signal.signal(signal.SIGINT, forward)
    print(status_line(configs, outputs), file=sys.stderr, flush=True)
    return max(c.returncode for c in children)


def status_line(configs: Sequence[str], outputs: Sequence[Path]) -> str:
    parts = []
    for config, output in zip(configs, outputs):
        state = _read(output / "state.json")
        utility = _read(output / "best_program_info.json").get("utility")
        text = f"{Path(config).stem}: "
        text += f"{state.get('attempts', 0)}/{state.get('max_attempts', '?')} attempts" if state else "starting"
        parts.append(text + (f", best {utility:+.4f}" if utility is not None else ""))
    return " | ".join(parts)


def _pin(cores: list[int] | None):
    if cores is None:
        return None
    return lambda: os.sched_setaffinity(0, cores)


def _wait_any(children: Sequence[subprocess.Popen], seconds: float) -> None:
    deadline = time.monotonic() + seconds
    while time.monotonic() < deadline and all(c.poll() is None for c in children):
        time.sleep(0.2)


def _read(path: Path) -> dict:
    try:
        return json.loads(path.read_text())
    except (OSError, ValueError):
        return {}
