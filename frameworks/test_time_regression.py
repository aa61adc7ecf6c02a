"""Test-time-regression mixer (Wang, Shi, Fox 2025, arXiv 2501.12352).

Math. At every position t each head fits a regressor on the key-value pairs seen so far and answers the query,

    m_t = argmin_{m in F} 1/2 sum_{i <= t} gamma_i^(t) || v_i - m(k_i) ||^2,    y_t = m_t(q_t),

so a design is a choice of the sample weights gamma, the function class F and the test-time solver. Softmax
attention (the baseline) is the Nadaraya-Watson estimator, i.e. locally constant regression with the kernel
K(q, k) = exp(q.k / sqrt(d_head)) and uniform weights: m_t(q) = sum_i K(q, k_i) v_i / sum_i K(q, k_i). Linear
attention is the unweighted linear memory W_t = W_{t-1} + v_t k_t^T; gated linear attention W_t = a_t W_{t-1} +
v_t k_t^T (gamma_i^(t) = prod_{r=i+1..t} a_r); DeltaNet takes one online gradient step per sample,
W_t = W_{t-1} + beta_t (v_t - W_{t-1} k_t) k_t^T; recursive least squares solves the regression exactly.

Units, one top-level class each, so that one unit can be replaced at a time:
    KeyValueMap    x -> regression data (k_i, v_i) and test inputs q_t, per head
    SampleWeights  x, k -> log gamma_i^(t), the weight of sample i in the regression solved at time t
    Regressor      k, v, q, log gamma -> m_t(q_t) (function class + solver, causal by construction)
    Readout        predictions -> y (merge heads, output projection)

May evolve:
    - the body of any unit class, including new parameters, and how Mixer composes the units;
    - a unit may be replaced by another class of the same name, constructor and call interface;
    - helper code lives inside a unit class (a method or a sub-module), so each unit stays one top-level class.
Must preserve:
    - `Mixer(d_model, n_heads, *, rngs)` and `Mixer.__call__(x) -> y`, x and y [batch, seq, d_model], same dtype;
    - every unit's constructor `(d_model, n_heads, *, rngs)` and the call interface stated in its docstring;
    - causality: m_t is fitted on samples i <= t only, so y_t depends on x_s only for s <= t (no mask is given);
    - stability: finite outputs and gradients; mask with a finite large negative, never -inf; keep weights and
      decays in log space (log gamma <= 0 for forgetting); L2-normalise q, k in recurrent solvers; normalise
      linear readouts by row sum + eps or max(|.|, 1).
Cannot modify:
    - the FFN, the LayerNorms, the block structure, the residual additions, embeddings, positions, dropout, head;
    - anything outside the EVOLVE-BLOCK markers (the imports and `build_mixer`).
"""

import math

import jax
import jax.numpy as jnp
from flax import nnx

