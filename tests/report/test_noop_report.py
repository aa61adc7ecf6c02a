"""The report's no-op section and summary.json's noop_screen, folded from history design events."""

import pytest

from openevolve_genesys.report.noop import noop_lines, noop_summary


def _design(distance, params_match=True, check=None):
    metrics = {"probe_distance": distance, "probe_params_match": params_match}
    if check:
        metrics["check"] = check
    return {"type": "design", "metrics": metrics}


def test_the_summary_counts_screened_children_and_takes_quantiles_of_comparable_distances_only():
    events = [_design(0.0, check="no_change"), _design(0.2), _design(0.4), _design(5.0, params_match=False),
              {"type": "design", "metrics": {"outcome": "ok"}}, {"type": "verify", "metrics": {"probe_distance": 9}}]
    summary = noop_summary(events)
    assert (summary.probed, summary.screened, summary.params_differ) == (4, 1, 1)
    assert summary.quantiles["q0"] == 0.0 and summary.quantiles["q100"] == pytest.approx(0.4)
    assert summary.quantiles["q50"] == pytest.approx(0.2)
    lines = "\n".join(noop_lines(summary))
    assert "4 children probed" in lines and "1 screened out as no_change" in lines and "| q50 |" in lines


def test_a_run_without_probes_has_no_section():
    assert noop_lines(noop_summary([{"type": "design", "metrics": {}}])) == []
