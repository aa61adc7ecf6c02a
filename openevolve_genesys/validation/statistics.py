"""Paired statistics of a design against the baseline at one rung, over training seeds.

Each seed trains the design and the baseline with the same initialisation seed and the same data order,
so the loss difference ``design - baseline`` of one seed removes most of what the two share (the batch
order, the luck of the held-out slice); the seeds are the replicates. Negative differences mean the
design reached a lower loss.

Small K is the normal case here (training is expensive), so the numbers say what they can support: one
seed gives a difference but no interval and no test; the t interval needs two; the rank tests cannot
reach p < 0.05 below six seeds at all (their smallest two-sided p is 2 / 2^K), which the note says.
"""

from __future__ import annotations

import math
import warnings
from dataclasses import asdict, dataclass, field
from typing import Any, Mapping

import numpy as np
from scipy import stats


@dataclass(frozen=True)
class PairedComparison:
    """Design minus baseline loss over the seeds both trained successfully (``seeds``)."""

    seeds: tuple[int, ...]
    differences: tuple[float, ...]  # one per seed, same order
    level: float  # confidence level of the interval, e.g. 0.95
    mean: float | None = None
    sd: float | None = None  # sample standard deviation (ddof 1)
    ci_low: float | None = None
    ci_high: float | None = None
    t_p_value: float | None = None  # paired t-test, two-sided
    wilcoxon_p_value: float | None = None  # signed-rank test, two-sided, exact for small K
    lower_on: int = 0  # seeds where the design's loss is below the baseline's
    verdict: str = "no data"  # wins | loses | inconclusive | no interval | no data
    notes: list[str] = field(default_factory=list)

    @property
    def n(self) -> int:
        return len(self.differences)

    def to_dict(self) -> dict[str, Any]:
        data = asdict(self)
        data.update(seeds=list(self.seeds), differences=list(self.differences), n=self.n)  # as JSON has them
        return data


def compare_paired(design: Mapping[int, float], baseline: Mapping[int, float], *,
                   level: float = 0.95) -> PairedComparison:
    """Compare per-seed losses of a design and the baseline at one rung; seeds missing on either side
    (a failed training) drop out of the pairing and are named in the notes."""
    if not 0.0 < level < 1.0:
        raise ValueError(f"the confidence level must lie strictly between 0 and 1, got {level}")
    seeds = tuple(sorted(s for s in design if s in baseline and _finite(design[s]) and _finite(baseline[s])))
    unpaired = sorted(set(design) ^ set(baseline) | {s for s in set(design) & set(baseline) if s not in seeds})
    notes = [f"seeds {unpaired} have no pair (a training failed or is missing) and are left out"] if unpaired else []
    diffs = np.array([design[s] - baseline[s] for s in seeds], dtype=float)
    n = len(diffs)
    if n == 0:
        return PairedComparison(seeds, (), level, verdict="no data", notes=notes + ["no seed trained on both sides"])
    mean = float(diffs.mean())
    lower_on = int((diffs < 0).sum())
    if n == 1:
        notes.append("one seed: a single difference, no interval and no test; validate with --seeds 3 or more")
        return PairedComparison(seeds, tuple(diffs.tolist()), level, mean=mean, lower_on=lower_on,
                                verdict="no interval", notes=notes)
    sd = float(diffs.std(ddof=1))
    if sd <= 1e-12 * max(1.0, abs(mean)):
        # Every seed gave the same difference (up to float rounding): a t interval would have (almost) zero
        # width and a vanishing p-value, which is not evidence.
        notes.append("every seed gave the same difference: no spread to build an interval from; check that the "
                     "training seed changes the run (initialisation and data order)")
        return PairedComparison(seeds, tuple(diffs.tolist()), level, mean=mean, sd=sd, lower_on=lower_on,
                                verdict="no interval", notes=notes)
    half = float(stats.t.ppf(0.5 + level / 2.0, n - 1)) * sd / math.sqrt(n)
    low, high = mean - half, mean + half
    t = mean / (sd / math.sqrt(n))
    t_p = float(2.0 * stats.t.sf(abs(t), n - 1))
    verdict = "wins" if high < 0 else "loses" if low > 0 else "inconclusive"
    if n == 2:
        notes.append("two seeds: the t interval has one degree of freedom and is very wide; use --seeds 3 or more")
    min_rank_p = 2.0 ** (1 - n)
    if min_rank_p >= 1.0 - level:
        notes.append(f"with {n} seeds no rank test can reach p < {1.0 - level:g} (the smallest two-sided "
                     f"Wilcoxon or sign p is {min_rank_p:.3g}); the t-test assumes roughly normal differences")
    return PairedComparison(seeds, tuple(diffs.tolist()), level, mean=mean, sd=sd, ci_low=low, ci_high=high,
                            t_p_value=t_p, wilcoxon_p_value=_wilcoxon(diffs), lower_on=lower_on,
                            verdict=verdict, notes=notes)


def _wilcoxon(diffs: np.ndarray) -> float | None:
    if not np.any(diffs != 0):
        return None
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")  # scipy warns about ties and tiny samples; the note says as much
        try:
            return float(stats.wilcoxon(diffs).pvalue)
        except ValueError:
            return None


def _finite(value: float | None) -> bool:
    return value is not None and math.isfinite(value)
