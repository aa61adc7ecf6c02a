"""The baseline's law ``L = E + A N^-alpha`` with its uncertainty, for absolute-loss forecasts.

Four rungs leave one residual degree of freedom and three leave none, so the law is never fitted freely and
taken as exact: E and alpha get log-normal priors (``law_e_fraction`` of the largest-rung loss and ``law_alpha``,
both stated in the settings), the noise of ln L is the baseline's seed spread updated from a weak prior, and the
law is the posterior mode with a Laplace covariance. The forecast's sd is that covariance carried to the target.
"""

from __future__ import annotations

import math
from functools import lru_cache
from dataclasses import dataclass

import numpy as np
from scipy.optimize import least_squares

from openevolve_genesys.scaling.ladder import Rung
from openevolve_genesys.scaling.settings import ValueSettings


@dataclass(frozen=True)
class LawForecast:
    E: float
    A: float
    alpha: float
    loss: float  # the baseline's forecast loss at the target (nats)
    sd: float  # its posterior sd (nats)
    noise_sd: float  # sd of ln loss of one run used in the fit


def _curve(theta: np.ndarray, x: np.ndarray) -> np.ndarray:
    """ln L at x = ln(N / N_top); theta = (ln E, ln R, ln alpha), R the reducible loss at N_top."""
    return np.logaddexp(theta[0], theta[1] - math.exp(theta[2]) * x)


def fit_baseline_law(baseline: list[Rung], n_target: float, settings: ValueSettings) -> LawForecast:
    return _fit(tuple(baseline), n_target, settings)


@lru_cache(maxsize=256)  # one baseline values every design of a run: fit it once
def _fit(baseline: tuple[Rung, ...], n_target: float, settings: ValueSettings) -> LawForecast:
    log_top = math.log(baseline[-1].n_params)
    x = np.array([math.log(r.n_params) - log_top for r in baseline for _ in r.losses])
    y = np.log([v for r in baseline for v in r.losses])
    ss = sum(float(((np.log(r.losses) - np.log(r.losses).mean()) ** 2).sum()) for r in baseline)
    dof = sum(len(r.losses) - 1 for r in baseline)
    prior_dof = 2.0
    sigma = math.sqrt((prior_dof * settings.run_noise_sd**2 + ss) / (prior_dof + dof))
    top = float(np.exp(y[x == 0].mean()))
    e0 = math.log(settings.law_e_fraction * top)
    r0 = math.log((1 - settings.law_e_fraction) * top)
    a0 = math.log(settings.law_alpha)
    wide = 3.0  # R (the level at the top rung) is set by the data; its prior only keeps it finite

    def residuals(theta: np.ndarray) -> np.ndarray:
        prior = [(theta[0] - e0) / settings.law_e_log_sd, (theta[1] - r0) / wide,
                 (theta[2] - a0) / settings.law_alpha_log_sd]
        return np.concatenate([(_curve(theta, x) - y) / sigma, prior])

    fit = least_squares(residuals, np.array([e0, r0, a0]), method="lm")
    theta = fit.x
    jac = fit.jac
    cov = np.linalg.pinv(jac.T @ jac)
    xt = math.log(n_target) - log_top
    eps = 1e-6
    grad = np.array([(_curve(theta + eps * np.eye(3)[i], np.array([xt]))[0]
                      - _curve(theta - eps * np.eye(3)[i], np.array([xt]))[0]) / (2 * eps) for i in range(3)])
    log_loss = float(_curve(theta, np.array([xt]))[0])
    loss = math.exp(log_loss)
    form = settings.law_extrapolation_sd * max(xt, 0.0)  # the law's own error grows with the distance
    sd = loss * math.sqrt(max(float(grad @ cov @ grad), 0.0) + form**2)
    alpha = math.exp(theta[2])
    return LawForecast(math.exp(theta[0]), math.exp(theta[1]) * math.exp(alpha * log_top), alpha, loss, sd, sigma)
