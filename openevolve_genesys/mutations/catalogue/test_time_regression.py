"""Catalogue of the test-time-regression framework (Wang, Shi, Fox 2025): y_t = m_t(q_t), m_t fitted on i <= t.

Units and their alternatives: KeyValueMap (shared input maps), SampleWeights (log gamma_i^(t) <= 0:
uniform, fixed / learned / data-dependent forgetting, recency windows, power-law forgetting, key
salience), Regressor (Nadaraya-Watson with several kernels, normalised linear memories, the delta
rule and exact weighted ridge regression, all parallel over time), Readout (shared head-wise readouts).

Every regressor reads the full weight matrix gamma: the delta rule in its parallel form
U = (I + tril(diag(beta) (K K^T o Gamma), -1))^-1 diag(beta) V, y = tril(Q K^T o Gamma) U, which is
exactly gated DeltaNet when gamma is a product of per-step decays (and generalises it otherwise).
"""

from __future__ import annotations

from openevolve_genesys.mutations.catalogue.base import Alternative, baseline, fill
from openevolve_genesys.mutations.catalogue.shared import ProjectionNames, ReadoutShape, projections, readouts

FRAMEWORK = "test_time_regression"

_NO_PARAMS = "        del d_model, n_heads, rngs  # parameter-free"
_DISTANCE = ("        t = k.shape[2]\n"
             "        distance = jnp.maximum(jnp.arange(t)[:, None] - jnp.arange(t)[None, :], 0).astype(jnp.float32)\n")

_WEIGHTS = '''class SampleWeights(nnx.Module):
    """(x [B, T, D], k [B, H, T, Dk]) -> log_gamma [B or 1, H or 1, T, T], float32, <= 0.

    @DOC@ Entry (t, i) is log gamma_i^(t); entries with i > t are ignored by the Regressor.
    """

    def __init__(self, d_model: int, n_heads: int, *, rngs: nnx.Rngs):
@INIT@

    def __call__(self, x: jax.Array, k: jax.Array) -> jax.Array:
@BODY@
@METHODS@'''

_SEGMENT_SUMS = '''
    @staticmethod
    def _segment_sums(log_decay: jax.Array) -> jax.Array:
        """log_decay [..., T] (<= 0) -> [..., T, T], entry (t, i) = sum of log_decay over (i, t], zero for i > t."""
        t = log_decay.shape[-1]
        cumulative = jnp.cumsum(log_decay, axis=-1)
        log_gamma = cumulative[..., :, None] - cumulative[..., None, :]
        # Above the diagonal the difference is positive and would overflow exp; the Regressor ignores it.
        return jnp.where(jnp.tril(jnp.ones((t, t), dtype=bool)), log_gamma, 0.0)
'''


def _weights(doc: str, body: str, init: str = _NO_PARAMS, methods: str = "") -> str:
    return fill(_WEIGHTS, doc=doc, body=body, init=init, methods=methods)


