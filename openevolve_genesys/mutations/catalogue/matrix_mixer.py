"""Catalogue of the matrix-mixer framework (Hwang et al. 2024, Hydra): Y = N(S(X)) f(X), lower-triangular.

Units and their alternatives: InputMap (shared input maps f), MatrixClass (low-rank with variants,
Toeplitz from relative-position tables or an exponential basis, semiseparable with fixed or
data-dependent decays, Cauchy, Vandermonde with data or positional nodes), Normalisation (softmax,
temperature, L1 rows, max(|.|, 1), 1/n, sigmoid, squared ReLU, softplus), Readout (shared). S is
float32 and finite everywhere; only N applies the causal mask.
"""

from __future__ import annotations

from openevolve_genesys.mutations.catalogue.base import Alternative, baseline, fill
from openevolve_genesys.mutations.catalogue.shared import ProjectionNames, ReadoutShape, projections, readouts

FRAMEWORK = "matrix_mixer"

_NO_PARAMS = "        del d_model, n_heads, rngs  # parameter-free"
_DISTANCE = ("        t = q.shape[2]\n"
             "        distance = jnp.maximum(jnp.arange(t)[:, None] - jnp.arange(t)[None, :], 0)\n")
_SCORES = ('        scores = jnp.einsum("bhtf,bhsf->bhts", q, k, preferred_element_type=jnp.float32)\n'
           '        scores = scores * (1.0 / math.sqrt(q.shape[-1]))\n')
_RETNET_LOG_GAMMA = "jnp.log1p(-(2.0 ** (-5.0 - jnp.arange(q.shape[1], dtype=jnp.float32))))"

_MATRIX = '''class MatrixClass(nnx.Module):
    """(x [B, T, D], q, k [B, H, T, F]) -> S [B or 1, H, T, T], float32: the raw entries S_{t,s} of the matrix.

    @DOC@ S is finite everywhere; entries above the diagonal are discarded by Normalisation.
    """

    def __init__(self, d_model: int, n_heads: int, *, rngs: nnx.Rngs):
@INIT@

    def __call__(self, x: jax.Array, q: jax.Array, k: jax.Array) -> jax.Array:
@BODY@
@METHODS@'''

_BUCKETS = '''
    @staticmethod
    def _buckets(distance: jax.Array, n_buckets: int = 32, max_distance: int = 128) -> jax.Array:
        """T5 relative-position buckets: exact below n_buckets / 2, log-spaced beyond, so one table fits any T."""
        exact = n_buckets // 2
        ratio = jnp.maximum(distance, exact).astype(jnp.float32) / exact
        far = exact + (jnp.log(ratio) / math.log(max_distance / exact) * (n_buckets - exact)).astype(jnp.int32)
        return jnp.where(distance < exact, distance, jnp.minimum(far, n_buckets - 1))
'''

_UNIT = '''
    @staticmethod
    def _unit(x: jax.Array) -> jax.Array:
        x32 = x.astype(jnp.float32)
        return x32 * jax.lax.rsqrt(jnp.sum(jnp.square(x32), axis=-1, keepdims=True) + 1e-6)
'''

_SEGMENT_SUMS = '''
    @staticmethod
    def _segment_sums(log_decay: jax.Array) -> jax.Array:
        """log_decay [..., T] (<= 0) -> [..., T, T], entry (t, s) = sum of log_decay over (s, t], zero for s > t."""
        t = log_decay.shape[-1]
        cumulative = jnp.cumsum(log_decay, axis=-1)
        segments = cumulative[..., :, None] - cumulative[..., None, :]
        # Above the diagonal the difference is positive and exp would overflow; Normalisation drops it anyway.
        return jnp.where(jnp.tril(jnp.ones((t, t), dtype=bool)), segments, 0.0)
'''


def _matrix(doc: str, body: str, init: str = _NO_PARAMS, methods: str = "") -> str:
    return fill(_MATRIX, doc=doc, body=body, init=init, methods=methods)


