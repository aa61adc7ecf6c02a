"""Progress bars for long work: the evolution's attempts, ladder training per rung, report and validate.

One place decides how bars look and when they show: on stderr, only when stderr is a terminal (tqdm's
``disable=None``), so logs, pipes and tests stay clean. The log level does not hide them: a user who
quiets the logs with ``--log-level WARNING`` still wants to see that the run moves. While a bar is shown,
log lines print above it (``logging_redirect_tqdm``) instead of tearing it.
"""

from __future__ import annotations

import contextlib
import os
import sys
from typing import Any, Iterator

from tqdm import tqdm
from tqdm.contrib.logging import logging_redirect_tqdm


def progress_bar(total: int | None, desc: str, unit: str, *, initial: int = 0, enabled: bool | None = None,
                 file: Any = None, bar_format: str | None = None) -> tqdm:
    """A bar on stderr; ``enabled=None`` shows it only on a terminal, False never, True always."""
    file = file or sys.stderr
    return tqdm(total=total, desc=desc, unit=unit, initial=initial, file=file, bar_format=bar_format,
                **_size(file), disable=None if enabled is None else not enabled)


def _size(file: Any) -> dict[str, Any]:
    """Follow the terminal's width, except on one that reports no size (a fresh pty: ``script``,
    ``docker exec -t``): tqdm would take its 0 x 0 for room for no bar and draw nothing, so 80 x 24."""
    try:
        unsized = os.get_terminal_size(file.fileno()).columns <= 0
    except (AttributeError, OSError, ValueError):  # not a terminal, or no file descriptor at all
        unsized = False
    return {"ncols": 80, "nrows": 24} if unsized else {"dynamic_ncols": True}


@contextlib.contextmanager
def bar_with_logs(bar: tqdm) -> Iterator[tqdm]:
    """Log lines printed above ``bar`` while it runs; the bar closed afterwards."""
    try:
        if bar.disable:
            yield bar
        else:
            with logging_redirect_tqdm():
                yield bar
    finally:
        bar.close()


def evolution_bar(max_attempts: int, attempts: int, *, enabled: bool | None = None, file: Any = None) -> tqdm:
    """Charged attempts out of the run's budget, from ``attempts`` (a resumed run's replayed count). No rate:
    minutes per attempt say less than the time left, and without it the postfix fits 80 columns."""
    return progress_bar(max_attempts, "evolution", "attempt", initial=attempts, enabled=enabled, file=file,
                        bar_format="{l_bar}{bar}| {n_fmt}/{total_fmt} [{elapsed}<{remaining}{postfix}]")


def show_evolution(bar: tqdm, attempts: int, best_utility: float | None, verified: int, running: int) -> None:
    """Move the evolution bar to ``attempts`` (the ledger's charged count) and say how the run stands."""
    if bar.disable:
        return
    bar.update(attempts - bar.n)
    best = "-" if best_utility is None else f"{round(best_utility, 3) + 0.0:+.3f}"  # the baseline's -1e-15: +0.000
    bar.set_postfix_str(f"best {best}, {verified} verified, {running} running")


class LadderProgress:
    """A heartbeat consumer for ladder training: one bar that restarts for each rung, steps as its unit.

    The sandboxed child sends ``{"rung", "step", "of", "train_loss"}`` per trained chunk and stage
    heartbeats (``{"stage": ...}``) before it; the stage shows until the first step, so the minutes of
    checks and compilation do not look like a hang. Use it as a context manager: log lines go above it.
    """

    def __init__(self, desc: str, *, enabled: bool | None = None, file: Any = None):
        self.desc = desc
        self.bar = progress_bar(None, desc, "step", enabled=enabled, file=file)
        self.rung: str | None = None
        self._logs = contextlib.ExitStack()

    def __enter__(self) -> LadderProgress:
        self._logs.enter_context(bar_with_logs(self.bar))
        return self

    def __exit__(self, *exc: object) -> None:
        self._logs.close()

    def __call__(self, beat: dict[str, Any]) -> None:
        if "rung" not in beat or "step" not in beat:
            if self.rung is None and "stage" in beat:
                self.bar.set_postfix_str(str(beat["stage"]))
            return
        if beat["rung"] != self.rung:
            self.rung = beat["rung"]
            self.bar.set_description(f"{self.desc} {self.rung}", refresh=False)
            self.bar.set_postfix_str("", refresh=False)  # the stage or the last rung's loss is not this rung's
            self.bar.initial = 0  # reset() redraws at step 0
            self.bar.reset(total=beat.get("of"))
            # The bar learns of a rung at its first heartbeat, a chunk in: those steps were not trained in
            # no time, so they are the rate's starting point (tqdm's ``initial``), not part of it.
            self.bar.initial = int(beat["step"])
        # Set, not added: a heartbeat carries the step reached; one redraw per heartbeat.
        self.bar.n = max(self.bar.n, int(beat["step"]))
        if beat.get("train_loss") is not None:
            self.bar.set_postfix(loss=f"{beat['train_loss']:.3f}", refresh=False)
        self.bar.refresh()
