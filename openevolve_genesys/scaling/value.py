"""A design's value: its forecast loss gap to the baseline at a target size, with an honest interval.

The gap is modelled on the design's own paired measurements (baseline minus design, same rung, same seed) as

    gap(N, depth) = a + b * (ln N - ln N_top) + c * (ln depth - ln depth_top)

with N_top the design's largest verified rung, so ``a`` is the gap there, ``b`` its change per e-fold of N and
``c`` its change per e-fold of depth at the same N. The depth term is there because a ladder that alternates
width steps with depth steps moves a gap differently in each: on the smoke ladder the change of a design's gap
from r2 to r3 (a width step) correlates +0.80 with its change from r0 to r1 (the other width step) and -0.58 with
its change from r1 to r2 (the depth step), over 29 real designs. Without ``depths`` the term is absent. The
priors on ``b`` and ``c`` are learned from the run's other designs (``scaling.prior``) and the pair noise is
measured (``scaling.noise``), so with no slope evidence the forecast stays at the measured gap (persistence) and
moves only as far as the population and the design's own rungs justify. The target's depth is the ladder's own
trend of depth with N carried to the target size, unless ``target_depth`` says otherwise. The target defaults to one e-fold above the
baseline's largest rung: a forecast far beyond a ladder of ~2.6 e-folds loses to persistence.

Confidence is the share of the reference variance the verifications removed: one minus the design's posterior
variance of the gap at the target over the variance of a design seen once at the ladder's smallest rung with
the population's noise. It depends on the design's own noise and misfit, not only on its rung count.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from typing import Any, Sequence

import numpy as np
from scipy.special import ndtr

from openevolve_genesys.scaling.baseline_law import fit_baseline_law
from openevolve_genesys.scaling.ladder import Depths, Ladder, Pairs, Rung, pair, parse_ladder, residual_ss
from openevolve_genesys.scaling.noise import NoiseEstimate, pooled_noise, seed_noise
from openevolve_genesys.scaling.policy import FIXED_STEPS, DataPolicy
from openevolve_genesys.scaling.prior import SlopePrior, slope_priors
from openevolve_genesys.scaling.settings import ValueSettings


@dataclass(frozen=True)
class Valuation:
    utility: float  # forecast gap at n_target (nats; positive: better than the baseline)
    low: float
    high: float
    level: float
    p_better: float  # posterior probability that the gap at n_target is positive
    confidence: float  # in [0, 1]
    n_target: float
    extrapolation: float  # e-folds from the design's largest verified rung to n_target
    measured_gap: float  # mean paired gap at the design's largest rung (persistence)
    noise_sd: float  # the design's pair-noise estimate (nats) and its dof
    noise_dof: float
    slope: float  # posterior mean of b (nats per e-fold of N)
    slope_prior_mean: float
    slope_prior_sd: float
    depth_slope: float  # posterior mean of c (nats per e-fold of depth at the same N); 0 without depths
    depth_prior_mean: float
    depth_prior_sd: float
    depth_efolds: float  # e-folds of depth from the design's largest verified rung to the target (0 without depths)
    n_pairs: int
    rungs: tuple[str, ...]
    baseline_loss: float | None  # the baseline law's forecast loss at n_target, and the design's, with interval
    baseline_loss_sd: float | None
    loss: float | None
    loss_low: float | None
    loss_high: float | None
    forecasts: str

    def as_dict(self) -> dict[str, Any]:
        return {k: (list(v) if isinstance(v, tuple) else v) for k, v in self.__dict__.items()}


def _forecast_words(settings: ValueSettings, n_target: float, extrapolation: float, depth_efolds: float,
                    policy: DataPolicy) -> str:
    # The data policy decides what model the target is: at fixed steps a larger model trained on the same data,
    # at tokens per parameter one trained on proportionally more. The sentence says which.
    what = "the true gap" if settings.interval == "gap" else "one measured design-minus-baseline pair"
    depth = f" and {depth_efolds:.2f} of depth" if depth_efolds else ""
    return (f"loss gap to the baseline at N={n_target:.3g} ({what}), {extrapolation:.2f} e-folds of N{depth} beyond "
            f"the design's largest verified rung, {policy.words()}")


_LEVEL_PRIOR_SD = 1.0  # nats: a proper but uninformative prior on the gap at the top rung
_SIGMA_GRID = np.exp(np.linspace(-2.5, 3.5, 41))  # multiples of the noise prior's scale


# Bend sd per sqrt(e-fold), in multiples of the noise prior's sd: 0 (a straight line) up to gaps that move by
# about a nat over one e-fold (an unstable design, whose loss rises with N).
_BEND_GRID = np.concatenate([[0.0], np.exp(np.linspace(math.log(0.5), math.log(256.0), 10))])
# Before the population says otherwise, a gap is more likely near straight: each doubling of the bend halves its
# prior weight (a straight line holds half of it). One design's evidence of a bend outweighs this by far.
_BEND_HYPERPRIOR = 0.5 ** np.arange(_BEND_GRID.size) / (0.5 ** np.arange(_BEND_GRID.size)).sum()


@dataclass(frozen=True)
class _CoefPrior:
    """Normal prior on (a, b, c): the level, the slope per e-fold of N and the slope per e-fold of depth."""

    mean: np.ndarray
    var: np.ndarray

    @classmethod
    def of(cls, slope: SlopePrior, depth: SlopePrior) -> "_CoefPrior":
        return cls(np.array([0.0, slope.mean, depth.mean]), np.array([_LEVEL_PRIOR_SD**2, slope.sd**2, depth.sd**2]))


@dataclass(frozen=True)
class _Grid:
    """Components (pair-noise sd, bend sd) of the posterior over a design's noise, and their prior log weights."""

    sigmas: np.ndarray
    bends: np.ndarray
    log_prior: np.ndarray