def _matrix_alternatives() -> list[Alternative]:
    return [
        baseline(FRAMEWORK, "MatrixClass", "low_rank"),
        Alternative("low_rank_cosine", _matrix(
            "Low-rank on the unit sphere: S = tau_h cos(q_t, k_s), tau_h learned (from 10, at most 100).",
            "        tau = jnp.exp(jnp.minimum(self.log_tau[...].astype(jnp.float32), math.log(100.0)))\n"
            "        return jnp.einsum(\"bhtf,bhsf->bhts\", self._unit(q), self._unit(k)) * tau",
            init="        self.log_tau = nnx.Param(jnp.full((n_heads, 1, 1), math.log(10.0)))", methods=_UNIT)),
        Alternative("low_rank_alibi", _matrix(
            "Low-rank plus a linear distance penalty (ALiBi): S = q.k / sqrt(F) - m_h (t - s), m_h = 2^(-8h/H).",
            _DISTANCE + _SCORES +
            "        slopes = 2.0 ** (-8.0 * jnp.arange(1, q.shape[1] + 1, dtype=jnp.float32) / q.shape[1])\n"
            "        return scores - slopes[:, None, None] * distance",
            init=_NO_PARAMS)),
        Alternative("low_rank_buckets", _matrix(
            "Low-rank plus a learned relative-position bias (T5 buckets, 32 per head, zero at init): "
            "a data-dependent matrix with a Toeplitz correction.",
            _DISTANCE + _SCORES +
            "        return scores + self.table[...].astype(jnp.float32)[:, self._buckets(distance)]",
            init="        self.table = nnx.Param(jnp.zeros((n_heads, 32)))", methods=_BUCKETS)),
        Alternative("toeplitz_buckets", _matrix(
            "Causal Toeplitz (a learned convolution): S_{t,s} = c_h[bucket(t - s)], 32 T5 buckets per head, "
            "starting as a ramp from 1 down to 1/32 so every row is positive and local-leaning.",
            _DISTANCE + "        return self.table[...].astype(jnp.float32)[:, self._buckets(distance)][None]",
            init="        self.table = nnx.Param(jnp.tile(1.0 - jnp.arange(32.0) / 32.0, (n_heads, 1)))",
            methods=_BUCKETS)),
        Alternative("toeplitz_exp_basis", _matrix(
            "Causal Toeplitz with a smooth kernel c_h(n) = sum_j w_hj exp(-n / tau_j), eight time scales tau_j "
            "log-spaced in [1, 256], w = 1/8 at init.",
            _DISTANCE + "        weight = self.weight[...].astype(jnp.float32)\n"
            "        taus = jnp.exp(jnp.linspace(0.0, math.log(256.0), weight.shape[-1]))\n"
            "        basis = jnp.exp(-distance.astype(jnp.float32)[..., None] / taus)  # [T, T, J]\n"
            "        return jnp.einsum(\"tsj,hj->hts\", basis, weight)[None]",
            init="        self.weight = nnx.Param(jnp.full((n_heads, 8), 1.0 / 8.0))")),
        Alternative("semiseparable", _matrix(
            "Semiseparable (Mamba-2 SSD, sequence-aligned): S_{t,s} = q_t.k_s / sqrt(F) prod_{r=s+1..t} a_r with "
            "log a_r = -exp(A_h) softplus(w_h . x_r + dt_h), A_h in [1, 16] and dt in [1e-3, 0.1] at init.",
            _SCORES +
            "        dt = jax.nn.softplus(self.dt(x).astype(jnp.float32) + self.dt_bias[...].astype(jnp.float32))\n"
            "        log_a = -jnp.exp(self.a_log[...].astype(jnp.float32)) * dt  # [B, T, H]\n"
            "        return scores * jnp.exp(self._segment_sums(log_a.transpose(0, 2, 1)))",
            init="        self.dt = nnx.Linear(d_model, n_heads, rngs=rngs)\n"
                 "        dt = jnp.exp(jnp.linspace(math.log(1e-3), math.log(1e-1), n_heads))\n"
                 "        self.dt_bias = nnx.Param(jnp.log(jnp.expm1(dt)))  # softplus^-1\n"
                 "        self.a_log = nnx.Param(jnp.log(jnp.linspace(1.0, 16.0, n_heads)))",
            methods=_SEGMENT_SUMS)),
        Alternative("semiseparable_fixed", _matrix(
            "Semiseparable with fixed per-head decays (S4D / RetNet): S_{t,s} = q_t.k_s / sqrt(F) gamma_h^(t-s), "
            "gamma_h = 1 - 2^(-5-h).",
            _DISTANCE + _SCORES + "        log_gamma = " + _RETNET_LOG_GAMMA + "\n"
            "        return scores * jnp.exp(log_gamma[:, None, None] * distance)")),
        Alternative("cauchy", _matrix(
            "Cauchy-kernel matrix S_{t,s} = c_h / (1 + |q_t - k_s|^2 / F), positive and bounded, c_h learned "
            "(from 4).",
            "        q32, k32 = q.astype(jnp.float32), k.astype(jnp.float32)\n"
            "        sq = (jnp.sum(jnp.square(q32), -1)[..., :, None] + jnp.sum(jnp.square(k32), -1)[..., None, :]\n"
            "              - 2.0 * jnp.einsum(\"bhtf,bhsf->bhts\", q32, k32))\n"
            "        scale = jnp.exp(self.log_scale[...].astype(jnp.float32))\n"
            "        return scale / (1.0 + jnp.maximum(sq, 0.0) / q.shape[-1])",
            init="        self.log_scale = nnx.Param(jnp.full((n_heads, 1, 1), math.log(4.0)))")),
        Alternative("vandermonde", _matrix(
            "Vandermonde with data-dependent nodes z = exp(i q), exp(i k): S_{t,s} = Re sum_f z_tf conj(w_sf) "
            "/ sqrt(F) = sum_f cos(q_tf - k_sf) / sqrt(F).",
            "        q32, k32 = q.astype(jnp.float32), k.astype(jnp.float32)\n"
            "        real = jnp.einsum(\"bhtf,bhsf->bhts\", jnp.cos(q32), jnp.cos(k32))\n"
            "        imaginary = jnp.einsum(\"bhtf,bhsf->bhts\", jnp.sin(q32), jnp.sin(k32))\n"
            "        return (real + imaginary) * (1.0 / math.sqrt(q.shape[-1]))")),
        Alternative("vandermonde_positional", _matrix(
            "Vandermonde factorisation of a Toeplitz matrix, S_{t,s} = sum_j w_hj cos(theta_hj (t - s)): eight "
            "learned frequencies per head (from pi 2^-j) and weights (from 1/8).",
            _DISTANCE + "        angles = distance.astype(jnp.float32)[..., None] * self.theta[...].astype(jnp.float32)"
            "[:, None, None, :]\n"
            "        return jnp.einsum(\"htsj,hj->hts\", jnp.cos(angles), self.weight[...].astype(jnp.float32))[None]",
            init="        self.theta = nnx.Param(jnp.tile(math.pi * 2.0 ** -jnp.arange(8.0), (n_heads, 1)))\n"
                 "        self.weight = nnx.Param(jnp.full((n_heads, 8), 1.0 / 8.0))")),
    ]


