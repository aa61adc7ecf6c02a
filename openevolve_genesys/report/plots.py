"""The report's PNG plots, drawn with matplotlib's object API on the Agg canvas (no display, no pyplot state).

Utilities and confidences are the latest checkpoint's: a design's value changes as it is verified, and the
history does not record the valuation at each moment, so progress plots show each design's current value
at the point the run found it, and say so.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

from matplotlib.backends.backend_agg import FigureCanvasAgg
from matplotlib.figure import Figure

from openevolve_genesys.report.load import RunData
from openevolve_genesys.selection.quadrants import Quadrant, quadrant, utility_threshold
from openevolve_genesys.selection.records import DesignRecord

_QUADRANT_COLOURS = {Quadrant.DESIGN_EXPLOIT: "tab:green", Quadrant.VERIFY_EXPLOIT: "tab:orange",
                     Quadrant.DESIGN_EXPLORE: "tab:blue", Quadrant.VERIFY_EXPLORE: "tab:gray"}
_MARKERS = "osD^vPX<>"
_DPI = 120


def label(record: DesignRecord, baseline_id: str) -> str:
    """Short name of a design: the baseline, or its id prefix and the operator that made it."""
    if record.id == baseline_id:
        return "baseline"
    return f"{record.id[:8]} {record.operator.get('operator', '?')}"


def signed(value: float | None) -> str:
    """A utility for display: four decimals, and no "-0.0000" for the baseline's rounding residue."""
    return "n/a" if value is None else f"{round(value, 4) + 0.0:+.4f}"


def _save(fig: Figure, path: Path) -> Path:
    FigureCanvasAgg(fig)
    fig.savefig(path, dpi=_DPI, bbox_inches="tight")
    return path


def scaling_curves(run: RunData, out_dir: Path, top: int = 5) -> Path:
    """Loss vs N of the top designs by utility and the baseline, and each design's loss gap to the baseline."""
    baseline = run.records[run.baseline_id]
    shown = run.ranked(top)
    if run.best_id and run.best_id != run.baseline_id and run.records[run.best_id] not in shown:
        shown.append(run.records[run.best_id])
    fig = Figure(figsize=(12, 5))
    left, right = fig.subplots(1, 2)
    base_points = sorted((r.n_params, r.loss) for r in baseline.rungs.values())
    left.plot(*zip(*base_points), "k-o", lw=2.5, label="baseline", zorder=3)
    right.axhline(0.0, color="k", lw=2.5, label="baseline")
    base_loss = {r.rung: r.loss for r in baseline.rungs.values()}
    for i, record in enumerate(shown):
        rungs = sorted(record.rungs.values(), key=lambda r: r.n_params)
        name = f"{label(record, run.baseline_id)} (u {signed(record.utility)})"
        # Designs often lie on top of each other: distinct markers keep each one findable.
        style = {"marker": _MARKERS[i % len(_MARKERS)], "alpha": 0.85, "label": name}
        line, = left.plot([r.n_params for r in rungs], [r.loss for r in rungs], "-", **style)
        gaps = [(r.n_params, base_loss[r.rung] - r.loss) for r in rungs if r.rung in base_loss]
        if gaps:
            right.plot(*zip(*gaps), "-", color=line.get_color(), **style)
    title = f"Scaling curves: top {len(shown)} designs by utility" if shown else \
        "Scaling curve of the baseline (no valued design yet)"
    left.set(xscale="log", xlabel="N (non-embedding parameters)", ylabel="final eval loss (nats)", title=title)
    right.set(xscale="log", xlabel="N (non-embedding parameters)", ylabel="baseline loss - design loss (nats)",
              title="Loss gap to the baseline (above 0 = better)")
    if not shown:
        right.set_xlim(*left.get_xlim())
        right.text(0.5, 0.5, "no valued design yet", ha="center", va="center", transform=right.transAxes)
    for ax in (left, right):
        ax.grid(True, which="both", alpha=0.3)
    fig.tight_layout()
    handles, labels = right.get_legend_handles_labels()
    fig.legend(handles, labels, loc="upper center", ncol=min(3, len(labels)), fontsize=9, bbox_to_anchor=(0.5, 0.0))
    return _save(fig, out_dir / "scaling_curves.png")


@dataclass
class Progress:
    """Best utility so far, after each charged design attempt."""

    attempts: list[int]
    seconds: list[float]  # cumulative seconds of every job (design and verify, any class) up to that attempt
    best_any: list[float]
    best_confident: list[float | None]


def utility_progress(run: RunData) -> Progress:
    threshold = run.thresholds.confidence_threshold
    baseline = run.records[run.baseline_id]
    pool = [baseline] if baseline.utility is not None else []
    progress = Progress([0], [0.0], [], [])

    def best(confident: bool) -> float | None:
        values = [r.utility for r in pool if not confident or r.confidence >= threshold]
        return max(values) if values else None

    progress.best_any.append(best(False))
    progress.best_confident.append(best(True))
    seconds = 0.0
    for event in run.events:
        seconds += float(event.get("seconds") or 0.0)
        if event["type"] != "design" or event.get("attempt") is None:
            continue
        record = run.records.get(event["id"])
        if record is not None and record.valid and record.utility is not None:
            pool.append(record)
        progress.attempts.append(event["attempt"])
        progress.seconds.append(seconds)
        progress.best_any.append(best(False))
        progress.best_confident.append(best(True))
    return progress


