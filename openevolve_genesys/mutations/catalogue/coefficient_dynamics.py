"""Catalogue of the coefficient-dynamics framework (Sieber et al. 2025): alpha_{t,s} = phi(q_t . h_t^(s) + g) / eta_t.

Units and their alternatives: Projections (shared input maps), FeatureMap (phi-side maps of q and k),
Dynamics (what carries key s to time t: rotations, fixed / learned / data-dependent decays as g <= 0),
Coefficients (phi and the normaliser eta), Readout (shared head-wise readouts). Decays live in log space,
g is zero above the diagonal, and every exp of g is taken on a value <= 0.
"""

from __future__ import annotations

from openevolve_genesys.mutations.catalogue.base import Alternative, baseline, fill
from openevolve_genesys.mutations.catalogue.shared import ProjectionNames, ReadoutShape, projections, readouts

FRAMEWORK = "coefficient_dynamics"

_FEATURE_MAP = '''class FeatureMap(nnx.Module):
    """(q, k) [B, H, T, F] -> (q, k) [B, H, T, F], the phi-side map of queries and keys.

    @DOC@
    """

    def __init__(self, d_model: int, n_heads: int, *, rngs: nnx.Rngs):
        del d_model, n_heads, rngs  # parameter-free

    def __call__(self, q: jax.Array, k: jax.Array) -> tuple[jax.Array, jax.Array]:
        return self._phi(q), self._phi(k)

    @staticmethod
    def _phi(x: jax.Array) -> jax.Array:
        return @EXPR@
'''

_COSINE_FEATURES = '''class FeatureMap(nnx.Module):
    """(q, k) [B, H, T, F] -> (q, k) [B, H, T, F], the phi-side map of queries and keys.

    Cosine features: q and k are L2-normalised and q is scaled by sqrt(F) * tau_h, so after Coefficients'
    1/sqrt(F) every logit is tau_h cos(q, k), bounded; tau_h is learned per head (from 10, at most 100).
    """

    def __init__(self, d_model: int, n_heads: int, *, rngs: nnx.Rngs):
        self.log_scale = nnx.Param(jnp.full((n_heads, 1, 1), math.log(10.0)))

    def __call__(self, q: jax.Array, k: jax.Array) -> tuple[jax.Array, jax.Array]:
        scale = jnp.exp(jnp.minimum(self.log_scale[...].astype(jnp.float32), math.log(100.0)))
        q_unit = self._unit(q) * (scale * math.sqrt(q.shape[-1]))
        return q_unit.astype(q.dtype), self._unit(k).astype(k.dtype)

    @staticmethod
    def _unit(x: jax.Array) -> jax.Array:
        x32 = x.astype(jnp.float32)
        return x32 * jax.lax.rsqrt(jnp.sum(jnp.square(x32), axis=-1, keepdims=True) + 1e-6)
'''

_QK_NORM_FEATURES = '''class FeatureMap(nnx.Module):
    """(q, k) [B, H, T, F] -> (q, k) [B, H, T, F], the phi-side map of queries and keys.

    QK-norm: RMS normalisation of q and k with learned per-feature gains, so |q.k| / sqrt(F) stays near
    the gains' scale however large the projections grow.
    """

    def __init__(self, d_model: int, n_heads: int, *, rngs: nnx.Rngs):
        self.q_gain = nnx.Param(jnp.ones((d_model // n_heads,)))
        self.k_gain = nnx.Param(jnp.ones((d_model // n_heads,)))

    def __call__(self, q: jax.Array, k: jax.Array) -> tuple[jax.Array, jax.Array]:
        return self._rms(q, self.q_gain[...]), self._rms(k, self.k_gain[...])

    @staticmethod
    def _rms(x: jax.Array, gain: jax.Array) -> jax.Array:
        x32 = x.astype(jnp.float32)
        normed = x32 * jax.lax.rsqrt(jnp.mean(jnp.square(x32), axis=-1, keepdims=True) + 1e-6)
        return (normed * gain.astype(jnp.float32)).astype(x.dtype)
'''

_DYNAMICS = '''class Dynamics(nnx.Module):
    """(x [B, T, D], q, k [B, H, T, F]) -> (q, k, g), g [B|1, H|1, T, T] float32 <= 0, zero above the diagonal.

    @DOC@
    """

    def __init__(self, d_model: int, n_heads: int, *, rngs: nnx.Rngs):
@INIT@

    def __call__(self, x: jax.Array, q: jax.Array, k: jax.Array) -> tuple[jax.Array, jax.Array, jax.Array]:
@BODY@
@METHODS@'''

