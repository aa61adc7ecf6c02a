"""The catalogue's math: parallel forms equal their recurrences and solvers, decays stay in log space and <= 0."""

import jax
import jax.numpy as jnp
import numpy as np
import pytest
from flax import nnx

from openevolve_genesys.evaluation.program import framework_path, load_program, replace_class
from openevolve_genesys.mutations.catalogue import catalogue

B, H, T, F = 2, 2, 7, 4


def unit_module(framework: str, unit: str, name: str, d_model: int = H * F, n_heads: int = H) -> nnx.Module:
    text = next(a.text for a in catalogue(framework)[unit] if a.name == name)
    module = load_program(replace_class(framework_path(framework).read_text(), unit, text)).module
    return getattr(module, unit)(d_model, n_heads, rngs=nnx.Rngs(0))


def unit_rows(x: np.ndarray) -> np.ndarray:
    return x / np.sqrt(np.sum(x * x, axis=-1, keepdims=True) + 1e-6)


def inputs(seed: int = 0):
    keys = jax.random.split(jax.random.key(seed), 4)
    k, v, q = (jax.random.normal(key, (B, H, T, F)) for key in keys[:3])
    log_a = jax.nn.log_sigmoid(jax.random.normal(keys[3], (B, H, T)) + 1.0)
    cumulative = jnp.cumsum(log_a, axis=-1)
    log_gamma = jnp.where(jnp.tril(jnp.ones((T, T), bool)), cumulative[..., :, None] - cumulative[..., None, :], 0.0)
    return k, v, q, log_a, log_gamma


@pytest.mark.parametrize("name", ["delta_rule", "delta_rule_unit"])
def test_parallel_delta_rule_equals_the_gated_delta_net_recurrence(name):
    regressor = unit_module("test_time_regression", "Regressor", name)
    if name == "delta_rule":
        regressor.beta_weight[...] = jax.random.normal(jax.random.key(9), (H, F))
    k, v, q, log_a, log_gamma = inputs()
    got = np.asarray(regressor(k, v, q, log_gamma))
    kn, qn, vn, a = unit_rows(np.asarray(k)), unit_rows(np.asarray(q)), np.asarray(v), np.exp(np.asarray(log_a))
    if name == "delta_rule":
        beta = 1 / (1 + np.exp(-np.einsum("bhtf,hf->bht", np.asarray(k), np.asarray(regressor.beta_weight[...]))))
    else:
        beta = np.ones((B, H, T))
    for b in range(B):
        for h in range(H):
            state = np.zeros((F, F))  # W: keys -> values
            for t in range(T):
                decayed = a[b, h, t] * state
                state = decayed + beta[b, h, t] * np.outer(vn[b, h, t] - decayed @ kn[b, h, t], kn[b, h, t])
                np.testing.assert_allclose(got[b, h, t], state @ qn[b, h, t], rtol=1e-4, atol=1e-5)


def test_ridge_regressor_solves_the_weighted_least_squares_at_every_step():
    regressor = unit_module("test_time_regression", "Regressor", "ridge")
    k, v, q, _, log_gamma = inputs(1)
    got = np.asarray(regressor(k, v, q, log_gamma))
    kn, qn, vn, gamma = unit_rows(np.asarray(k)), unit_rows(np.asarray(q)), np.asarray(v), np.exp(np.asarray(log_gamma))
    for b in range(B):
        for h in range(H):
            for t in range(T):
                keys, weights = kn[b, h, : t + 1], gamma[b, h, t, : t + 1]
                memory = (vn[b, h, : t + 1].T * weights) @ keys @ np.linalg.inv((keys.T * weights) @ keys + np.eye(F))
                np.testing.assert_allclose(got[b, h, t], memory @ qn[b, h, t], rtol=1e-4, atol=1e-5)


@pytest.mark.parametrize("framework, unit", [("coefficient_dynamics", "Dynamics"),
                                             ("test_time_regression", "SampleWeights")])
def test_decays_are_finite_log_weights_at_most_zero(framework, unit):
    x = jax.random.normal(jax.random.key(2), (B, T, H * F))
    q, k = (jax.random.normal(key, (B, H, T, F)) for key in jax.random.split(jax.random.key(3)))
    for alternative in catalogue(framework)[unit]:
        module = unit_module(framework, unit, alternative.name)
        out = module(x, q, k)[2] if unit == "Dynamics" else module(x, k)
        assert out.dtype == jnp.float32 and out.ndim == 4 and out.shape[2:] == (T, T), alternative.name
        assert bool(jnp.all(jnp.isfinite(out))) and float(jnp.max(out)) <= 0.0, alternative.name


def test_rope_makes_scores_depend_on_the_offset_only():
    dynamics = unit_module("coefficient_dynamics", "Dynamics", "rope")
    q, k = (jnp.broadcast_to(jax.random.normal(key, (1, 1, 1, F)), (1, 1, T, F))
            for key in jax.random.split(jax.random.key(4)))
    rq, rk, _ = dynamics(None, q, k)
    scores = np.asarray(jnp.einsum("bhtf,bhsf->ts", rq, rk))
    for offset in range(T):
        diagonal = np.diagonal(scores, -offset)
        np.testing.assert_allclose(diagonal, diagonal[0], rtol=1e-5, atol=1e-5)
    assert not np.allclose(np.diagonal(scores, -1)[0], scores[0, 0])