def best_utility(run: RunData, out_dir: Path) -> Path:
    """Best utility over charged attempts and over compute seconds, all designs and confident ones."""
    p = utility_progress(run)
    threshold = run.thresholds.confidence_threshold
    fig = Figure(figsize=(12, 4.5))
    axes = fig.subplots(1, 2, sharey=True)
    for ax, xs, xlabel in ((axes[0], p.attempts, "charged design attempts"),
                           (axes[1], p.seconds, "cumulative job seconds (design + verify, all classes)")):
        ax.step(xs, [v if v is not None else float("nan") for v in p.best_any], where="post", marker="o",
                ms=9, lw=4, alpha=0.45, label="best utility, any confidence")
        ax.step(xs, [v if v is not None else float("nan") for v in p.best_confident], where="post", marker="s",
                ms=5, lw=1.5, label=f"best utility, confidence >= {threshold:g} (how the run crowns its best)")
        ax.axhline(0.0, color="k", lw=0.8, ls=":")
        ax.set(xlabel=xlabel)
        ax.grid(True, alpha=0.3)
    axes[0].set_ylabel("utility (nats of forecast loss gap)")
    axes[0].legend(fontsize=9, loc="upper left")
    fig.suptitle(f"Best utility so far (each design at its value in {run.checkpoint.name})")
    fig.tight_layout()
    return _save(fig, out_dir / "best_utility.png")


def quadrant_map(run: RunData, out_dir: Path) -> Path:
    """Utility x confidence of every valued design, with the selector's quadrant lines."""
    t = run.thresholds
    records = [r for r in run.records.values() if r.valid and r.utility is not None]
    cut = utility_threshold(run.records.values(), t.utility_quantile)
    fig = Figure(figsize=(10, 6.5))
    ax = fig.subplots()
    for q, colour in _QUADRANT_COLOURS.items():
        members = [r for r in records if quadrant(r, cut, t.confidence_threshold) == q and r.id != run.baseline_id]
        if members:
            ax.scatter([r.utility for r in members], [r.confidence for r in members], s=60, color=colour,
                       label=f"{q.value.replace('_', ' ')} ({len(members)})", zorder=3)
    baseline = run.records[run.baseline_id]
    if baseline.utility is not None:
        ax.scatter([baseline.utility], [baseline.confidence], marker="s", s=90, color="k", label="baseline", zorder=4)
    best = run.records.get(run.best_id or "")
    if best is not None and best.utility is not None:
        ax.scatter([best.utility], [best.confidence], marker="*", s=350, facecolor="none", edgecolor="red", lw=1.5,
                   label="best design", zorder=5)
    ax.axvline(cut, color="k", ls="--", lw=1)
    ax.axhline(t.confidence_threshold, color="k", ls="--", lw=1)
    ax.set(xlabel="utility (forecast loss gap to the baseline, nats; higher is better)", ylabel="confidence",
           ylim=(-0.05, 1.05), title="Utility x confidence quadrants")
    _label_points(ax, [(r.utility, r.confidence, "baseline" if r.id == run.baseline_id else r.id[:8])
                       for r in records])
    quantile = "median" if t.utility_quantile == 0.5 else f"{t.utility_quantile:g}-quantile"
    fig.text(0.01, -0.02, f"utility cut {signed(cut)} ({quantile} of the valid designs' utilities, baseline included, "
             f"as the selector computes it); confidence cut {t.confidence_threshold:g}\nthresholds from: {t.source}",
             fontsize=8.5, va="top")
    ax.grid(True, alpha=0.3)
    ax.legend(fontsize=9, loc="upper left", bbox_to_anchor=(1.01, 1.0))
    fig.tight_layout()
    return _save(fig, out_dir / "quadrants.png")


def _label_points(ax, points: list[tuple[float, float, str]]) -> None:
    """Name each point; labels of points that crowd together are stacked upwards instead of overprinted."""
    ax.autoscale_view()
    placed: list[tuple[float, float]] = []
    for x, y, text in sorted(points, key=lambda p: (p[1], p[0])):
        px, py = ax.transData.transform((x, y))
        crowd = sum(abs(px - qx) < 70 and abs(py - qy) < 40 for qx, qy in placed)
        placed.append((px, py))
        offset = (6, 6 + 11 * crowd)
        ax.annotate(text, (x, y), textcoords="offset points", xytext=offset, fontsize=8,
                    arrowprops={"arrowstyle": "-", "color": "0.6", "lw": 0.6} if crowd else None)


def lineage_tree(run: RunData, out_dir: Path) -> Path:
    """The best design's seed chain back to the baseline, one box per design."""
    chain = run.lineage(run.best_id) if run.best_id else [run.records[run.baseline_id]]
    height = 1.1 * len(chain) + 0.8
    fig = Figure(figsize=(7, height))
    ax = fig.subplots()
    ax.set_axis_off()
    ax.set(xlim=(0, 1), ylim=(-0.5, len(chain) - 0.5))
    for depth, record in enumerate(chain):
        y = len(chain) - 1 - depth  # baseline on top, the best design at the bottom
        name = "baseline" if record.id == run.baseline_id else f"{record.id[:8]}: {record.operator.get('operator', '?')}"
        text = f"{name}\nutility {signed(record.utility)}, confidence {record.confidence:.2f}, " \
               f"{len(record.rungs)} rung{'s' if len(record.rungs) != 1 else ''}"
        best = record.id == run.best_id
        ax.text(0.5, y, text, ha="center", va="center", fontsize=10, fontweight="bold" if best else "normal",
                bbox={"boxstyle": "round,pad=0.5", "facecolor": "#ffe9a8" if best else "#e8eef7",
                      "edgecolor": "red" if best else "0.4"})
        if depth:
            ax.annotate("", xy=(0.5, y + 0.28), xytext=(0.5, y + 0.72),
                        arrowprops={"arrowstyle": "->", "color": "0.3", "lw": 1.5})
    ax.set_title("Lineage of the best design (seed -> child)", fontsize=11)
    return _save(fig, out_dir / "lineage.png")
