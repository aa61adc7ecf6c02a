"""Pure code of the forecast-calibration benchmark: the hold-out split, the four predictors and the metrics.

Every predictor sees only the rungs below the largest one and states a loss forecast at the largest rung's N,
with intervals where the method states any:

- ``gap``: the project's valuation (``scaling.value_design``): the design's paired gaps to the baseline on the
  held-in rungs, its slope prior and noise learned from the other designs of the same run, the baseline law
  (with priors on E and alpha) fitted on the baseline's held-in rungs only. The gap interval is that of one
  measured pair at the held-out N; the loss interval adds the law's own uncertainty.
- ``power_law``: a free ``E + A N^-alpha`` per design (``scaling.fit.forecast_loss``, parametric bootstrap).
- ``log_linear``: the PyTorch prototype's ``a + b ln N`` per design, with the ordinary least-squares prediction
  interval (Student t at the fit's degrees of freedom).
- ``third_rung``: the loss at the largest held-in rung, a ranking predictor only (it states no level).

Nothing here trains; the benchmark script feeds measured ladders in.
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field
from statistics import NormalDist
from typing import Any, Sequence

import numpy as np
from scipy import stats

from openevolve_genesys.scaling.fit import PowerLawFit, fit_log_linear, fit_power_law, forecast_loss
from openevolve_genesys.scaling.value import value_design

ONE_SD = 2 * NormalDist().cdf(1.0) - 1  # 0.6827: forecast +- 1 sd
LEVELS = (ONE_SD, 0.8, 0.95)  # 0.95 is +- 1.96 sd; 0.8 is the level the selector states
METHODS = ("gap", "gap_n_only", "power_law", "log_linear", "third_rung")  # gap_n_only: value_design without depths


@dataclass(frozen=True)
class Ladder:
    """One design's measured rungs, sorted by N (smallest first)."""

    n: tuple[float, ...]
    loss: tuple[float, ...]

    @classmethod
    def of(cls, n: Sequence[float], loss: Sequence[float]) -> "Ladder":
        if len(n) != len(loss) or not n:
            raise ValueError(f"a ladder needs one loss per size; got {len(n)} sizes and {len(loss)} losses")
        order = np.argsort(np.asarray(n, dtype=float), kind="stable")
        return cls(tuple(float(n[i]) for i in order), tuple(float(loss[i]) for i in order))


def holdout_split(ladder: Ladder) -> tuple[Ladder, float, float]:
    """The held-in rungs (all but the largest N), the held-out N and the held-out measured loss."""
    if len(ladder.n) < 2:
        raise ValueError(f"a hold-out split needs two or more rungs, got {len(ladder.n)}: train more rungs")
    return Ladder(ladder.n[:-1], ladder.loss[:-1]), ladder.n[-1], ladder.loss[-1]


@dataclass(frozen=True)
class Prediction:
    """A point forecast with its stated intervals (level -> (low, high); empty: the method states none) and,
    for Normal forecasts in ln loss, the stated sd of ln(loss)."""

    mean: float
    intervals: dict[float, tuple[float, float]] = field(default_factory=dict)
    log_sd: float | None = None
    anchor: float | None = None  # set for a gap: the loss it is measured from, so loss = anchor - value

    def as_loss(self, value: float) -> float:
        """``value`` (a forecast or an outcome of this quantity) as a loss, the scale ``log_sd`` is stated on."""
        return value if self.anchor is None else self.anchor - value


def baseline_law(baseline: Ladder) -> PowerLawFit:
    """The baseline's free power law on its held-in rungs: the family prior every gap forecast rests on."""
    held_in, _, _ = holdout_split(baseline)
    return fit_power_law(held_in.n, held_in.loss)


def gap_predictions(design: Ladder, baseline: Ladder, levels: Sequence[float] = LEVELS,
                    population: Sequence[Ladder] = (), depths: Sequence[float] | None = None,
                    **settings: Any) -> tuple[Prediction, Prediction]:
    """The project's valuation (``scaling.value_design``) of the design's held-out loss and of its gap (baseline
    - design, nats) there, from the held-in rungs of the design, the baseline and ``population`` (other designs
    of the same run, which set the slope prior and the pair noise).

    Rungs are paired by position. The held-out outcome is one measured pair, so the interval is the
    measurement's (``interval="measurement"``: the gap's uncertainty plus one pair's noise); the loss interval
    adds the baseline law's own uncertainty. ``depths``: the layers of each rung, by position (the held-out
    rung's last), so that the gap is regressed on depth beside N. ``log_sd`` is the half-width of the +-1 sd loss interval in ln loss."""
    held_in, n_target, _ = holdout_split(design)
    base_in, _, _ = holdout_split(baseline)
    if len(held_in.n) != len(base_in.n):
        raise ValueError(f"design and baseline must share rungs; got {len(design.n)} and {len(baseline.n)}")
    if not levels:
        raise ValueError("levels must name at least one interval level, e.g. LEVELS")
    others = [_as_rungs(holdout_split(p)[0]) for p in population]
    shapes: dict[str, Any] = {}
    if depths is not None:
        shapes = dict(depths={f"r{i}": float(v) for i, v in enumerate(depths[:len(held_in.n)])},
                      target_depth=float(depths[len(held_in.n)]))
    loss_intervals, gap_intervals = {}, {}
    for level in (*levels, ONE_SD):
        v = value_design(_as_rungs(held_in), _as_rungs(base_in), level=level, target_n=n_target,
                         population=others, **shapes, **{"interval": "measurement", **settings})
        loss_intervals[level] = (v.loss_low, v.loss_high)
        gap_intervals[level] = (v.low, v.high)
    one_sd = loss_intervals[ONE_SD]
    log_sd = math.log(one_sd[1] / one_sd[0]) / 2
    return (Prediction(v.loss, {k: loss_intervals[k] for k in levels}, log_sd),
            Prediction(v.utility, {k: gap_intervals[k] for k in levels}, log_sd, anchor=v.baseline_loss))