_ROTATE = '''
    @staticmethod
    def _rotate(x: jax.Array) -> jax.Array:
        """RoPE on feature pairs (f, f + F/2) by angle t * 10000^(-2f/F); an odd last feature is left as is."""
        t, half = x.shape[2], x.shape[3] // 2
        inv_freq = 1.0 / (10000.0 ** (jnp.arange(half, dtype=jnp.float32) / max(half, 1)))
        angles = jnp.arange(t, dtype=jnp.float32)[:, None] * inv_freq
        cos, sin = jnp.cos(angles), jnp.sin(angles)
        x32 = x.astype(jnp.float32)
        first, second, rest = x32[..., :half], x32[..., half:2 * half], x32[..., 2 * half:]
        rotated = [first * cos - second * sin, first * sin + second * cos, rest]
        return jnp.concatenate(rotated, axis=-1).astype(x.dtype)
'''

_SEGMENT_SUMS = '''
    @staticmethod
    def _segment_sums(log_decay: jax.Array) -> jax.Array:
        """log_decay [..., T] (<= 0) -> g [..., T, T], g[t, s] = sum of log_decay over (s, t], zero for s > t."""
        t = log_decay.shape[-1]
        cumulative = jnp.cumsum(log_decay, axis=-1)
        g = cumulative[..., :, None] - cumulative[..., None, :]
        # Above the diagonal g would be positive and exp(g) could overflow; those entries are ignored anyway.
        return jnp.where(jnp.tril(jnp.ones((t, t), dtype=bool)), g, 0.0)
'''

_NO_PARAMS = "        del d_model, n_heads, rngs  # parameter-free"
_DISTANCE = ("        t = q.shape[2]\n"
             "        distance = jnp.maximum(jnp.arange(t)[:, None] - jnp.arange(t)[None, :], 0).astype(jnp.float32)\n")
_RETNET_LOG_GAMMA = "jnp.log1p(-(2.0 ** (-5.0 - jnp.arange(q.shape[1], dtype=jnp.float32))))"


def _dynamics(doc: str, body: str, init: str = _NO_PARAMS, methods: str = "") -> str:
    return fill(_DYNAMICS, doc=doc, init=init, body=body, methods=methods)


def _dynamics_alternatives() -> list[Alternative]:
    alternatives = [baseline(FRAMEWORK, "Dynamics", "none")]
    for exponent, name in ((8, "alibi"), (4, "alibi_local"), (12, "alibi_long")):
        alternatives.append(Alternative(name, _dynamics(
            f"ALiBi: g_{{t,s}} = -m_h (t - s) with head slopes m_h = 2^(-{exponent} h / H), h = 1..H.",
            _DISTANCE + f"        slopes = 2.0 ** (-{exponent}.0 * jnp.arange(1, q.shape[1] + 1, dtype=jnp.float32) "
            "/ q.shape[1])\n"
            "        return q, k, (-slopes[:, None, None] * distance)[None]")))
    for rate in (0.9, 0.95, 0.99):
        alternatives.append(Alternative(f"decay_{rate:g}", _dynamics(
            f"Fixed exponential decay A_t = a I with a = {rate:g} for every head: g_{{t,s}} = (t - s) log a.",
            _DISTANCE + f"        return q, k, (distance * math.log({rate!r}))[None, None]")))
    retnet = (_DISTANCE + "        log_gamma = " + _RETNET_LOG_GAMMA + "\n"
              "        return @Q@, @K@, (log_gamma[:, None, None] * distance)[None]")
    alternatives += [
        Alternative("retnet", _dynamics(
            "RetNet decays: A = gamma_h I with gamma_h = 1 - 2^(-5-h) per head, g_{t,s} = (t - s) log gamma_h.",
            fill(retnet, q="q", k="k"))),
        Alternative("learned_decay", _dynamics(
            "Learned per-head decay a_h = exp(-softplus(p_h)), initialised at RetNet's gamma_h: "
            "g_{t,s} = (t - s) log a_h.",
            _DISTANCE + "        log_a = -jax.nn.softplus(self.decay_logit[...].astype(jnp.float32))\n"
            "        return q, k, (log_a[:, None, None] * distance)[None]",
            init="        gamma = 1.0 - 2.0 ** (-5.0 - jnp.arange(n_heads, dtype=jnp.float32))\n"
                 "        self.decay_logit = nnx.Param(jnp.log(jnp.expm1(-jnp.log(gamma))))  # softplus^-1")),
        Alternative("forgetting_gate", _dynamics(
            "Forgetting Transformer: f_t = sigmoid(w_h . x_t + b_h) per head (b starts at 3, f near 0.95), "
            "g_{t,s} = sum_{r=s+1..t} log f_r.",
            "        log_f = jax.nn.log_sigmoid(self.gate(x).astype(jnp.float32))  # [B, T, H]\n"
            "        return q, k, self._segment_sums(log_f.transpose(0, 2, 1))",
            init="        self.gate = nnx.Linear(d_model, n_heads, bias_init=nnx.initializers.constant(3.0), "
                 "rngs=rngs)",
            methods=_SEGMENT_SUMS)),
        Alternative("mamba2_decay", _dynamics(
            "Mamba-2 / GLA-style data-dependent decay A_t = a_t I, log a_t = -exp(A_h) softplus(w_h . x_t + dt_h) "
            "with A_h in [1, 16] and dt in [1e-3, 0.1] at init; g = segment sums of log a.",
            "        dt = jax.nn.softplus(self.dt(x).astype(jnp.float32) + self.dt_bias[...].astype(jnp.float32))\n"
            "        log_a = -jnp.exp(self.a_log[...].astype(jnp.float32)) * dt  # [B, T, H]\n"
            "        return q, k, self._segment_sums(log_a.transpose(0, 2, 1))",
            init="        self.dt = nnx.Linear(d_model, n_heads, rngs=rngs)\n"
                 "        dt = jnp.exp(jnp.linspace(math.log(1e-3), math.log(1e-1), n_heads))\n"
                 "        self.dt_bias = nnx.Param(jnp.log(jnp.expm1(dt)))  # softplus^-1\n"
                 "        self.a_log = nnx.Param(jnp.log(jnp.linspace(1.0, 16.0, n_heads)))",
            methods=_SEGMENT_SUMS)),
        Alternative("rope", _dynamics(
            "RoPE: A_t rotates each feature pair by t * theta_f, so q_t . h_t^(s) = (R_t q_t) . (R_s k_s) "
            "depends on t - s; g = 0.",
            "        t = q.shape[2]\n"
            "        return self._rotate(q), self._rotate(k), jnp.zeros((1, 1, t, t), jnp.float32)",
            methods=_ROTATE)),
        Alternative("rope_retnet", _dynamics(
            "RetNet's full dynamics: A = gamma_h R, a RoPE rotation times the per-head decay gamma_h = 1 - 2^(-5-h).",
            fill(retnet, q="self._rotate(q)", k="self._rotate(k)"), methods=_ROTATE)),
    ]
    return alternatives


