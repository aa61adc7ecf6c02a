"""The forecast-calibration figure: forecast against measured at the held-out rung, with stated intervals.

Top: the design's loss (gap model filled, with its 68% interval thick and 95% thin; the free power law as
open grey markers, no bars, to show where a per-design fit lands). Bottom: the gap to the baseline for the
mutations (gap model, same bars). Left panels show every design; right panels zoom on the bulk, as one
badly scaling design otherwise squeezes the rest into a dot. The dashed diagonal is a perfect forecast.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any, Sequence

import matplotlib
import numpy as np

matplotlib.use("Agg")  # files only: the benchmark runs headless
import matplotlib.pyplot as plt  # noqa: E402

COLOURS = {"coefficient_dynamics": "tab:blue", "test_time_regression": "tab:orange", "matrix_mixer": "tab:green"}
ZOOM_SHARE = 0.8  # the zoomed panels frame this share of the designs (the closest to the median outcome)


def _bars(ax: plt.Axes, x: float, forecast: dict[str, Any], colour: str, marker: str) -> list[float]:
    """Error bars from stated (possibly asymmetric) intervals, widest first so the 68% bar sits on top;
    returns the values drawn, for the axis limits."""
    drawn = [x, forecast["mean"]]
    for (_, (low, high)), width in zip(sorted(forecast["intervals"].items(), reverse=True), (0.8, 2.6)):
        if low is not None and high is not None:
            ax.plot([x, x], [low, high], color=colour, lw=width, alpha=0.6, solid_capstyle="butt")
            drawn += [low, high]
    ax.plot(x, forecast["mean"], marker=marker, color=colour, ms=6, ls="none")
    return drawn


def _frame(ax: plt.Axes, values: Sequence[float]) -> None:
    """Same limits on both axes, so a forecast's distance from the dashed diagonal reads as its error."""
    low, high = min(values), max(values)
    pad = 0.05 * (high - low or 1.0)
    ax.plot([low - pad, high + pad], [low - pad, high + pad], color="black", lw=0.8, ls="--", zorder=0)
    ax.set_xlim(low - pad, high + pad)
    ax.set_ylim(low - pad, high + pad)
    ax.set_aspect("equal")


def _panel(ax: plt.Axes, rows: list[dict[str, Any]], quantity: str, zoom: bool) -> None:
    measured_key, forecasts_key = f"measured_{quantity}", f"{quantity}_forecasts"
    if quantity == "gap":
        rows = [r for r in rows if r["name"] != "baseline"]
    if not rows:
        return
    measured = np.array([r[measured_key] for r in rows])
    if zoom:  # the designs closest to the median outcome
        distance = np.abs(measured - np.median(measured))
        rows = [r for r, d in zip(rows, distance) if d <= np.quantile(distance, ZOOM_SHARE)]
    drawn: list[float] = []
    for row in rows:
        colour = COLOURS.get(row["framework"], "tab:gray")
        marker = "s" if row["name"] == "baseline" else "o"
        forecasts = row[forecasts_key]
        drawn += _bars(ax, row[measured_key], forecasts["gap"], colour, marker)
        if quantity == "loss":
            ax.plot(row[measured_key], forecasts["power_law"]["mean"], marker=marker, mfc="none", color="gray",
                    ms=6, ls="none")
            drawn.append(forecasts["power_law"]["mean"])
    _frame(ax, drawn)
    if quantity == "gap":
        ax.axhline(0, color="gray", lw=0.5)
        ax.axvline(0, color="gray", lw=0.5)
    which = f"zoom on {len(rows)} designs" if zoom else "all designs"
    if quantity == "loss":
        ax.set(xlabel="measured loss at the largest rung (nats)", ylabel="forecast from the three smaller rungs",
               title=f"design loss ({which}; open grey: free power law)")
    else:
        ax.set(xlabel="measured gap: baseline - design (nats)", ylabel="forecast gap (gap model)",
               title=f"gap to the baseline, mutations ({which}; +: better)")


def plot(rows: list[dict[str, Any]], path: Path) -> None:
    """Write the four-panel figure of ``forecast_calibration.py``'s design rows to ``path``."""
    fig, axes = plt.subplots(2, 2, figsize=(12, 11))
    for i, quantity in enumerate(("loss", "gap")):
        for j, zoom in enumerate((False, True)):
            _panel(axes[i, j], rows, quantity, zoom)
    handles = [plt.Line2D([], [], color=c, marker="o", ls="none", label=fw) for fw, c in COLOURS.items()]
    handles += [plt.Line2D([], [], color="black", marker="s", ls="none", label="baseline"),
                plt.Line2D([], [], color="gray", lw=2.6, label="68% interval (gap model)"),
                plt.Line2D([], [], color="gray", lw=0.8, label="95% interval (gap model)")]
    axes[0, 0].legend(handles=handles, fontsize=8, loc="lower right")
    fig.tight_layout()
    path.parent.mkdir(parents=True, exist_ok=True)
    fig.savefig(path, dpi=110)
    plt.close(fig)
