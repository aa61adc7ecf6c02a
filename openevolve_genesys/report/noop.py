"""The no-op screen over a run: the distribution of its design attempts' probe distances (evaluation/noop.py).

Read from the history's design events (their metrics carry ``probe_distance`` and ``probe_params_match``), so
``summary.json`` and ``openevolve report`` say the same, and a resumed run counts every attempt once.
"""

from __future__ import annotations

from dataclasses import asdict, dataclass
from typing import Any, Iterable

import numpy as np

QUANTILES = (0.0, 0.1, 0.5, 0.9, 1.0)


@dataclass(frozen=True)
class NoopSummary:
    probed: int  # design attempts whose child was probed against its seed
    screened: int  # of those, classed no_change and never trained
    params_differ: int  # probed children whose initial parameters differ from the seed's (never screened)
    quantiles: dict[str, float]  # of the distances of children with the seed's parameters, by quantile

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)


def noop_summary(events: Iterable[dict[str, Any]]) -> NoopSummary:
    probed = [e["metrics"] for e in events if e.get("type") == "design" and "probe_distance" in (e.get("metrics") or {})]
    matched = [m["probe_distance"] for m in probed if m.get("probe_params_match") and m["probe_distance"] is not None]
    values = np.quantile(matched, QUANTILES).tolist() if matched else []
    return NoopSummary(
        probed=len(probed), screened=sum(m.get("check") == "no_change" for m in probed),
        params_differ=sum(not m.get("probe_params_match") for m in probed),
        quantiles={f"q{round(q * 100)}": v for q, v in zip(QUANTILES, values)})


def noop_lines(summary: NoopSummary) -> list[str]:
    """The report's section; empty when no child was probed (a run older than the screen)."""
    if not summary.probed:
        return []
    out = ["## No-op screen", "",
           f"{summary.probed} children probed against their seed; {summary.screened} screened out as no_change "
           f"(never trained); {summary.params_differ} start from other parameters than their seed's (never "
           "screened). Relative RMS probe distance of the children with their seed's parameters:", ""]
    if summary.quantiles:
        out += ["| " + " | ".join(summary.quantiles) + " |", "|" + " --- |" * len(summary.quantiles),
                "| " + " | ".join(f"{v:.3g}" for v in summary.quantiles.values()) + " |"]
    return out + [""]