_COEFFICIENTS = '''class Coefficients(nnx.Module):
    """(q, k [B, H, T, F], g) -> alpha [B, H, T, T] in q's dtype, exactly zero above the diagonal.

    @DOC@ Logits are float32 with b = 1/sqrt(F).
    """

    def __init__(self, d_model: int, n_heads: int, *, rngs: nnx.Rngs):
@INIT@

    def __call__(self, q: jax.Array, k: jax.Array, g: jax.Array) -> jax.Array:
        t = q.shape[2]
        logits = jnp.einsum("bhtf,bhsf->bhts", q, k, preferred_element_type=jnp.float32)
        logits = logits * (1.0 / math.sqrt(q.shape[-1]))
        causal = jnp.tril(jnp.ones((t, t), dtype=bool))
@BODY@
        return alpha.astype(q.dtype)
'''

# Linear phi multiplies by exp(g); clipping g at 0 keeps exp finite even if a Dynamics breaks the g <= 0 rule.
_DECAY = "        decay = jnp.exp(jnp.where(causal, jnp.minimum(g, 0.0), 0.0))\n"
_MASKED_SOFTMAX = ("        logits = jnp.where(causal, logits, jnp.finfo(jnp.float32).min / 2)\n"
                   "        alpha = jax.nn.softmax(logits, axis=-1)")
_ROWS = "jnp.arange(1, t + 1, dtype=jnp.float32)[:, None]"