def _sample_weight_alternatives() -> list[Alternative]:
    alternatives = [baseline(FRAMEWORK, "SampleWeights", "uniform")]
    for rate in (0.9, 0.95, 0.99):
        alternatives.append(Alternative(f"exponential_{rate:g}", _weights(
            f"Exponential forgetting with one rate a = {rate:g}: log gamma_i^(t) = (t - i) log a.",
            _DISTANCE + f"        return (distance * math.log({rate!r}))[None, None]")))
    for window in (16, 32):
        alternatives.append(Alternative(f"window_{window}", _weights(
            f"Recency window: the last {window} samples count fully, older ones get weight exp(-1e4) = 0.",
            # -1e4 underflows exp to exactly 0 yet stays far from overflow under any later arithmetic.
            _DISTANCE + f"        return jnp.where(distance < {window}, 0.0, -1e4)[None, None]")))
    data_gate_init = ("        self.gate = nnx.Linear(d_model, n_heads, bias_init=nnx.initializers.constant(3.0), "
                      "rngs=rngs)")
    alternatives += [
        Alternative("retnet", _weights(
            "Per-head exponential forgetting at RetNet's rates gamma_h = 1 - 2^(-5-h).",
            _DISTANCE + "        log_rate = jnp.log1p(-(2.0 ** (-5.0 - jnp.arange(k.shape[1], dtype=jnp.float32))))\n"
            "        return (log_rate[:, None, None] * distance)[None]")),
        Alternative("learned_rate", _weights(
            "Learned per-head forgetting rate a_h = exp(-softplus(p_h)), starting at RetNet's rates.",
            _DISTANCE + "        log_rate = -jax.nn.softplus(self.rate_logit[...].astype(jnp.float32))\n"
            "        return (log_rate[:, None, None] * distance)[None]",
            init="        rate = 1.0 - 2.0 ** (-5.0 - jnp.arange(n_heads, dtype=jnp.float32))\n"
                 "        self.rate_logit = nnx.Param(jnp.log(jnp.expm1(-jnp.log(rate))))  # softplus^-1")),
        Alternative("power_law", _weights(
            "Power-law forgetting gamma_i^(t) = (1 + t - i)^(-c_h), c_h = softplus(p_h) learned, starting at 0.5.",
            _DISTANCE + "        exponent = jax.nn.softplus(self.exponent_logit[...].astype(jnp.float32))\n"
            "        return (-exponent[:, None, None] * jnp.log1p(distance))[None]",
            init="        self.exponent_logit = nnx.Param(jnp.full((n_heads,), math.log(math.expm1(0.5))))")),
        Alternative("forget_gate", _weights(
            "Data-dependent forgetting (gated linear attention / Forgetting Transformer): a_r = sigmoid(w_h . x_r "
            "+ b_h), b starting at 3, log gamma_i^(t) = sum_{r=i+1..t} log a_r.",
            "        log_a = jax.nn.log_sigmoid(self.gate(x).astype(jnp.float32))  # [B, T, H]\n"
            "        return self._segment_sums(log_a.transpose(0, 2, 1))",
            init=data_gate_init, methods=_SEGMENT_SUMS)),
        Alternative("mamba2_gate", _weights(
            "Data-dependent forgetting with Mamba-2's parameterisation log a_r = -exp(A_h) softplus(w_h . x_r "
            "+ dt_h), A_h in [1, 16] and dt in [1e-3, 0.1] at init.",
            "        dt = jax.nn.softplus(self.dt(x).astype(jnp.float32) + self.dt_bias[...].astype(jnp.float32))\n"
            "        log_a = -jnp.exp(self.a_log[...].astype(jnp.float32)) * dt  # [B, T, H]\n"
            "        return self._segment_sums(log_a.transpose(0, 2, 1))",
            init="        self.dt = nnx.Linear(d_model, n_heads, rngs=rngs)\n"
                 "        dt = jnp.exp(jnp.linspace(math.log(1e-3), math.log(1e-1), n_heads))\n"
                 "        self.dt_bias = nnx.Param(jnp.log(jnp.expm1(dt)))  # softplus^-1\n"
                 "        self.a_log = nnx.Param(jnp.log(jnp.linspace(1.0, 16.0, n_heads)))",
            methods=_SEGMENT_SUMS)),
        Alternative("key_salience", _weights(
            "Sample importance from the key alone: log gamma_i^(t) = log sigmoid(w_h . k_i + b_h) for every t "
            "(w starts at 0, b at 3), so the regression can discount uninformative samples.",
            "        t = k.shape[2]\n"
            "        weight = self.weight[...].astype(jnp.float32)\n"
            "        score = jnp.einsum(\"bhif,hf->bhi\", k.astype(jnp.float32), weight)\n"
            "        log_w = jax.nn.log_sigmoid(score + self.bias[...].astype(jnp.float32)[None, :, None])\n"
            "        return jnp.broadcast_to(log_w[:, :, None, :], (k.shape[0], k.shape[1], t, t))",
            init="        self.weight = nnx.Param(jnp.zeros((n_heads, d_model // n_heads)))\n"
                 "        self.bias = nnx.Param(jnp.full((n_heads,), 3.0))")),
    ]
    return alternatives


_REGRESSOR = '''class Regressor(nnx.Module):
    """(k [B, H, T, Dk], v [B, H, T, Dv], q [B, H, T, Dk], log_gamma) -> predictions m_t(q_t) [B, H, T, Dv].

    @DOC@ Causal: the fit at time t uses samples i <= t only.
    """

    def __init__(self, d_model: int, n_heads: int, *, rngs: nnx.Rngs):
@INIT@

    def __call__(self, k: jax.Array, v: jax.Array, q: jax.Array, log_gamma: jax.Array) -> jax.Array:
        t = q.shape[2]
        causal = jnp.tril(jnp.ones((t, t), dtype=bool))
@BODY@
@METHODS@'''

_UNIT = '''
    @staticmethod
    def _unit(x: jax.Array) -> jax.Array:
        x32 = x.astype(jnp.float32)
        return x32 * jax.lax.rsqrt(jnp.sum(jnp.square(x32), axis=-1, keepdims=True) + 1e-6)
'''

_DOT = 'jnp.einsum("bhtf,bhif->bhti", q, k, preferred_element_type=jnp.float32)'
_NW_TAIL = ('        log_weights = jnp.where(causal, log_kernel + log_gamma, jnp.finfo(jnp.float32).min / 2)\n'
            '        weights = jax.nn.softmax(log_weights, axis=-1).astype(v.dtype)\n'
            '        return jnp.einsum("bhti,bhif->bhtf", weights, v)')
