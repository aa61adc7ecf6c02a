"""Progress bars: the ladder bar follows the training child's heartbeats rung by rung, the evolution bar
follows the ledger's attempts, log lines print above a shown bar, and bars stay silent off a terminal."""

import io
import logging
import os
import pty
import select
import sys

from openevolve_genesys.progress import LadderProgress, bar_with_logs, evolution_bar, progress_bar, show_evolution


def test_the_ladder_bar_shows_the_stage_then_restarts_for_each_rung():
    with LadderProgress("baseline", enabled=True, file=io.StringIO()) as ladder:
        ladder({"stage": "started"})
        ladder({"stage": "checked"})
        assert ladder.rung is None and ladder.bar.n == 0 and "checked" in str(ladder.bar)
        ladder({"rung": "r0", "step": 30, "of": 60, "train_loss": 6.5, "time": 0.0})
        assert "?step/s" in str(ladder.bar)  # the first chunk's steps are no rate: they came before the bar knew
        ladder({"rung": "r0", "step": 60, "of": 60, "train_loss": 6.1, "time": 1.0})
        assert (ladder.bar.n, ladder.bar.total) == (60, 60) and ladder.bar.desc.startswith("baseline r0")
        assert "loss=6.100" in str(ladder.bar)
        ladder({"rung": "r1", "step": 30, "of": 90, "train_loss": None, "time": 2.0})
        assert (ladder.bar.n, ladder.bar.total) == (30, 90) and ladder.bar.desc.startswith("baseline r1")
        assert "loss" not in str(ladder.bar)  # r0's loss is not r1's
        ladder({"stage": "late"})  # a stage after training started does not hide the rung's numbers
        ladder({"rung": "r1", "step": 90, "of": 90, "train_loss": 5.9, "time": 3.0})
        assert ladder.bar.n == 90 and "late" not in str(ladder.bar) and "loss=5.900" in str(ladder.bar)


def test_bars_are_silent_off_a_terminal_unless_asked():
    out = io.StringIO()  # not a TTY
    with LadderProgress("baseline", file=out) as ladder:
        ladder({"rung": "r0", "step": 30, "of": 60, "train_loss": 6.5})
        assert ladder.bar.disable  # checked before closing: a closed bar always says disabled
    with bar_with_logs(evolution_bar(10, 0, file=out)) as bar:
        assert bar.disable
        show_evolution(bar, 4, 0.1, 2, 1)
    assert out.getvalue() == ""
    assert not progress_bar(10, "x", "step", enabled=True, file=io.StringIO()).disable
    assert progress_bar(10, "x", "step", enabled=False).disable


def test_the_evolution_bar_resumes_at_the_replayed_count_and_says_how_the_run_stands():
    out = io.StringIO()
    with bar_with_logs(evolution_bar(20, 7, enabled=True, file=out)) as bar:
        show_evolution(bar, 7, None, 0, 0)
        assert bar.n == 7 and "best -, 0 verified, 0 running" in str(bar)
        show_evolution(bar, 9, 0.0421, 3, 2)
        assert bar.n == 9 and "best +0.042, 3 verified, 2 running" in str(bar)
        show_evolution(bar, 9, -2e-15, 3, 2)  # the baseline, best so far: rounding noise shows no sign
        assert "best +0.000," in str(bar)
    assert "9/20" in out.getvalue()
    last = out.getvalue().rpartition("\r")[2].strip()  # the bar as the terminal is left with it: no rate
    assert last.startswith("evolution:  45%|") and "| 9/20 [" in last and "/s" not in last
    assert last.endswith(", best +0.000, 3 verified, 2 running]")


def test_log_lines_print_above_a_shown_bar_instead_of_after_it(monkeypatch):
    out = io.StringIO()  # set here, not in a fixture: pytest's capture resets sys.stderr between phases
    monkeypatch.setattr(sys, "stderr", out)
    handler = logging.StreamHandler(sys.stderr)  # as logging.basicConfig sets it up
    logging.root.addHandler(handler)
    try:
        with bar_with_logs(progress_bar(3, "evolution", "attempt", enabled=True)) as bar:
            bar.update(1)
            logging.getLogger("openevolve_genesys.test").warning("a log line")
    finally:
        logging.root.removeHandler(handler)
    before, line, after = out.getvalue().partition("a log line\n")
    # tqdm clears the bar's line first (blanks, then "\r"); a bare handler would append to the bar's text.
    assert line and before.endswith(" \r") and after.lstrip("\r").startswith("evolution:")


def test_a_bar_shows_on_a_terminal_even_one_that_reports_no_size(monkeypatch):
    leader, follower = pty.openpty()  # a fresh pty is 0 x 0 until someone sets its size
    try:
        with os.fdopen(follower, "w", closefd=False) as tty:
            assert os.get_terminal_size(follower).columns == 0
            monkeypatch.setattr(sys, "stderr", tty)  # tqdm reads a size only for the standard streams
            bar = progress_bar(5, "evolution", "attempt")
            shown = not bar.disable  # a closed bar always says disabled
            bar.update(2)
            bar.close()
        drawn = ""
        while select.select([leader], [], [], 0.2)[0]:  # all the frames written so far
            drawn += os.read(leader, 4096).decode()
    finally:
        os.close(leader)
        os.close(follower)
    assert shown and "evolution:  40%" in drawn and "2/5" in drawn