def _coefficients_alternatives() -> list[Alternative]:
    specs = {
        "softmax_temperature": (
            "Softmax with a learned per-head temperature tau_h (from 1, at most e^5) on the q.k logit.",
            "        self.log_temperature = nnx.Param(jnp.zeros((n_heads, 1, 1)))",
            "        scale = jnp.exp(jnp.minimum(self.log_temperature[...].astype(jnp.float32), 5.0))\n"
            "        logits = logits * scale + g\n" + _MASKED_SOFTMAX),
        "softcap": (
            "Softmax of soft-capped logits 8 tanh(b q.k / 8) + g (Gemma 2), bounding every score.",
            _NO_PARAMS, "        logits = 8.0 * jnp.tanh(logits / 8.0) + g\n" + _MASKED_SOFTMAX),
        "linear_l1": (
            "Linear attention: phi = identity, alpha = b q.k exp(g) / (sum_s |b q.k exp(g)| + 1e-4), an L1 row "
            "normaliser that stays positive for signed features.",
            _NO_PARAMS, _DECAY + "        scores = jnp.where(causal, logits * decay, 0.0)\n"
            "        alpha = scores / (jnp.sum(jnp.abs(scores), axis=-1, keepdims=True) + 1e-4)"),
        "linear_maxabs": (
            "Linear attention normalised by max(|sum_s b q.k exp(g)|, 1), which leaves small rows unscaled.",
            _NO_PARAMS, _DECAY + "        scores = jnp.where(causal, logits * decay, 0.0)\n"
            "        alpha = scores / jnp.maximum(jnp.abs(jnp.sum(scores, axis=-1, keepdims=True)), 1.0)"),
        "sigmoid_bias": (
            "Sigmoid attention: alpha = sigmoid(b q.k + g - log(t + 1)), no row normaliser; the bias keeps row "
            "sums near 1 as the number of keys grows.",
            _NO_PARAMS, "        bias = -jnp.log(" + _ROWS + ")\n"
            "        alpha = jnp.where(causal, jax.nn.sigmoid(logits + g + bias), 0.0)"),
        "sigmoid_mean": (
            "Sigmoid attention scaled by 1/(t + 1): alpha = sigmoid(b q.k + g) / (t + 1).",
            _NO_PARAMS, "        alpha = jnp.where(causal, jax.nn.sigmoid(logits + g), 0.0) / " + _ROWS),
        "relu2_rowsum": (
            "Squared-ReLU attention: alpha = relu(b q.k)^2 exp(g) / (row sum + 1e-4).",
            _NO_PARAMS, _DECAY + "        scores = jnp.where(causal, jnp.square(jax.nn.relu(logits)) * decay, 0.0)\n"
            "        alpha = scores / (jnp.sum(scores, axis=-1, keepdims=True) + 1e-4)"),
        "relu_maxone": (
            "ReLU attention: alpha = relu(b q.k) exp(g) / max(row sum, 1).",
            _NO_PARAMS, _DECAY + "        scores = jnp.where(causal, jax.nn.relu(logits) * decay, 0.0)\n"
            "        alpha = scores / jnp.maximum(jnp.sum(scores, axis=-1, keepdims=True), 1.0)"),
    }
    alternatives = [baseline(FRAMEWORK, "Coefficients", "softmax")]
    for name, (doc, init, body) in specs.items():
        alternatives.append(Alternative(name, fill(_COEFFICIENTS, doc=doc, init=init, body=body)))
    return alternatives


def _feature_map_alternatives() -> list[Alternative]:
    elementwise = {
        "elu_plus_one": ("elu(x) + 1 (Katharopoulos et al.): positive features for linear attention.",
                         "jax.nn.elu(x) + 1"),
        "relu": ("relu(x): sparse non-negative features.", "jax.nn.relu(x)"),
        "softplus": ("softplus(x): smooth positive features.", "jax.nn.softplus(x)"),
        "softmax_features": ("softmax over the feature axis (exp-normalised features), computed in float32.",
                             "jax.nn.softmax(x.astype(jnp.float32), axis=-1).astype(x.dtype)"),
    }
    alternatives = [baseline(FRAMEWORK, "FeatureMap", "identity")]
    alternatives += [Alternative(name, fill(_FEATURE_MAP, doc=doc, expr=expr))
                     for name, (doc, expr) in elementwise.items()]
    alternatives += [Alternative("cosine", _COSINE_FEATURES), Alternative("qk_rmsnorm", _QK_NORM_FEATURES)]
    return alternatives


def alternatives() -> dict[str, list[Alternative]]:
    """Unit name -> its alternatives, the framework's baseline first."""
    names = ProjectionNames(unit="Projections", outputs="(q, k, v)", returns="q, k, v")
    shape = ReadoutShape(
        call_doc="(alpha [B, H, T, T], v [B, H, T, Dv]) -> y [B, T, D] with H * Dv = D.",
        args="alpha: jax.Array, v: jax.Array", heads='jnp.einsum("bhts,bhsf->bhtf", alpha, v)',
        source="v", source_doc="v_t")
    return {
        "Projections": [baseline(FRAMEWORK, "Projections", "fused_qkv")] + projections(
            names, include=("conv4_qk", "conv3_qkv", "conv4_silu_qk", "token_shift")),
        "FeatureMap": _feature_map_alternatives(),
        "Dynamics": _dynamics_alternatives(),
        "Coefficients": _coefficients_alternatives(),
        "Readout": [baseline(FRAMEWORK, "Readout", "plain")] + readouts(
            shape, include=("rmsnorm", "layernorm", "gate", "rmsnorm_gate", "skip")),
    }
