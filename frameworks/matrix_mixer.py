"""Matrix-mixer framework (Hwang et al. 2024, Hydra, arXiv 2407.09941).

Math. Every head mixes the sequence with one T x T matrix,

    Y = M f(X),    M = N(S(X)) lower-triangular (causal),

where f is a per-token input map, S builds the raw entries of a structured matrix class and N normalises its
rows and applies the causal mask. Classes: dense, low-rank (S = Q K^T, linear attention when N is a plain row
sum), Toeplitz (S_{t,s} = c_{t-s}, a causal convolution), semiseparable (S_{t,s} = C_t . B_s prod_{r=s+1..t} a_r,
SSMs / Mamba), Cauchy (1 / (q_t - k_s)), Vandermonde (q_t^s). The baseline is softmax attention: low-rank
S = Q K^T / sqrt(d_head) with the row softmax as N. Hydra found sequence-aligned (data-dependent) classes to
score better than fixed ones.

Units, one top-level class each, so that one unit can be replaced at a time:
    InputMap       x -> u = f(X) per head, and the q, k that parameterise the matrix
    MatrixClass    x, q, k -> raw entries S of the structured matrix
    Normalisation  S -> M: causal mask and row normalisation
    Readout        M, u -> y (Y = M u per head, merge heads, output projection)

May evolve:
    - the body of any unit class, including new parameters, and how Mixer composes the units;
    - a unit may be replaced by another class of the same name, constructor and call interface;
    - helper code lives inside a unit class (a method or a sub-module), so each unit stays one top-level class.
Must preserve:
    - `Mixer(d_model, n_heads, *, rngs)` and `Mixer.__call__(x) -> y`, x and y [batch, seq, d_model], same dtype;
    - every unit's constructor `(d_model, n_heads, *, rngs)` and the call interface stated in its docstring;
    - causality: M is lower-triangular, so y_t depends on x_s only for s <= t (the mixer receives no mask);
    - stability: finite outputs and gradients; mask with a finite large negative, never -inf; keep decays in
      log space and <= 0; normalise non-softmax rows by row sum + eps or max(|.|, 1).
Cannot modify:
    - the FFN, the LayerNorms, the block structure, the residual additions, embeddings, positions, dropout, head;
    - anything outside the EVOLVE-BLOCK markers (the imports and `build_mixer`).
"""

import math

import jax
import jax.numpy as jnp
from flax import nnx

# EVOLVE-BLOCK-START
class InputMap(nnx.Module):
    """x [B, T, D] -> (q, k, u), each [B, H, T, D/H]: u = f(X) is what M mixes, q and k parameterise M.

    One fused Linear(D, 3D) with bias whose output is laid out q | k | u, each split into H contiguous heads.
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
        qku = self.qkv(x).reshape(b, t, 3, self.n_heads, d // self.n_heads)
        q, k, u = (qku[:, :, i].transpose(0, 2, 1, 3) for i in range(3))
        return q, k, u


class MatrixClass(nnx.Module):
    """(x [B, T, D], q, k [B, H, T, F]) -> S [B or 1, H, T, T], float32: the raw entries S_{t,s} of the matrix.

    S must be finite everywhere; entries above the diagonal (s > t) are discarded by Normalisation.
    Baseline: low-rank S = Q K^T / sqrt(F), computed in float32.
    """

    def __init__(self, d_model: int, n_heads: int, *, rngs: nnx.Rngs):
        del d_model, n_heads, rngs  # parameter-free

    def __call__(self, x: jax.Array, q: jax.Array, k: jax.Array) -> jax.Array:
        scores = jnp.einsum("bhtf,bhsf->bhts", q, k, preferred_element_type=jnp.float32)
        return scores * (1.0 / math.sqrt(q.shape[-1]))


class Normalisation(nnx.Module):
    """S [B or 1, H, T, T] -> M of the same shape, float32, lower-triangular with exact zeros above the diagonal.

    Baseline: row softmax over s <= t.
    """

    def __init__(self, d_model: int, n_heads: int, *, rngs: nnx.Rngs):
        del d_model, n_heads, rngs  # parameter-free

    def __call__(self, scores: jax.Array) -> jax.Array:
        t = scores.shape[-1]
        causal = jnp.tril(jnp.ones((t, t), dtype=bool))
        # A finite mask keeps exp and its gradient at exactly zero instead of producing NaN from inf - inf.
        scores = jnp.where(causal, scores.astype(jnp.float32), jnp.finfo(jnp.float32).min / 2)
        return jax.nn.softmax(scores, axis=-1)


class Readout(nnx.Module):
    """(M [B or 1, H, T, T], u [B, H, T, Du]) -> y [B, T, D] with H * Du = D.

    Y = M u per head with M cast to u's dtype, heads concatenated, then Linear(D, D) with bias.
    """

    def __init__(self, d_model: int, n_heads: int, *, rngs: nnx.Rngs):
        self.out = nnx.Linear(d_model, d_model, rngs=rngs)

    def __call__(self, matrix: jax.Array, u: jax.Array) -> jax.Array:
        b, h, t, du = u.shape
        y = jnp.matmul(matrix.astype(u.dtype), u)  # matmul broadcasts a batch-shared M [1, H, T, T]
        return self.out(y.transpose(0, 2, 1, 3).reshape(b, t, h * du))


class Mixer(nnx.Module):
    """Composes the units; __init__(self, d_model: int, n_heads: int, *, rngs: nnx.Rngs); __call__(self, x) -> y."""

    def __init__(self, d_model: int, n_heads: int, *, rngs: nnx.Rngs):
        self.input_map = InputMap(d_model, n_heads, rngs=rngs)
        self.matrix_class = MatrixClass(d_model, n_heads, rngs=rngs)
        self.normalisation = Normalisation(d_model, n_heads, rngs=rngs)
        self.readout = Readout(d_model, n_heads, rngs=rngs)

    def __call__(self, x: jax.Array) -> jax.Array:
        q, k, u = self.input_map(x)
        matrix = self.normalisation(self.matrix_class(x, q, k))
        return self.readout(matrix, u)
# EVOLVE-BLOCK-END


def build_mixer(d_model: int, n_heads: int, *, rngs: nnx.Rngs) -> nnx.Module:
    """Fixed entry point the language model calls once per block."""
    return Mixer(d_model, n_heads, rngs=rngs)