def _as_rungs(ladder: Ladder) -> dict[str, tuple[float, list[float]]]:
    """A ladder as ``value_design`` reads it: rung name -> (N, [loss]), rungs named by position."""
    return {f"r{i}": (n, [loss]) for i, (n, loss) in enumerate(zip(ladder.n, ladder.loss))}


def measured_gap(design: Ladder, baseline: Ladder, law: PowerLawFit) -> float:
    """Baseline minus design at the largest rung, the baseline carried to the design's N along ``law`` (the
    rungs' N differ by up to 10%; the gap model forecasts at the design's N)."""
    n_design, n_base = design.n[-1], baseline.n[-1]
    carried = baseline.loss[-1] * float(law.predict(n_design)) / float(law.predict(n_base))
    return carried - design.loss[-1]


def power_law_prediction(design: Ladder, levels: Sequence[float] = LEVELS, seed: int = 0) -> Prediction:
    held_in, n_target, _ = holdout_split(design)
    intervals, mean = {}, math.nan
    for level in levels:
        forecast = forecast_loss(held_in.n, held_in.loss, n_target, level=level, seed=seed)
        intervals[level], mean = (forecast.low, forecast.high), forecast.mean
    return Prediction(mean, intervals)


def log_linear_prediction(design: Ladder, levels: Sequence[float] = LEVELS) -> Prediction:
    """Line in ln N with the OLS prediction interval; with one degree of freedom the t quantiles are wide
    (12.7 at 95%), which is the honest width of a line through three points."""
    held_in, n_target, _ = holdout_split(design)
    line = fit_log_linear(held_in.n, held_in.loss)
    mean = float(line.predict(n_target))
    if line.dof <= 0:
        return Prediction(mean)
    x = np.log(np.asarray(held_in.n))
    residuals = np.asarray(held_in.loss) - line.predict(np.asarray(held_in.n))
    s = math.sqrt(float(residuals @ residuals) / line.dof)
    sxx = float(((x - x.mean()) ** 2).sum())
    se = s * math.sqrt(1 + 1 / x.size + (math.log(n_target) - x.mean()) ** 2 / sxx)
    intervals = {level: (mean - t * se, mean + t * se)
                 for level in levels for t in [float(stats.t.ppf(0.5 + level / 2, line.dof))]}
    return Prediction(mean, intervals)


def third_rung_prediction(design: Ladder) -> Prediction:
    held_in, _, _ = holdout_split(design)
    return Prediction(held_in.loss[-1])


def as_gap(prediction: Prediction, anchor: float) -> Prediction:
    """A loss forecast as a gap forecast against ``anchor`` (the baseline law's loss at the same N, taken as
    exact, as the gap model takes it): gap = anchor - loss, so the interval flips."""
    intervals = {level: (anchor - high, anchor - low) for level, (low, high) in prediction.intervals.items()}
    return Prediction(anchor - prediction.mean, intervals, prediction.log_sd, anchor=anchor)


def third_rung_gap(design: Ladder, baseline: Ladder, law: PowerLawFit) -> Prediction:
    """The measured gap at the largest held-in rung, as a forecast of the gap one rung up (persistence)."""
    return Prediction(measured_gap(holdout_split(design)[0], holdout_split(baseline)[0], law))


def paired_residual_sd(designs: Sequence[Ladder], baseline: Ladder, law: PowerLawFit) -> float | None:
    """Pooled sd of the paired ln(design / baseline) gaps around a line in ln N through *all* rungs of each
    design: a diagnostic of the noise the gap model assumes (sqrt(2) * noise_sd), not a forecast input."""
    squares, dof = 0.0, 0
    for design in designs:
        if len(design.n) != len(baseline.n):
            raise ValueError(f"design and baseline must share rungs; got {len(design.n)} and {len(baseline.n)}")
        carried = np.asarray(baseline.loss) * law.predict(np.asarray(design.n)) / law.predict(np.asarray(baseline.n))
        x, y = np.log(np.asarray(design.n)), np.log(np.asarray(design.loss)) - np.log(carried)
        if x.size > 2:
            residuals = y - np.polyval(np.polyfit(x, y, 1), x)
            squares, dof = squares + float(residuals @ residuals), dof + x.size - 2
    return math.sqrt(squares / dof) if dof else None


