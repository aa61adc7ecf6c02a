"""Scaling-law fits of final loss against model size N, and forecasts of the loss at a larger N.

Three fits, from the cheapest to the most informative:

- ``fit_log_linear``: the PyTorch prototype's ``loss = intercept + slope * ln N`` (fitness = -slope).
- ``fit_power_law``: the saturating law ``L = E + A * N^-alpha``, fitted with a Huber loss on log-loss residuals
  from a grid of starts (Hoffmann et al. 2022). With fewer than three model sizes it needs a ``prior`` (a law fitted
  on the baseline): the prior's shape is kept and only its overall scale is fitted to the data.
- ``forecast_loss``: the loss at a target N with an interval from a parametric bootstrap.

Honesty about small samples is the point of this module: ``dof = n_points - n_parameters`` is always reported,
goodness of fit and standard errors are ``None`` when ``dof <= 0`` (two points always lie on a line, which says
nothing), and forecasts that rest on too few points carry ``reliable=False`` and a wide (or infinite) interval.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from typing import Sequence

import numpy as np

# Noise on log-loss assumed when neither a measured seed noise nor a residual scale is available; about the
# seed-to-seed spread of the final loss of small language models.
NOISE_FLOOR = 0.005
# Relative spread of the exponent around a prior, used when a design is forecast from the baseline's shape:
# exponents of different architectures differ by tens of percent, so the interval must include that.
PRIOR_ALPHA_REL_SD = 0.25
# Huber threshold on log-loss residuals (Hoffmann et al. 2022): beyond 0.1% a point counts linearly, not
# quadratically, so one bad rung cannot drag the law.
HUBER_DELTA = 1e-3
_ALPHA_RANGE = (1e-3, 4.0)
_E_FRACTIONS = (1e-3, 0.5, 0.9)  # starting E as a fraction of the smallest observed loss


def _as_points(n_params: Sequence[float], losses: Sequence[float]) -> tuple[np.ndarray, np.ndarray]:
    """Validate (N, loss) pairs: same length, at least one, all finite and positive (both are logged)."""
    n = np.asarray(n_params, dtype=float)
    loss = np.asarray(losses, dtype=float)
    if n.ndim != 1 or loss.ndim != 1 or n.size != loss.size or n.size == 0:
        raise ValueError(f"n_params and losses must be non-empty 1-D sequences of equal length; "
                         f"got shapes {n.shape} and {loss.shape}")
    for name, values in (("n_params", n), ("losses", loss)):
        bad = np.flatnonzero(~np.isfinite(values) | (values <= 0))
        if bad.size:
            i = int(bad[0])
            raise ValueError(f"{name}[{i}] = {float(values[i])} is not a finite positive number; drop diverged "
                             "or unfinished rungs before fitting")
    return n, loss


def _distinct(n: np.ndarray) -> int:  # identifiability needs distinct sizes; replicates only add dof
    return int(np.unique(n).size)


@dataclass(frozen=True)
class LogLinearFit:
    """``loss = intercept + slope * ln N`` by least squares; statistics are None when ``dof <= 0``."""

    slope: float
    intercept: float
    n_points: int
    dof: int
    r2: float | None
    slope_stderr: float | None
    intercept_stderr: float | None

    @property
    def fitness(self) -> float:
        """The PyTorch prototype's fitness: a steeper loss decrease with size is better."""
        return -self.slope

    def predict(self, n: float | np.ndarray) -> np.ndarray:
        return self.intercept + self.slope * np.log(np.asarray(n, dtype=float))


def fit_log_linear(n_params: Sequence[float], losses: Sequence[float]) -> LogLinearFit:
    """Fit a line in ln N. One model size cannot determine a slope, so that raises instead of inventing one."""
    n, loss = _as_points(n_params, losses)
    if _distinct(n) < 2:
        raise ValueError(f"a log-linear fit needs losses at two or more distinct model sizes; got {n.size} "
                         f"point(s) at {_distinct(n)} size(s). Train another rung, or forecast with a prior")
    x = np.log(n)
    x_mean, y_mean = x.mean(), loss.mean()
    sxx = float(((x - x_mean) ** 2).sum())
    slope = float(((x - x_mean) * (loss - y_mean)).sum() / sxx)
    intercept = float(y_mean - slope * x_mean)
    dof = n.size - 2
    r2 = slope_se = intercept_se = None
    if dof > 0:
        ss_res = float(((loss - intercept - slope * x) ** 2).sum())
        ss_tot = float(((loss - y_mean) ** 2).sum())
        r2 = 1.0 - ss_res / ss_tot if ss_tot > 0 else None  # equal losses: R^2 is 0/0, not 1
        s2 = ss_res / dof
        slope_se = math.sqrt(s2 / sxx)
        intercept_se = math.sqrt(s2 * (1.0 / n.size + x_mean ** 2 / sxx))
    return LogLinearFit(slope, intercept, int(n.size), dof, r2, slope_se, intercept_se)


