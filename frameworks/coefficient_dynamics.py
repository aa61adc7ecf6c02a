"""Coefficient-dynamics mixer (Sieber et al. 2025, arXiv 2510.09389).

Math. Every head writes its output as a causal weighted sum of values,

    y_t = sum_{s <= t} alpha_{t,s} v_s,
    alpha_{t,s} = phi(q_t . h_t^(s) + g_{t,s}) / eta_t,
    h_s^(s) = b_s k_s,    h_t^(s) = A_t h_{t-1}^(s)  for t > s,

so a design is a choice of the feature map phi, the state dynamics A_t that carry key s to time t, the
additive logit dynamics g, the key scale b and the normaliser eta_t. Softmax attention (the baseline) is
phi = exp, A_t = I, g = 0, b = 1/sqrt(d_head), eta_t = sum_s phi(...). Linear attention is phi = identity on
feature-mapped q and k; RetNet and Mamba-2 use A_t = a_t I, GLA a diagonal A_t, RoPE a rotation A_t, ALiBi and
the Forgetting Transformer an additive g_{t,s} <= 0.

Units, one top-level class each, so that one unit can be replaced at a time:
    Projections   x -> q, k, v per head
    FeatureMap    q, k -> q, k mapped before the dot product (phi-side transform)
    Dynamics      x, q, k -> q, k carried by A_t (e.g. rotated), and the log-space logit dynamics g
    Coefficients  q, k, g -> alpha (key scale b, phi, causal mask, normaliser eta)
    Readout       alpha, v -> y (sum over s, merge heads, output projection)

May evolve:
    - the body of any unit class, including new parameters, and how Mixer composes the units;
    - a unit may be replaced by another class of the same name, constructor and call interface;
    - helper code lives inside a unit class (a method or a sub-module), so each unit stays one top-level class.
Must preserve:
    - `Mixer(d_model, n_heads, *, rngs)` and `Mixer.__call__(x) -> y`, x and y [batch, seq, d_model], same dtype;
    - every unit's constructor `(d_model, n_heads, *, rngs)` and the call interface stated in its docstring;
    - causality: y_t depends on x_s only for s <= t (the mixer receives no mask);
    - stability: finite outputs and gradients; mask with a finite large negative, never -inf; keep decays in
      log space and <= 0; L2-normalise q, k in recurrent updates; normalise linear readouts by
      row sum + eps or max(|.|, 1).
Cannot modify:
    - the FFN, the LayerNorms, the block structure, the residual additions, embeddings, positions, dropout, head;
    - anything outside the EVOLVE-BLOCK markers (the imports and `build_mixer`).
"""

import math

import jax
import jax.numpy as jnp
from flax import nnx

# EVOLVE-BLOCK-START
class Projections(nnx.Module):
    """x [B, T, D] -> (q, k, v), each [B, H, T, D/H].

    One fused Linear(D, 3D) with bias whose output is laid out q | k | v, each split into H contiguous heads.
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
        return q, k, v


class FeatureMap(nnx.Module):
    """(q, k) [B, H, T, F] -> (q, k) [B, H, T, F'], the phi-side map of queries and keys.

    Baseline: identity, because softmax's phi = exp is applied to the whole logit in Coefficients.
    """

    def __init__(self, d_model: int, n_heads: int, *, rngs: nnx.Rngs):
        del d_model, n_heads, rngs  # parameter-free

    def __call__(self, q: jax.Array, k: jax.Array) -> tuple[jax.Array, jax.Array]:
        return q, k


class Dynamics(nnx.Module):
    """(x [B, T, D], q, k [B, H, T, F]) -> (q, k, g).

    q and k come back carried by the state dynamics A (a rotation A_t acts as q_t . h_t^(s) = (R_t q_t).(R_s k_s)).
    g [B or 1, H or 1, T, T], float32, is the log-space dynamics term for entry (t, s): Coefficients adds it to the
    logit for phi = exp and multiplies by exp(g) for linear phi. It must be finite everywhere and <= 0 for decays;
    entries above the diagonal (s > t) are ignored. Baseline: A_t = I and g = 0.
    """

    def __init__(self, d_model: int, n_heads: int, *, rngs: nnx.Rngs):
        del d_model, n_heads, rngs  # parameter-free

    def __call__(self, x: jax.Array, q: jax.Array, k: jax.Array) -> tuple[jax.Array, jax.Array, jax.Array]:
        t = q.shape[2]
        return q, k, jnp.zeros((1, 1, t, t), jnp.float32)


class Coefficients(nnx.Module):
    """(q, k [B, H, T, F], g) -> alpha [B, H, T, T] in q's dtype, exactly zero above the diagonal.

    Baseline softmax: alpha_{t,s} = exp(b q_t.k_s + g_{t,s}) / sum_{s' <= t} exp(...), b = 1/sqrt(F). Logits and
    softmax run in float32 (as the reference attention does) so bfloat16 training stays stable.
    """

    def __init__(self, d_model: int, n_heads: int, *, rngs: nnx.Rngs):
        del d_model, n_heads, rngs  # parameter-free

    def __call__(self, q: jax.Array, k: jax.Array, g: jax.Array) -> jax.Array:
        t = q.shape[2]
        logits = jnp.einsum("bhtf,bhsf->bhts", q, k, preferred_element_type=jnp.float32)
        logits = logits * (1.0 / math.sqrt(q.shape[-1])) + g
        causal = jnp.tril(jnp.ones((t, t), dtype=bool))
        # A finite mask keeps exp and its gradient at exactly zero instead of producing NaN from inf - inf.
        logits = jnp.where(causal, logits, jnp.finfo(jnp.float32).min / 2)
        return jax.nn.softmax(logits, axis=-1).astype(q.dtype)


class Readout(nnx.Module):
    """(alpha [B, H, T, T], v [B, H, T, Dv]) -> y [B, T, D] with H * Dv = D.

    y_t = sum_s alpha_{t,s} v_s per head, heads concatenated, then Linear(D, D) with bias.
    """

    def __init__(self, d_model: int, n_heads: int, *, rngs: nnx.Rngs):
        self.out = nnx.Linear(d_model, d_model, rngs=rngs)

    def __call__(self, alpha: jax.Array, v: jax.Array) -> jax.Array:
        b, h, t, dv = v.shape
        y = jnp.einsum("bhts,bhsf->bthf", alpha, v)
        return self.out(y.reshape(b, t, h * dv))


class Mixer(nnx.Module):
    """Composes the units; __init__(self, d_model: int, n_heads: int, *, rngs: nnx.Rngs); __call__(self, x) -> y."""

    def __init__(self, d_model: int, n_heads: int, *, rngs: nnx.Rngs):
        self.projections = Projections(d_model, n_heads, rngs=rngs)
        self.feature_map = FeatureMap(d_model, n_heads, rngs=rngs)
        self.dynamics = Dynamics(d_model, n_heads, rngs=rngs)
        self.coefficients = Coefficients(d_model, n_heads, rngs=rngs)
        self.readout = Readout(d_model, n_heads, rngs=rngs)

    def __call__(self, x: jax.Array) -> jax.Array:
        q, k, v = self.projections(x)
        q, k = self.feature_map(q, k)
        q, k, g = self.dynamics(x, q, k)
        alpha = self.coefficients(q, k, g)
        return self.readout(alpha, v)
# EVOLVE-BLOCK-END


def build_mixer(d_model: int, n_heads: int, *, rngs: nnx.Rngs) -> nnx.Module:
    """Fixed entry point the language model calls once per block."""
    return Mixer(d_model, n_heads, rngs=rngs)