# -- metrics ---------------------------------------------------------------------------------------------------
def spearman(forecast: Sequence[float], measured: Sequence[float]) -> tuple[float | None, float | None]:
    """Spearman's rho (scipy) and its two-sided permutation p-value; (None, None) when undefined: fewer than
    three pairs or a constant side."""
    a, b = np.asarray(forecast, dtype=float), np.asarray(measured, dtype=float)
    if a.shape != b.shape:
        raise ValueError(f"forecast and measured must pair up; got {a.size} and {b.size} values")
    if a.size < 3 or np.ptp(a) == 0 or np.ptp(b) == 0:
        return None, None
    rho = float(stats.spearmanr(a, b).statistic)
    # spearmanr's p-value is a t approximation (1e-24 for five pairs in order, where the exact value is 1/60):
    # a permutation test instead, exact while n! <= n_resamples (n <= 8), else seeded Monte Carlo.
    ranks_b = stats.rankdata(b) - (b.size + 1) / 2

    def statistic(x: np.ndarray, axis: int) -> np.ndarray:
        ranks = stats.rankdata(np.moveaxis(x, axis, -1), axis=-1) - (x.shape[axis] + 1) / 2
        return (ranks @ ranks_b) / np.sqrt((ranks ** 2).sum(-1) * (ranks_b @ ranks_b))

    test = stats.permutation_test((a,), statistic, permutation_type="pairings", vectorized=True,
                                  n_resamples=50_000, rng=np.random.default_rng(0))
    return rho, float(test.pvalue)


def coverage(measured: Sequence[float], intervals: Sequence[tuple[float, float]]) -> float | None:
    """Share of measured values inside their stated [low, high]; None when there is nothing to score."""
    if len(measured) != len(intervals):
        raise ValueError(f"need one interval per measured value; got {len(intervals)} and {len(measured)}")
    if not measured:
        return None
    inside = [low <= m <= high for m, (low, high) in zip(measured, intervals)]
    return float(np.mean(inside))


def abs_z_quantile(forecast: Sequence[float], measured: Sequence[float], log_sd: Sequence[float],
                   q: float = ONE_SD) -> float | None:
    """Quantile ``q`` of |ln measured - ln forecast| / sd. With a calibrated sd it is 1 at q = 0.6827; the value
    is the factor the stated sd would have to be multiplied by to cover 68% of these outcomes."""
    if not forecast:
        return None
    z = (np.log(np.asarray(measured)) - np.log(np.asarray(forecast))) / np.asarray(log_sd)
    return float(np.quantile(np.abs(z), q))


def summarise(predictions: Sequence[Prediction], measured: Sequence[float], *, ranking_only: bool = False,
              levels: Sequence[float] = LEVELS) -> dict[str, float | int | None]:
    """Rank correlation, errors and coverage of one method over one group of designs. ``ranking_only`` drops
    the error metrics (a predictor of rank, not of level); coverage counts the designs with stated intervals."""
    if len(predictions) != len(measured):
        raise ValueError(f"need one prediction per measured value; got {len(predictions)} and {len(measured)}")
    forecast = [p.mean for p in predictions]
    rho, p_value = spearman(forecast, measured)
    errors = np.asarray(forecast) - np.asarray(measured)
    out: dict[str, float | int | None] = {"n": len(measured), "spearman": rho, "spearman_p": p_value,
                                          "mae": None, "rmse": None, "bias": None, "abs_z_q68": None}
    if not ranking_only and len(measured):
        out.update(mae=float(np.abs(errors).mean()), rmse=float(np.sqrt((errors**2).mean())),
                   bias=float(errors.mean()))
    scored = [(p, m) for p, m in zip(predictions, measured) if p.intervals]
    out["n_intervals"] = len(scored)
    for level in levels:  # over the predictions that state an interval at this level
        at = [(p.intervals[level], m) for p, m in scored if level in p.intervals]
        out[f"coverage_{level:.2f}"] = coverage([m for _, m in at], [i for i, _ in at])
    # z on the scale the sd is stated on: ln of the loss (a gap is turned back into the design's loss)
    normal = [(p.as_loss(p.mean), p.as_loss(m), p.log_sd) for p, m in scored
              if p.log_sd is not None and p.as_loss(p.mean) > 0 and p.as_loss(m) > 0]
    if normal and not ranking_only:
        out["abs_z_q68"] = abs_z_quantile(*map(list, zip(*normal)))
    return out
