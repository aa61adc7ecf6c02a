"""Progress bars: a ladder bar follows the training child's heartbeats rung by rung; bars hide off a terminal."""

import io
import logging

from openevolve_genesys.progress import LadderProgress, bar_with_logs, progress_bar


def test_the_ladder_bar_restarts_for_each_rung_and_ignores_other_heartbeats():
    ladder = LadderProgress("baseline", enabled=True, file=io.StringIO())
    ladder({"stage": "started"})
    assert ladder.rung is None and ladder.bar.n == 0
    ladder({"rung": "r0", "step": 30, "of": 60, "train_loss": 6.5})
    ladder({"rung": "r0", "step": 60, "of": 60, "train_loss": 6.1})
    assert (ladder.bar.n, ladder.bar.total) == (60, 60) and ladder.bar.desc.startswith("baseline r0")
    ladder({"rung": "r1", "step": 30, "of": 90, "train_loss": 6.0})
    assert (ladder.bar.n, ladder.bar.total) == (30, 90) and ladder.bar.desc.startswith("baseline r1")
    assert "loss=6.000" in str(ladder.bar)
    ladder.close()


def test_bars_show_only_on_a_terminal_unless_asked():
    assert progress_bar(10, "x", "step", file=io.StringIO()).disable  # not a TTY: hidden
    assert not progress_bar(10, "x", "step", enabled=True, file=io.StringIO()).disable
    assert progress_bar(10, "x", "step", enabled=False).disable


def test_log_lines_go_above_a_shown_bar(caplog):
    out = io.StringIO()
    with bar_with_logs(progress_bar(3, "evolution", "attempt", enabled=True, file=out)) as bar:
        bar.update(1)
        logging.getLogger("openevolve_genesys.test").warning("a log line")
    assert bar.disable or bar.n == 1
    assert "a log line" in caplog.text