def _grid(noise: NoiseEstimate, bend_prior: np.ndarray) -> _Grid:
    sig, bend = np.meshgrid(noise.sd * _SIGMA_GRID, noise.sd * _BEND_GRID, indexing="ij")
    sigmas, bends = sig.ravel(), bend.ravel()
    # scaled-inverse-chi2 prior on the noise variance (in sd, on the log-spaced grid), the bend's from the population
    log_sigma = -noise.dof * np.log(sigmas) - noise.dof * noise.sd**2 / (2 * sigmas**2)
    log_bend = np.log(np.maximum(np.broadcast_to(bend_prior[None, :], sig.shape).ravel(), 1e-300))
    return _Grid(sigmas, bends, log_sigma + log_bend)


def _covariances(pairs: Pairs, grid: _Grid) -> np.ndarray:
    """[k, n, n]: white pair noise plus a departure from the line that accumulates with distance below the top
    rung (a Brownian path pinned there), so a design whose gap bends is forecast near its last measurement."""
    depth = pairs.top_log_n - pairs.log_n
    bend = np.minimum(depth[:, None], depth[None, :])
    return grid.sigmas[:, None, None] ** 2 * np.eye(depth.size)[None] + grid.bends[:, None, None] ** 2 * bend[None]


def _log_evidence(pairs: Pairs, prior: _CoefPrior, grid: _Grid) -> np.ndarray:
    """Marginal log likelihood of the design's pairs at each grid component (level and slopes integrated out)."""
    design = pairs.covariates()
    shared = design @ np.diag(prior.var) @ design.T
    resid = pairs.gap - design @ prior.mean
    cov = shared[None] + _covariances(pairs, grid)
    logdet = np.linalg.slogdet(cov)[1]
    solved = np.linalg.solve(cov, np.broadcast_to(resid[:, None], (cov.shape[0], resid.size, 1)))[..., 0]
    quad = solved @ resid
    return -0.5 * (logdet + quad)


def _weights(log_post: np.ndarray) -> np.ndarray:
    w = np.exp(log_post - log_post.max())
    return w / w.sum()


def bend_prior(population: list[Pairs], prior: _CoefPrior, noise: NoiseEstimate) -> np.ndarray:
    """Prior over the bend grid, learned from the population (one EM step of a discrete mixture started at the
    hyperprior, which keeps one design's weight): most designs' gaps are near straight, and a design bends only
    as far as its own rungs show."""
    grid = _grid(noise, _BEND_HYPERPRIOR)
    total = _BEND_HYPERPRIOR.copy()
    for pairs in population:
        if pairs.sizes < 3:  # two sizes fit a line exactly: no evidence on the bend
            continue
        w = _weights(_log_evidence(pairs, prior, grid) + grid.log_prior)
        total += w.reshape(_SIGMA_GRID.size, _BEND_GRID.size).sum(axis=0)
    return total / total.sum()


