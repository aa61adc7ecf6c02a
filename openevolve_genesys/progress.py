"""Progress bars for long work: the evolution's attempts, ladder training per rung, report and validate.

One place decides how bars look and when they show: on stderr, only when stderr is a terminal (tqdm's
``disable=None``), so logs, pipes and tests stay clean; log lines go above the bar
(``logging_redirect_tqdm``) instead of tearing it.
"""

from __future__ import annotations

import contextlib
import sys
from typing import Any, Iterator

from tqdm import tqdm
from tqdm.contrib.logging import logging_redirect_tqdm


def progress_bar(total: int | None, desc: str, unit: str, *, initial: int = 0, enabled: bool | None = None,
                 file: Any = None) -> tqdm:
    """A bar on stderr; ``enabled=None`` shows it only on a terminal, False never, True always."""
    return tqdm(total=total, desc=desc, unit=unit, initial=initial, file=file or sys.stderr, dynamic_ncols=True,
                disable=None if enabled is None else not enabled)


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


class LadderProgress:
    """A heartbeat consumer for ladder training: one bar that restarts for each rung, steps as its unit.

    The sandboxed child sends ``{"rung", "step", "of", "train_loss"}`` per trained chunk and other
    heartbeats (``{"stage": ...}``) in between; only the former move the bar."""

    def __init__(self, desc: str, *, enabled: bool | None = None, file: Any = None):
        self.desc = desc
        self.bar = progress_bar(None, desc, "step", enabled=enabled, file=file)
        self.rung: str | None = None

    def __call__(self, beat: dict[str, Any]) -> None:
        if "rung" not in beat or "step" not in beat:
            return
        if beat["rung"] != self.rung:
            self.rung = beat["rung"]
            self.bar.reset(total=beat.get("of"))
            self.bar.set_description(f"{self.desc} {self.rung}", refresh=False)
            self.bar.set_postfix_str("", refresh=False)  # the last rung's loss is not this one's
        self.bar.update(max(0, int(beat["step"]) - self.bar.n))
        if beat.get("train_loss") is not None:
            self.bar.set_postfix(loss=f"{beat['train_loss']:.3f}", refresh=False)

    def close(self) -> None:
        self.bar.close()
