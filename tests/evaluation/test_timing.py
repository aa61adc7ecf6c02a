"""Time accounting: a job's phases add up to its wall time; a run sums its jobs'."""

import pytest

from openevolve_genesys.controller.accounting import Accounting
from openevolve_genesys.evaluation.timing import PHASES, job_timing


def test_the_phases_of_a_job_add_up_to_its_wall_time():
    child = {"startup": 0.5, "checks": 1.0, "data": 0.25, "compile": 3.0, "train": 5.0, "evaluation": 0.5,
             "job": 10.5}
    timing = job_timing(child, wall_seconds=14.0)
    assert timing["startup"] == pytest.approx(3.5 + 0.5)  # the interpreter and imports, plus the job's first lap
    assert timing["other"] == pytest.approx(0.25) and sum(timing.values()) == pytest.approx(14.0)
    assert list(timing) == [p for p in PHASES if p in timing]
    assert job_timing({}, wall_seconds=2.0) == {"checks": 0.0, "data": 0.0, "compile": 0.0, "train": 0.0,
                                                "evaluation": 0.0, "startup": 2.0, "other": 0.0}


def test_a_run_sums_its_jobs_and_its_llm_waits():
    books = Accounting()
    books.record_time({"startup": 2.0, "train": 6.0}, llm_seconds=1.5)
    books.record_time({"train": 4.0, "queue": 1.0})
    books.record_time(None)  # a history older than time accounting
    assert books.summary()["time"] == {"startup": 2.0, "train": 10.0, "llm": 1.5, "queue": 1.0}
    assert "training 69% of 14 s" in books.summary_lines()[-1]