def _posterior(pairs: Pairs, at: np.ndarray, grid: _Grid, prior: _CoefPrior) -> tuple[np.ndarray, np.ndarray,
                                                                                      np.ndarray]:
    """At each component: posterior mean of (a, b, c) [k, 3] and the mean and variance of ``(a, b, c) @ at`` [k]
    (``at``: 1 and the target's e-folds of N and of depth from the top rung)."""
    design = pairs.covariates()
    cov_y = _covariances(pairs, grid)
    whitened = np.linalg.solve(cov_y, np.broadcast_to(design, (cov_y.shape[0], *design.shape)))  # [k, n, 3]
    gram = np.einsum("ni,knj->kij", design, whitened)
    moment = np.einsum("kni,n->ki", whitened, pairs.gap)
    precision = gram + np.diag(1.0 / prior.var)[None]
    cov = np.linalg.inv(precision)
    rhs = moment + (prior.mean / prior.var)[None]
    coef = np.einsum("kij,kj->ki", cov, rhs)
    return coef, coef @ at, np.einsum("i,kij,j->k", at, cov, at)


@dataclass(frozen=True)
class _Mixture:
    """The gap at the target: a mixture of normals over the noise grid."""

    means: np.ndarray
    sds: np.ndarray
    weights: np.ndarray

    @property
    def mean(self) -> float:
        return float(self.weights @ self.means)

    @property
    def var(self) -> float:
        return float(self.weights @ (self.sds**2 + self.means**2)) - self.mean**2

    def cdf(self, value: np.ndarray) -> np.ndarray:
        return ndtr((np.asarray(value)[..., None] - self.means) / self.sds) @ self.weights

    def quantile(self, q: float) -> float:
        lo, hi = self.mean - 50 * math.sqrt(self.var), self.mean + 50 * math.sqrt(self.var)
        for _ in range(60):  # 100 sd / 2^60: far below any reported digit
            mid = 0.5 * (lo + hi)
            lo, hi = (mid, hi) if self.cdf(mid) < q else (lo, mid)
        return 0.5 * (lo + hi)


def _reference_variance(smallest: Rung, log_depth: float | None, log_target: float, target_log_depth: float,
                        grid: _Grid, prior: _CoefPrior) -> float:
    """Variance of the true target gap of a design seen once at ``log_n``, under the same model (noise, slope and
    bend priors at their prior weights). Confidence is 1 - a design's sd / this sd: the share by which its evidence
    narrowed the interval. A reference without the bend would sit below a one-rung design's own variance and make
    every confidence 0; a variance ratio would crowd every verified design near 1 under the bend's wide prior."""
    log_n = math.log(smallest.n_params)
    one = Pairs(log_n=np.array([log_n]), gap=np.zeros(1), rungs=("reference",),
                log_depth=None if log_depth is None else np.array([log_depth]))
    x = log_target - log_n
    at = np.array([1.0, x, 0.0 if log_depth is None else target_log_depth - log_depth])
    _, _, variances = _posterior(one, at, grid, prior)  # Gaussian per component: the variance ignores the gap value
    return float(_weights(grid.log_prior) @ (variances + grid.bends**2 * max(x, 0.0)))


def _target_log_depth(base: list[Rung], depths: Depths | None, log_target: float,
                      target_depth: float | None) -> float | None:
    """ln of the target's depth: ``target_depth``, else the baseline ladder's least-squares trend of ln depth on
    ln N carried from its largest rung to the target (0 e-folds for a ladder of one depth)."""
    if depths is None:
        if target_depth is not None:
            raise ValueError("target_depth needs depths (the layers of every rung) to measure the ladder's depth by")
        return None
    if target_depth is not None:
        if isinstance(target_depth, bool) or not (isinstance(target_depth, (int, float)) and
                                                  math.isfinite(target_depth) and target_depth > 0):
            raise ValueError(f"target_depth must be a positive number of layers (or None); got {target_depth!r}")
        return math.log(target_depth)
    x = np.log([r.n_params for r in base])
    y = np.log([float(depths[r.name]) for r in base])
    trend = float(np.polyfit(x, y, 1)[0]) if np.unique(x).size >= 2 else 0.0
    return float(y[-1] + trend * (log_target - x[-1]))