# EVOLVE-BLOCK-START
class KeyValueMap(nnx.Module):
    """x [B, T, D] -> (k, v, q), each [B, H, T, D/H].

    One fused Linear(D, 3D) with bias whose output is laid out q | k | v, each split into H contiguous heads;
    returned in regression order: inputs k, targets v, test inputs q.
    """

    def __init__(self, d_model: int, n_heads: int, *, rngs: nnx.Rngs):
        if d_model % n_heads:
            raise ValueError(
                f"d_model={d_model} is not divisible by n_heads={n_heads}; choose n_heads dividing d_model"
            )
        self.n_heads = n_heads
        self.qkv = nnx.Linear(d_model, 3 * d_model, rngs=rngs)

    def __call__(self, x: jax.Array) -> tuple[jax.Array, jax.Array, jax.Array]:
        b, t, d = x.shape
        qkv = self.qkv(x).reshape(b, t, 3, self.n_heads, d // self.n_heads)
        q, k, v = (qkv[:, :, i].transpose(0, 2, 1, 3) for i in range(3))
        return k, v, q


class SampleWeights(nnx.Module):
    """(x [B, T, D], k [B, H, T, Dk]) -> log_gamma [B or 1, H or 1, T, T], float32.

    Entry (t, i) is log gamma_i^(t). It must be finite everywhere; entries with i > t are ignored by the Regressor.
    Baseline: uniform weights, log gamma = 0.
    """

    def __init__(self, d_model: int, n_heads: int, *, rngs: nnx.Rngs):
        del d_model, n_heads, rngs  # parameter-free

    def __call__(self, x: jax.Array, k: jax.Array) -> jax.Array:
        t = k.shape[2]
        return jnp.zeros((1, 1, t, t), jnp.float32)


class Regressor(nnx.Module):
    """(k [B, H, T, Dk], v [B, H, T, Dv], q [B, H, T, Dk], log_gamma) -> predictions m_t(q_t) [B, H, T, Dv].

    Fits the function class on the samples i <= t with weights gamma_i^(t) and evaluates it at q_t; this unit
    enforces causality. Baseline: Nadaraya-Watson with the exponential kernel, whose weights
    gamma_i K(q_t, k_i) / sum_j gamma_j K(q_t, k_j) are a float32 softmax over log K + log gamma.
    """

    def __init__(self, d_model: int, n_heads: int, *, rngs: nnx.Rngs):
        del d_model, n_heads, rngs  # parameter-free

    def __call__(self, k: jax.Array, v: jax.Array, q: jax.Array, log_gamma: jax.Array) -> jax.Array:
        t = q.shape[2]
        log_kernel = jnp.einsum("bhtf,bhif->bhti", q, k, preferred_element_type=jnp.float32)
        log_weights = log_kernel * (1.0 / math.sqrt(q.shape[-1])) + log_gamma
        causal = jnp.tril(jnp.ones((t, t), dtype=bool))
        # A finite mask keeps exp and its gradient at exactly zero instead of producing NaN from inf - inf.
        log_weights = jnp.where(causal, log_weights, jnp.finfo(jnp.float32).min / 2)
        weights = jax.nn.softmax(log_weights, axis=-1).astype(v.dtype)
        return jnp.einsum("bhti,bhif->bhtf", weights, v)


class Readout(nnx.Module):
    """predictions [B, H, T, Dv] -> y [B, T, D] with H * Dv = D: heads concatenated, then Linear(D, D) with bias."""

    def __init__(self, d_model: int, n_heads: int, *, rngs: nnx.Rngs):
        self.out = nnx.Linear(d_model, d_model, rngs=rngs)

    def __call__(self, predictions: jax.Array) -> jax.Array:
        b, h, t, dv = predictions.shape
        return self.out(predictions.transpose(0, 2, 1, 3).reshape(b, t, h * dv))


class Mixer(nnx.Module):
    """Composes the units; __init__(self, d_model: int, n_heads: int, *, rngs: nnx.Rngs); __call__(self, x) -> y."""

    def __init__(self, d_model: int, n_heads: int, *, rngs: nnx.Rngs):
        self.key_value_map = KeyValueMap(d_model, n_heads, rngs=rngs)
        self.sample_weights = SampleWeights(d_model, n_heads, rngs=rngs)
        self.regressor = Regressor(d_model, n_heads, rngs=rngs)
        self.readout = Readout(d_model, n_heads, rngs=rngs)

    def __call__(self, x: jax.Array) -> jax.Array:
        k, v, q = self.key_value_map(x)
        log_gamma = self.sample_weights(x, k)
        predictions = self.regressor(k, v, q, log_gamma)
        return self.readout(predictions)
# EVOLVE-BLOCK-END


def build_mixer(d_model: int, n_heads: int, *, rngs: nnx.Rngs) -> nnx.Module:
    """Fixed entry point the language model calls once per block."""
    return Mixer(d_model, n_heads, rngs=rngs)