_NORMALISATION = '''class Normalisation(nnx.Module):
    """S [B or 1, H, T, T] -> M of the same shape, float32, lower-triangular with exact zeros above the diagonal.

    @DOC@
    """

    def __init__(self, d_model: int, n_heads: int, *, rngs: nnx.Rngs):
@INIT@

    def __call__(self, scores: jax.Array) -> jax.Array:
        t = scores.shape[-1]
        causal = jnp.tril(jnp.ones((t, t), dtype=bool))
        scores = scores.astype(jnp.float32)
@BODY@
'''

_KEYS = "jnp.arange(1, t + 1, dtype=jnp.float32)[:, None]"  # keys in row t


def _normalisation_alternatives() -> list[Alternative]:
    specs = {
        "softmax_temperature": (
            "Row softmax of tau_h S with a learned per-head temperature (from 1, at most e^5).",
            "        self.log_temperature = nnx.Param(jnp.zeros((n_heads, 1, 1)))",
            "        scores = scores * jnp.exp(jnp.minimum(self.log_temperature[...].astype(jnp.float32), 5.0))\n"
            "        return jax.nn.softmax(jnp.where(causal, scores, jnp.finfo(jnp.float32).min / 2), axis=-1)"),
        "l1_rows": (
            "Signed rows scaled to unit L1 norm: M = S / (sum_s |S_{t,s}| + 1e-4).",
            _NO_PARAMS, "        masked = jnp.where(causal, scores, 0.0)\n"
            "        return masked / (jnp.sum(jnp.abs(masked), axis=-1, keepdims=True) + 1e-4)"),
        "max_abs_rows": (
            "M = S / max(|sum_s S_{t,s}|, 1): row sums at most 1 in magnitude, small rows left unscaled.",
            _NO_PARAMS, "        masked = jnp.where(causal, scores, 0.0)\n"
            "        return masked / jnp.maximum(jnp.abs(jnp.sum(masked, axis=-1, keepdims=True)), 1.0)"),
        "causal_mean": (
            "No normalisation beyond a fixed 1/(t + 1) scale (the matrix class alone shapes the rows).",
            _NO_PARAMS, f"        return jnp.where(causal, scores, 0.0) / {_KEYS}"),
        "sigmoid": (
            "Entry-wise sigmoid(S - log(t + 1)) (sigmoid attention): rows sum to about 1 without a row normaliser.",
            _NO_PARAMS, f"        bias = -jnp.log({_KEYS})\n"
            "        return jnp.where(causal, jax.nn.sigmoid(scores + bias), 0.0)"),
        "relu2_rows": (
            "Squared-ReLU entries normalised by their row sum + 1e-4.",
            _NO_PARAMS, "        masked = jnp.where(causal, jnp.square(jax.nn.relu(scores)), 0.0)\n"
            "        return masked / (jnp.sum(masked, axis=-1, keepdims=True) + 1e-4)"),
        "softplus_rows": (
            "Softplus entries (positive, smooth) normalised by their row sum + 1e-6.",
            _NO_PARAMS, "        masked = jnp.where(causal, jax.nn.softplus(scores), 0.0)\n"
            "        return masked / (jnp.sum(masked, axis=-1, keepdims=True) + 1e-6)"),
    }
    alternatives = [baseline(FRAMEWORK, "Normalisation", "softmax")]
    for name, (doc, init, body) in specs.items():
        alternatives.append(Alternative(name, fill(_NORMALISATION, doc=doc, init=init, body=body)))
    return alternatives


def alternatives() -> dict[str, list[Alternative]]:
    """Unit name -> its alternatives, the framework's baseline first."""
    names = ProjectionNames(unit="InputMap", outputs="(q, k, u)", returns="q, k, v")
    shape = ReadoutShape(
        call_doc="(M [B or 1, H, T, T], u [B, H, T, Du]) -> y [B, T, D] with H * Du = D.",
        args="matrix: jax.Array, u: jax.Array", heads="jnp.matmul(matrix.astype(u.dtype), u)",
        source="u", source_doc="u_t")
    return {
        "InputMap": [baseline(FRAMEWORK, "InputMap", "fused_qku")] + projections(
            names, include=("conv4_qk", "conv3_qkv", "conv4_silu_qk", "token_shift", "qk_rmsnorm")),
        "MatrixClass": _matrix_alternatives(),
        "Normalisation": _normalisation_alternatives(),
        "Readout": [baseline(FRAMEWORK, "Readout", "plain")] + readouts(
            shape, include=("rmsnorm", "layernorm", "gate", "rmsnorm_gate", "skip")),
    }