# Weights <= 1 and exactly 0 above the diagonal; clipping at 0 keeps exp finite for any SampleWeights.
_GAMMA = "        gamma = jnp.where(causal, jnp.exp(jnp.minimum(log_gamma, 0.0)), 0.0)\n"
_DELTA_BODY = '''        qn, kn = self._unit(q), self._unit(k)  # unit keys keep every step's transition contractive
        gamma = jnp.broadcast_to(gamma, qn.shape[:2] + (t, t))
        kk = jnp.einsum("bhtf,bhif->bhti", kn, kn) * gamma
        system = jnp.eye(t, dtype=jnp.float32) + beta[..., :, None] * jnp.where(jnp.tril(causal, -1), kk, 0.0)
        # Row t of the unit lower-triangular solve is u_t = beta_t (v_t - sum_{i<t} gamma_i^(t) (k_i.k_t) u_i),
        # the delta rule's correction, computed for all t at once (exact, no loop over time).
        u = jax.scipy.linalg.solve_triangular(system, beta[..., None] * v.astype(jnp.float32), lower=True,
                                              unit_diagonal=True)
        scores = jnp.einsum("bhtf,bhif->bhti", qn, kn) * gamma
        return jnp.einsum("bhti,bhif->bhtf", scores, u).astype(v.dtype)'''


def _regressor(doc: str, body: str, init: str = _NO_PARAMS, methods: str = "") -> str:
    return fill(_REGRESSOR, doc=doc, body=body, init=init, methods=methods)