@dataclass(frozen=True)
class PowerLawFit:
    """``L = E + A * N^-alpha``. ``method`` is "free" (all three fitted) or "prior_shift" (a prior's shape with
    its scale fitted); ``residual_scale`` is the RMS log-loss residual per degree of freedom, None when dof <= 0."""

    E: float
    A: float
    alpha: float
    n_points: int
    dof: int
    converged: bool
    residual_scale: float | None
    method: str = "free"

    def __post_init__(self) -> None:
        if not (math.isfinite(self.E) and self.E >= 0 and math.isfinite(self.A) and self.A > 0
                and math.isfinite(self.alpha) and self.alpha > 0):
            raise ValueError(f"a power law needs finite E >= 0, A > 0, alpha > 0; got E={self.E}, A={self.A}, "
                             f"alpha={self.alpha}")

    def predict(self, n: float | np.ndarray) -> np.ndarray:
        return self.E + self.A * np.exp(-self.alpha * np.log(np.asarray(n, dtype=float)))


# The free fit works on x = ln(N / N0), N0 the geometric mean of the observed sizes, with parameters
# theta = (ln E, ln A', ln alpha) where A' = A * N0^-alpha: positivity holds by construction and A' is the
# reducible loss at the centre of the data, which decorrelates it from alpha. Arrays of theta have shape [..., 3].
def _log_curve(theta: np.ndarray, x: np.ndarray) -> np.ndarray:
    return np.logaddexp(theta[..., 0:1], theta[..., 1:2] - np.exp(theta[..., 2:3]) * x)


def _jacobian(theta: np.ndarray, x: np.ndarray) -> np.ndarray:
    alpha = np.exp(theta[..., 2:3])
    reducible = theta[..., 1:2] - alpha * x
    total = np.logaddexp(theta[..., 0:1], reducible)
    w_e, w_a = np.exp(theta[..., 0:1] - total), np.exp(reducible - total)
    return np.stack([w_e, w_a, -w_a * alpha * x], axis=-1)


def _huber(r: np.ndarray, delta: float) -> np.ndarray:
    a = np.abs(r)
    return np.where(a <= delta, 0.5 * r * r, delta * (a - 0.5 * delta)).sum(axis=-1)