def value_design(design: Ladder, baseline: Ladder, *, level: float = 0.8, population: Sequence[Ladder] | None = None,
                 target_n: float | None = None, policy: DataPolicy = FIXED_STEPS, depths: Depths | None = None,
                 target_depth: float | None = None, **settings: Any) -> Valuation:
    """Value ``design`` against ``baseline`` (each: rung -> (n_params, [loss of seed 0, seed 1, ...])).

    ``population``: the run's other designs in the same form; their slopes set the slope prior and their residuals
    the noise. ``target_n``: the size forecast (default ``target_efolds`` e-folds above the baseline's largest
    rung). ``policy``: how much data the ladder's rungs trained on, which the forecast's ``forecasts`` sentence
    names (the numbers do not depend on it). ``depths``: the layers of the model at every rung (rung -> n_layers),
    so that the gap is regressed on depth beside N; ``target_depth``: the target's layers (default: the ladder's
    trend of depth with N, carried to ``target_n``). ``settings``: ``ValueSettings`` fields. Pure: reads no file, uses no
    accelerator."""
    s = ValueSettings.from_kwargs(settings)
    if not isinstance(policy, DataPolicy):
        raise TypeError(f"policy must be a scaling.DataPolicy (e.g. LadderProfile.data_policy()), got {policy!r}")
    if not (0 < level < 1):
        raise ValueError(f"level must be in (0, 1), e.g. 0.8 for an 80% interval; got {level}")
    base = parse_ladder(baseline, "baseline")
    pairs = pair(parse_ladder(design, "design"), base, depths=depths)
    others = [pair(parse_ladder(p, f"population design {i}"), base, f"population design {i}", depths)
              for i, p in enumerate(population or [])]
    top_base = math.log(base[-1].n_params)
    if target_n is None:
        n_target = math.exp(top_base + s.target_efolds)
    elif isinstance(target_n, bool) or not (isinstance(target_n, (int, float)) and math.isfinite(target_n)
                                            and target_n > 0):
        raise ValueError(f"target_n must be a finite positive model size (or None for the default); got {target_n!r}")
    else:
        n_target = float(target_n)
    pooled, noise_prior = pooled_noise(others, s.pair_noise_sd, s.pair_noise_dof, seed_noise(base),
                                       s.pooled_dof_cap)
    slope, depth = slope_priors(others, pooled.sd, s.slope_prior_sd, s.depth_prior_sd, s.slope_prior_weight,
                                s.slope_sd_floor)
    prior = _CoefPrior.of(slope, depth)
    x_target = math.log(n_target) - pairs.top_log_n
    target_log_depth = _target_log_depth(base, depths, math.log(n_target), target_depth)
    depth_efolds = 0.0 if target_log_depth is None else target_log_depth - pairs.top_log_depth
    grid = _grid(noise_prior, bend_prior(others, prior, noise_prior))
    weights = _weights(_log_evidence(pairs, prior, grid) + grid.log_prior)
    coef, means, variances = _posterior(pairs, np.array([1.0, x_target, depth_efolds]), grid, prior)
    sigmas = grid.sigmas
    # The path bends on beyond the top rung as it did below it: part of the true gap's uncertainty.
    variances = variances + grid.bends**2 * max(x_target, 0.0) + (sigmas**2 if s.interval == "measurement" else 0.0)
    gap = _Mixture(means, np.sqrt(variances), weights)
    mean, var = gap.mean, gap.var
    noise_sd = float(weights @ sigmas)
    low, high = gap.quantile((1 - level) / 2), gap.quantile((1 + level) / 2)
    reference = _reference_variance(base[0], None if depths is None else math.log(float(depths[base[0].name])),
                                    math.log(n_target), target_log_depth or 0.0, grid, prior)
    true_var = var - (float(weights @ sigmas**2) if s.interval == "measurement" else 0.0)
    confidence = min(1.0, max(0.0, 1.0 - math.sqrt(max(true_var, 0.0) / reference)))
    top = pairs.log_n == pairs.top_log_n
    law_fields: dict[str, float | None] = dict(baseline_loss=None, baseline_loss_sd=None, loss=None, loss_low=None,
                                               loss_high=None)
    if len(base) >= 2:
        law = fit_baseline_law(base, n_target, s)
        widened = _Mixture(gap.means, np.sqrt(gap.sds**2 + law.sd**2), weights)  # law and gap independent
        law_fields = dict(baseline_loss=law.loss, baseline_loss_sd=law.sd, loss=law.loss - mean,
                          loss_low=law.loss - widened.quantile((1 + level) / 2),
                          loss_high=law.loss - widened.quantile((1 - level) / 2))
    return Valuation(
        utility=mean, low=low, high=high, level=level, p_better=float(1.0 - gap.cdf(0.0)), confidence=confidence,
        n_target=n_target, extrapolation=x_target, measured_gap=float(pairs.gap[top].mean()), noise_sd=noise_sd,
        noise_dof=noise_prior.dof + residual_ss(pairs)[1], slope=float(weights @ coef[:, 1]),
        slope_prior_mean=slope.mean, slope_prior_sd=slope.sd, depth_slope=float(weights @ coef[:, 2]),
        depth_prior_mean=depth.mean, depth_prior_sd=depth.sd, depth_efolds=depth_efolds,
        n_pairs=int(pairs.gap.size), rungs=pairs.rungs,
        forecasts=_forecast_words(s, n_target, x_target, depth_efolds, policy),
        **law_fields)