def _regressor_alternatives() -> list[Alternative]:
    return [
        baseline(FRAMEWORK, "Regressor", "nadaraya_watson"),
        Alternative("nw_bandwidth", _regressor(
            "Nadaraya-Watson, exponential kernel with a learned per-head bandwidth: log K = s_h q.k / sqrt(Dk), "
            "s_h from 1, at most e^5.",
            "        scale = jnp.exp(jnp.minimum(self.log_scale[...].astype(jnp.float32), 5.0))\n"
            f"        log_kernel = {_DOT}\n"
            "        log_kernel = log_kernel * (scale / math.sqrt(q.shape[-1]))\n" + _NW_TAIL,
            init="        self.log_scale = nnx.Param(jnp.zeros((n_heads, 1, 1)))")),
        Alternative("nw_gaussian", _regressor(
            "Nadaraya-Watson with the Gaussian kernel exp(-|q - k|^2 / (2 sqrt(Dk))); the |q|^2 term cancels "
            "in the normalisation, leaving (q.k - |k|^2 / 2) / sqrt(Dk).",
            "        k_sq = jnp.sum(jnp.square(k.astype(jnp.float32)), axis=-1)[:, :, None, :]\n"
            f"        log_kernel = {_DOT}\n"
            "        log_kernel = (log_kernel - 0.5 * k_sq) * (1.0 / math.sqrt(q.shape[-1]))\n" + _NW_TAIL)),
        Alternative("nw_laplacian", _regressor(
            "Nadaraya-Watson with the Laplacian kernel exp(-|q - k| / Dk^(1/4)).",
            "        q32, k32 = q.astype(jnp.float32), k.astype(jnp.float32)\n"
            "        sq = (jnp.sum(jnp.square(q32), -1)[..., :, None] + jnp.sum(jnp.square(k32), -1)[..., None, :]\n"
            f"              - 2.0 * {_DOT})\n"
            "        # +1e-6 keeps the square root's gradient finite where q = k.\n"
            "        log_kernel = -jnp.sqrt(jnp.maximum(sq, 0.0) + 1e-6) / q.shape[-1] ** 0.25\n" + _NW_TAIL)),
        Alternative("nw_cosine", _regressor(
            "Nadaraya-Watson with the von Mises-Fisher kernel exp(tau_h cos(q, k)) on unit q and k, tau_h learned "
            "(from 10, at most 100).",
            "        tau = jnp.exp(jnp.minimum(self.log_tau[...].astype(jnp.float32), math.log(100.0)))\n"
            "        log_kernel = jnp.einsum(\"bhtf,bhif->bhti\", self._unit(q), self._unit(k)) * tau\n" + _NW_TAIL,
            init="        self.log_tau = nnx.Param(jnp.full((n_heads, 1, 1), math.log(10.0)))", methods=_UNIT)),
        Alternative("linear_memory", _regressor(
            "Weighted linear memory W_t = sum_i gamma_i^(t) v_i k_i^T on unit k and q (gamma = a product of decays "
            "gives gated linear attention), read out as W_t q_t / max(|sum_i gamma_i^(t) k_i.q_t|, 1).",
            _GAMMA + "        scores = jnp.einsum(\"bhtf,bhif->bhti\", self._unit(q), self._unit(k)) * gamma\n"
            "        scores = scores / jnp.maximum(jnp.abs(jnp.sum(scores, axis=-1, keepdims=True)), 1.0)\n"
            "        return jnp.einsum(\"bhti,bhif->bhtf\", scores, v.astype(jnp.float32)).astype(v.dtype)",
            methods=_UNIT)),
        Alternative("linear_memory_elu", _regressor(
            "Linear attention as a memory on positive features phi = elu + 1: sum_i gamma phi(q).phi(k_i) v_i "
            "normalised by its row sum + 1e-6.",
            _GAMMA + "        phi_q = jax.nn.elu(q.astype(jnp.float32)) + 1.0\n"
            "        phi_k = jax.nn.elu(k.astype(jnp.float32)) + 1.0\n"
            "        scores = jnp.einsum(\"bhtf,bhif->bhti\", phi_q, phi_k) * gamma\n"
            "        scores = scores / (jnp.sum(scores, axis=-1, keepdims=True) + 1e-6)\n"
            "        return jnp.einsum(\"bhti,bhif->bhtf\", scores, v.astype(jnp.float32)).astype(v.dtype)")),
        Alternative("delta_rule", _regressor(
            "DeltaNet: one online gradient step per sample, W_t = W_{t-1} + beta_t (v_t - W_{t-1} k_t) k_t^T on "
            "unit keys, beta_t = sigmoid(w_h . k_t + b_h) (0.5 at init); with gamma it is gated DeltaNet.",
            "        weight = self.beta_weight[...].astype(jnp.float32)\n"
            "        bias = self.beta_bias[...].astype(jnp.float32)\n"
            "        beta = jnp.einsum(\"bhtf,hf->bht\", k.astype(jnp.float32), weight) + bias[None, :, None]\n"
            "        beta = jax.nn.sigmoid(beta)\n"
            + _GAMMA + _DELTA_BODY,
            init="        self.beta_weight = nnx.Param(jnp.zeros((n_heads, d_model // n_heads)))\n"
                 "        self.beta_bias = nnx.Param(jnp.zeros((n_heads,)))",
            methods=_UNIT)),
        Alternative("delta_rule_unit", _regressor(
            "DeltaNet with beta = 1: each sample overwrites the memory's answer at its unit key, "
            "W_t = W_{t-1} (I - k_t k_t^T) + v_t k_t^T (with gamma: gated).",
            "        beta = jnp.ones(q.shape[:3], jnp.float32)\n" + _GAMMA + _DELTA_BODY, methods=_UNIT)),
        Alternative("ridge", _regressor(
            "Exact weighted ridge regression (what recursive least squares tracks): m_t(q) = V^T G K (K^T G K + "
            "I)^-1 q with G = diag(gamma^(t)), on unit k and q; one F x F solve per position.",
            _GAMMA + "        qn, kn = self._unit(q), self._unit(k)\n"
            "        gamma = jnp.broadcast_to(gamma, qn.shape[:2] + (t, t))\n"
            "        gram = jnp.einsum(\"bhti,bhif,bhig->bhtfg\", gamma, kn, kn) + jnp.eye(q.shape[-1])\n"
            "        z = jnp.linalg.solve(gram, qn[..., None])[..., 0]  # (K^T G K + I)^-1 q_t, [B, H, T, F]\n"
            "        weights = jnp.einsum(\"bhtf,bhif->bhti\", z, kn) * gamma\n"
            "        return jnp.einsum(\"bhti,bhif->bhtf\", weights, v.astype(jnp.float32)).astype(v.dtype)",
            methods=_UNIT)),
    ]


def alternatives() -> dict[str, list[Alternative]]:
    """Unit name -> its alternatives, the framework's baseline first."""
    names = ProjectionNames(unit="KeyValueMap", outputs="(k, v, q)", returns="k, v, q")
    shape = ReadoutShape(
        call_doc="predictions [B, H, T, Dv] -> y [B, T, D] with H * Dv = D.",
        args="predictions: jax.Array", heads="predictions", source="predictions", source_doc="m_t(q_t)")
    return {
        "KeyValueMap": [baseline(FRAMEWORK, "KeyValueMap", "fused_qkv")] + projections(
            names, include=("conv4_qk", "conv3_qkv", "conv4_silu_qk", "token_shift", "qk_rmsnorm")),
        "SampleWeights": _sample_weight_alternatives(),
        "Regressor": _regressor_alternatives(),
        "Readout": [baseline(FRAMEWORK, "Readout", "plain")] + readouts(
            shape, include=("rmsnorm", "layernorm", "gate", "rmsnorm_gate")),
    }