def _minimise(theta: np.ndarray, x: np.ndarray, y: np.ndarray, delta: float, lo: np.ndarray, hi: np.ndarray,
              max_iter: int = 500) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Minimise the Huber loss of log residuals for a batch of problems (rows of theta [B, 3] and y [B, n]) at
    once: Levenberg-Marquardt on iteratively reweighted least squares, steps clipped to the bounds. Batching
    makes multi-start fits and bootstrap refits one vectorised loop; scipy's least_squares(loss="huber") needed
    hundreds of evaluations per start with delta = 1e-3 and stalled at E -> 0 from some starts."""
    theta, batch = theta.copy(), theta.shape[0]
    damping, converged, done = np.full(batch, 1e-3), np.zeros(batch, bool), np.zeros(batch, bool)
    objective = _huber(_log_curve(theta, x) - y, delta)
    for _ in range(max_iter):
        idx = np.flatnonzero(~done)
        if idx.size == 0:
            break
        t, yy = theta[idx], y[idx]
        r, jac = _log_curve(t, x) - yy, _jacobian(t, x)
        w = np.minimum(1.0, delta / np.maximum(np.abs(r), 1e-300))  # Huber's psi(r) / r
        grad = np.einsum("bni,bn->bi", jac, w * r)
        hess = np.einsum("bni,bn,bnj->bij", jac, w, jac)
        diag = np.diagonal(hess, axis1=1, axis2=2)
        ridge = damping[idx, None] * (diag + 1e-9 * diag.max(axis=1, keepdims=True))
        step = np.linalg.solve(hess + ridge[:, :, None] * np.eye(3), -grad[..., None])[..., 0]
        cand = np.clip(t + step, lo, hi)
        cand_objective = _huber(_log_curve(cand, x) - yy, delta)
        better = cand_objective <= objective[idx]
        theta[idx[better]], objective[idx[better]] = cand[better], cand_objective[better]
        damping[idx] = np.where(better, np.maximum(damping[idx] / 3, 1e-12), damping[idx] * 5)
        converged[idx] = better & (np.abs(cand - t).max(axis=1) < 1e-10)
        # a damping this large means no step direction lowers the loss at float precision: a minimum
        converged[idx] |= damping[idx] > 1e10
        done[idx] = converged[idx]
    return theta, objective, converged


def _bounds(log_losses: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """E between ~0 and the largest loss; alpha in a range wide enough for any language-model law."""
    lo = np.array([log_losses.min() - 25.0, -np.inf, math.log(_ALPHA_RANGE[0])])
    hi = np.array([log_losses.max(), np.inf, math.log(_ALPHA_RANGE[1])])
    return lo, hi


def _free_fit(n: np.ndarray, loss: np.ndarray, delta: float, prior: PowerLawFit | None,
              n_starts: int) -> tuple[PowerLawFit, np.ndarray, float]:
    """Best of a grid of starts (alpha x E-fraction, plus the prior); returns the fit, theta and N0."""
    n0 = math.exp(float(np.log(n).mean()))
    x, y = np.log(n / n0), np.log(loss)
    lo, hi = _bounds(y)
    centre = math.exp(float(y.mean()))
    starts = [[math.log(frac * loss.min()), math.log(centre - frac * loss.min()), math.log(alpha)]
              for alpha in np.geomspace(0.02, 1.5, max(1, n_starts // len(_E_FRACTIONS)))
              for frac in _E_FRACTIONS]
    if prior is not None:  # the baseline's law is usually the best start for a relative of it
        reducible = max(float(prior.predict(n0)) - prior.E, 1e-12)
        starts.append([math.log(max(prior.E, 1e-300)), math.log(reducible), math.log(prior.alpha)])
    theta0 = np.clip(np.array(starts), lo, hi)
    thetas, objective, converged = _minimise(theta0, x, np.broadcast_to(y, (len(starts), y.size)), delta, lo, hi)
    best = int(np.argmin(objective))
    theta = thetas[best]
    alpha, dof, residuals = math.exp(theta[2]), int(n.size) - 3, _log_curve(theta, x) - y
    scale = math.sqrt(float(residuals @ residuals) / dof) if dof > 0 else None
    fit = PowerLawFit(math.exp(theta[0]), math.exp(theta[1] + alpha * math.log(n0)), alpha, int(n.size), dof,
                      bool(converged[best]), scale)
    return fit, theta, n0


def _shift_prior(n: np.ndarray, loss: np.ndarray, prior: PowerLawFit) -> PowerLawFit:
    """Scale the prior curve by one factor to match the data: one parameter, so one rung is enough. The factor
    is the geometric mean of loss / prior, which for one or two points is exactly the Huber location estimate."""
    ratios = np.log(loss) - np.log(prior.predict(n))
    scale = math.exp(float(ratios.mean()))
    dof = n.size - 1
    spread = math.sqrt(float(((ratios - ratios.mean()) ** 2).sum()) / dof) if dof > 0 else None
    return PowerLawFit(scale * prior.E, scale * prior.A, prior.alpha, int(n.size), dof, True, spread,
                       "prior_shift")


def fit_power_law(n_params: Sequence[float], losses: Sequence[float], *, huber_delta: float = HUBER_DELTA,
                  prior: PowerLawFit | None = None, n_starts: int = 18) -> PowerLawFit:
    """Fit ``L = E + A N^-alpha``: freely with three or more distinct sizes (``n_starts`` grid starts, rounded
    down to a multiple of three, plus the prior if given), else by scaling ``prior``."""
    n, loss = _as_points(n_params, losses)
    if not huber_delta > 0:
        raise ValueError(f"huber_delta must be positive (a log-loss residual scale, e.g. 1e-3); got {huber_delta}")
    if _distinct(n) >= 3:
        return _free_fit(n, loss, huber_delta, prior, n_starts)[0]
    if prior is None:
        raise ValueError(f"L = E + A N^-alpha has three parameters and needs three or more distinct model sizes; "
                         f"got {_distinct(n)}. Pass prior= (a PowerLawFit of the baseline) to fit only its scale, "
                         "or use fit_log_linear")
    return _shift_prior(n, loss, prior)


@dataclass(frozen=True)
class Forecast:
    """Loss forecast at ``n_target``: point value ``mean`` (the fit's prediction) and a ``level`` interval.
    ``reliable`` is True only for a free power law with dof >= 1; otherwise the interval rests on a prior, an
    assumed noise level or nothing (then it is infinite)."""

    n_target: float
    mean: float
    low: float
    high: float
    level: float
    method: str  # "power_law", "prior_shift" or "log_linear"
    n_points: int
    reliable: bool

    def as_dict(self) -> dict[str, float | int | str | bool | None]:
        """Plain JSON values; an infinite bound becomes None."""
        bound = lambda v: float(v) if math.isfinite(v) else None  # noqa: E731
        return {"n_target": float(self.n_target), "mean": float(self.mean), "low": bound(self.low),
                "high": bound(self.high), "level": float(self.level), "method": self.method,
                "n_points": int(self.n_points), "reliable": bool(self.reliable)}


def _noise(noise_sd: float | None, fit: PowerLawFit) -> float:
    if noise_sd is not None:
        return noise_sd
    return NOISE_FLOOR if fit.residual_scale is None else max(fit.residual_scale, NOISE_FLOOR)


def forecast_loss(n_params: Sequence[float], losses: Sequence[float], n_target: float, *,
                  noise_sd: float | None = None, prior: PowerLawFit | None = None, n_boot: int = 200,
                  level: float = 0.9, seed: int = 0, prior_alpha_rel_sd: float = PRIOR_ALPHA_REL_SD) -> Forecast:
    """Forecast the loss at ``n_target`` with a parametric bootstrap: losses are redrawn as
    ``fit(N_i) * exp(eps)``, eps ~ Normal(0, sigma) with sigma = ``noise_sd`` (measured seed noise on log-loss)
    or else the fit's residual scale (floored at NOISE_FLOOR), the law is refitted and the prediction's quantiles
    taken. Three or more sizes: free power law. Fewer with a prior: the prior's shape scaled to the data, with the
    exponent also resampled (relative sd ``prior_alpha_rel_sd``), so one-rung forecasts are wide. Two sizes and
    no prior: the seed's line, whose extrapolation nothing bounds, so the interval is infinite. One size and
    no prior: ValueError, as nothing determines a slope."""
    n, loss = _as_points(n_params, losses)
    if not (math.isfinite(n_target) and n_target > 0):
        raise ValueError(f"n_target must be a finite positive model size; got {n_target}")
    if noise_sd is not None and not (math.isfinite(noise_sd) and noise_sd > 0):
        raise ValueError(f"noise_sd must be a positive standard deviation of log-loss, or None; got {noise_sd}")
    if not (0 < level < 1 and n_boot >= 20 and 0 <= prior_alpha_rel_sd < math.inf):
        raise ValueError(f"need 0 < level < 1, n_boot >= 20 (for meaningful quantiles) and a finite "
                         f"prior_alpha_rel_sd >= 0; got {level}, {n_boot}, {prior_alpha_rel_sd}")
    rng = np.random.default_rng(seed)
    quantiles = ((1 - level) / 2, (1 + level) / 2)
    sizes = _distinct(n)
    if sizes >= 3:
        fit, theta, n0 = _free_fit(n, loss, HUBER_DELTA, prior, 18)
        preds = _bootstrap_free(theta, n0, n, n_target, _noise(noise_sd, fit), n_boot, rng)
        low, high = np.quantile(preds, quantiles)
        reliable = fit.converged and fit.dof >= 1
        return Forecast(n_target, float(fit.predict(n_target)), float(low), float(high), level, "power_law",
                        int(n.size), reliable)
    if prior is not None:
        fit = _shift_prior(n, loss, prior)
        preds = _bootstrap_prior(fit, prior, n, n_target, _noise(noise_sd, fit), prior_alpha_rel_sd, n_boot, rng)
        low, high = np.quantile(preds, quantiles)
        return Forecast(n_target, float(fit.predict(n_target)), float(low), float(high), level, "prior_shift",
                        int(n.size), False)
    if sizes == 2:
        line = fit_log_linear(n, loss)
        return Forecast(n_target, float(line.predict(n_target)), -math.inf, math.inf, level, "log_linear",
                        int(n.size), False)
    raise ValueError(f"cannot forecast from a single model size without a law's shape: got {n.size} point(s) at "
                     "one size. Pass prior= (a PowerLawFit of the baseline) or train another rung")


def _bootstrap_free(theta: np.ndarray, n0: float, n: np.ndarray, n_target: float, sigma: float, n_boot: int,
                    rng: np.random.Generator) -> np.ndarray:
    """Refit the free law to every redrawn sample at once, warm-started at the point fit (replicates lie near
    it; in our checks extra grid starts never found a lower loss)."""
    x = np.log(n / n0)
    draws = _log_curve(theta, x) + sigma * rng.standard_normal((n_boot, x.size))
    lo, hi = _bounds(draws)
    lo, hi = np.minimum(lo, theta), np.maximum(hi, theta)  # keep the start feasible
    thetas = _minimise(np.repeat(theta[None, :], n_boot, axis=0), x, draws, HUBER_DELTA, lo, hi)[0]
    return np.exp(_log_curve(thetas, np.array([math.log(n_target / n0)]))[:, 0])


def _bootstrap_prior(fit: PowerLawFit, prior: PowerLawFit, n: np.ndarray, n_target: float, sigma: float,
                     alpha_rel_sd: float, n_boot: int, rng: np.random.Generator) -> np.ndarray:
    """Vectorised: each replicate draws an exponent around the prior's, pivots the prior curve at the data's
    centre N0 (so a changed exponent changes the slope, not the level where we have data), redraws the losses
    and refits the scale."""
    log_n0 = float(np.log(n).mean())
    alphas = prior.alpha * np.exp(alpha_rel_sd * rng.standard_normal(n_boot))[:, None]
    reducible_at_n0 = prior.A * math.exp(-prior.alpha * log_n0)

    def curves(sizes: np.ndarray) -> np.ndarray:
        return prior.E + reducible_at_n0 * np.exp(-alphas * (np.log(sizes) - log_n0)[None, :])

    draws = np.log(fit.predict(n))[None, :] + sigma * rng.standard_normal((n_boot, n.size))
    log_scale = (draws - np.log(curves(n))).mean(axis=1)
    return np.exp(log_scale) * curves(np.array([n_target]))[:, 0]


def fit_summary(n_params: Sequence[float], losses: Sequence[float]) -> dict[str, float | int | bool | None]:
    """JSON-ready summary (plain floats, ints, bools, None): the log-linear fit from two sizes, the power law
    from three. Unavailable statistics are None rather than an error, so a one-rung ladder still reports."""
    n, loss = _as_points(n_params, losses)
    sizes = _distinct(n)
    out: dict[str, float | int | bool | None] = {
        "n_points": int(n.size), "n_sizes": sizes, "slope": None, "intercept": None, "dof": None,
        "r2": None, "slope_stderr": None, "intercept_stderr": None, "fitness": None, "power_law_E": None,
        "power_law_A": None, "power_law_alpha": None, "power_law_dof": None, "power_law_converged": None,
        "power_law_residual_scale": None}
    if sizes >= 2:
        line = fit_log_linear(n, loss)
        out.update(slope=line.slope, intercept=line.intercept, dof=line.dof, r2=line.r2,
                   slope_stderr=line.slope_stderr, intercept_stderr=line.intercept_stderr, fitness=line.fitness)
    if sizes >= 3:
        law = fit_power_law(n, loss)
        out.update(power_law_E=law.E, power_law_A=law.A, power_law_alpha=law.alpha, power_law_dof=law.dof,
                   power_law_converged=law.converged, power_law_residual_scale=law.residual_scale)
    return out
