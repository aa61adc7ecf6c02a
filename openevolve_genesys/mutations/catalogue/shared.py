"""Alternatives that all three frameworks share up to names: input projections and head-wise readouts.

The frameworks differ only in the unit's class name, the order of the returned tensors and what the
readout sums, so each alternative is one template filled per framework. Every projection keeps the
fused Linear(D, 3D) (q | k | v, heads contiguous) and adds at most O(D) parameters; every readout keeps
the Linear(D, D) and adds at most D + (D/H)^2 + D/H, so any combination stays in the 10% budget.
"""

from __future__ import annotations

from dataclasses import dataclass

from openevolve_genesys.mutations.catalogue.base import Alternative, fill

_PROJECTION_INIT = '''    def __init__(self, d_model: int, n_heads: int, *, rngs: nnx.Rngs):
        if d_model % n_heads:
            raise ValueError(
                f"d_model={d_model} is not divisible by n_heads={n_heads}; choose n_heads dividing d_model"
            )
        self.n_heads = n_heads
        self.qkv = nnx.Linear(d_model, 3 * d_model, rngs=rngs)'''

_SPLIT_HEADS = '''        qkv = qkv.reshape(b, t, 3, self.n_heads, d // self.n_heads)
        q, k, v = (qkv[:, :, i].transpose(0, 2, 1, 3) for i in range(3))'''

_CONV = '''class @NAME@(nnx.Module):
    """x [B, T, D] -> @OUTPUTS@, each [B, H, T, D/H].

    @DOC@
    """

@INIT@
        self.conv = nnx.Param(jnp.zeros((@WIDTH@, @N_CHANNELS@ * d_model)).at[-1].set(1.0))

    def __call__(self, x: jax.Array) -> tuple[jax.Array, jax.Array, jax.Array]:
        b, t, d = x.shape
        qkv = self.qkv(x)
        taps = self.conv[...].astype(qkv.dtype)
        width, n = taps.shape
        padded = jnp.pad(qkv[..., :n], ((0, 0), (width - 1, 0), (0, 0)))
        # A sum over the few taps (not over time steps); tap width-1 is the current token, so it stays causal.
        mixed = sum(padded[:, i : i + t] * taps[i] for i in range(width))
        qkv = jnp.concatenate([@ACTIVATION@, qkv[..., n:]], axis=-1)
@SPLIT@
        return @RETURN@
'''

_TOKEN_SHIFT = '''class @NAME@(nnx.Module):
    """x [B, T, D] -> @OUTPUTS@, each [B, H, T, D/H].

    Token shift (RWKV): the fused Linear(D, 3D) reads x_t + mu * (x_{t-1} - x_t), a learned per-channel mix
    mu = sigmoid(m) in (0, 1), starting near 0.12, so each projection sees a little of the previous token.
    """

@INIT@
        self.mix_logit = nnx.Param(jnp.full((d_model,), -2.0))

    def __call__(self, x: jax.Array) -> tuple[jax.Array, jax.Array, jax.Array]:
        b, t, d = x.shape
        previous = jnp.pad(x, ((0, 0), (1, 0), (0, 0)))[:, :t]
        mix = jax.nn.sigmoid(self.mix_logit[...].astype(jnp.float32)).astype(x.dtype)
        qkv = self.qkv(x + mix * (previous - x))
@SPLIT@
        return @RETURN@
'''

_QK_RMSNORM = '''class @NAME@(nnx.Module):
    """x [B, T, D] -> @OUTPUTS@, each [B, H, T, D/H].

    Fused Linear(D, 3D), then RMS normalisation of q and k per head with learned gains (QK-norm), which
    bounds every q.k by the gains and keeps logits and recurrent updates well scaled.
    """

@INIT@
        self.q_gain = nnx.Param(jnp.ones((d_model // n_heads,)))
        self.k_gain = nnx.Param(jnp.ones((d_model // n_heads,)))

    def __call__(self, x: jax.Array) -> tuple[jax.Array, jax.Array, jax.Array]:
        b, t, d = x.shape
        qkv = self.qkv(x)
@SPLIT@
        q, k = self._rms(q, self.q_gain[...]), self._rms(k, self.k_gain[...])
        return @RETURN@

    @staticmethod
    def _rms(x: jax.Array, gain: jax.Array) -> jax.Array:
        x32 = x.astype(jnp.float32)
        normed = x32 * jax.lax.rsqrt(jnp.mean(jnp.square(x32), axis=-1, keepdims=True) + 1e-6)
        return (normed * gain.astype(jnp.float32)).astype(x.dtype)
'''


@dataclass(frozen=True)
class ProjectionNames:
    """How one framework names its input unit: class name, documented outputs, and the return expression."""

    unit: str
    outputs: str
    returns: str


def projections(names: ProjectionNames, *, include: tuple[str, ...]) -> list[Alternative]:
    """The shared input-map alternatives named in ``include`` (conv4_qk, conv3_qkv, conv4_silu_qk,
    token_shift, qk_rmsnorm), written for ``names``."""
    common = dict(name=names.unit, outputs=names.outputs, init=_PROJECTION_INIT, split=_SPLIT_HEADS,
                  **{"return": names.returns})

    def conv(width: int, n_channels: int, silu: bool) -> str:
        channels = {2: "q and k", 3: "q, k and v"}[n_channels]
        doc = (f"Fused Linear(D, 3D), then a depthwise causal convolution of width {width} over time on the "
               f"{channels} channels{', followed by SiLU' if silu else ''}. The current tap starts at 1 and earlier "
               "taps at 0: the unit starts as the plain projection and learns short-range token mixing (as in "
               "Mamba, DeltaNet and Hydra input maps).")
        return fill(_CONV, doc=doc, width=width, n_channels=n_channels,
                    activation="jax.nn.silu(mixed)" if silu else "mixed", **common)

    texts = {
        "conv4_qk": conv(4, 2, silu=False),
        "conv3_qkv": conv(3, 3, silu=False),
        "conv4_silu_qk": conv(4, 2, silu=True),
        "token_shift": fill(_TOKEN_SHIFT, **common),
        "qk_rmsnorm": fill(_QK_RMSNORM, **common),
    }
    unknown = set(include) - set(texts)
    if unknown:
        raise KeyError(f"unknown shared projection alternatives {sorted(unknown)}; known: {sorted(texts)}")
    return [Alternative(name, texts[name]) for name in include]


_READOUT = '''class Readout(nnx.Module):
    """@CALL_DOC@

    @DOC@
    """

    def __init__(self, d_model: int, n_heads: int, *, rngs: nnx.Rngs):
        self.out = nnx.Linear(d_model, d_model, rngs=rngs)
@EXTRA_INIT@

    def __call__(self, @ARGS@) -> jax.Array:
        heads = @HEADS@
        b, h, t, dv = heads.shape
@POST@
        return self.out(heads.transpose(0, 2, 1, 3).reshape(b, t, h * dv))
'''

_NORM_METHOD = '''
    @staticmethod
    def _norm(heads: jax.Array, gain: jax.Array, bias: jax.Array | None, centre: bool) -> jax.Array:
        h32 = heads.astype(jnp.float32)
        if centre:
            h32 = h32 - jnp.mean(h32, axis=-1, keepdims=True)
        h32 = h32 * jax.lax.rsqrt(jnp.mean(jnp.square(h32), axis=-1, keepdims=True) + 1e-6) * gain
        return (h32 if bias is None else h32 + bias).astype(heads.dtype)'''

_RMS_INIT = "        self.gain = nnx.Param(jnp.ones((n_heads, 1, d_model // n_heads)))"
_LAYER_INIT = _RMS_INIT + "\n        self.bias = nnx.Param(jnp.zeros((n_heads, 1, d_model // n_heads)))"
_GATE_INIT = "        self.gate = nnx.Linear(d_model // n_heads, d_model // n_heads, rngs=rngs)"
_SKIP_INIT = "        self.skip = nnx.Param(jnp.ones((n_heads, 1, 1)))"
_RMS = "        heads = self._norm(heads, self.gain[...].astype(jnp.float32), None, centre=False)"
_LAYER = ("        heads = self._norm(heads, self.gain[...].astype(jnp.float32), "
          "self.bias[...].astype(jnp.float32), centre=True)")
_GATE = "        heads = heads * jax.nn.sigmoid(self.gate(@SOURCE@))"
_SKIP = "        heads = heads + self.skip[...].astype(heads.dtype) * @SOURCE@"


@dataclass(frozen=True)
class ReadoutShape:
    """How one framework's Readout is called: docstring line, arguments, the per-head result, the gate source."""

    call_doc: str
    args: str
    heads: str
    source: str  # the current token's tensor [B, H, T, Dv] a gate or skip reads
    source_doc: str


def readouts(shape: ReadoutShape, *, include: tuple[str, ...]) -> list[Alternative]:
    """Shared readout alternatives named in ``include`` (rmsnorm, layernorm, gate, rmsnorm_gate, skip)."""
    variants = {
        "rmsnorm": (_RMS_INIT, _RMS, True, "Head-wise RMS normalisation with a learned gain before the output "
                                           "projection (RetNet's group norm), so every head reaches Linear at "
                                           "unit scale whatever its normaliser."),
        "layernorm": (_LAYER_INIT, _LAYER, True, "Head-wise layer normalisation (centred, learned gain and bias) "
                                                 "before the output projection."),
        "gate": (_GATE_INIT, _GATE, False, f"Per-head output gate sigmoid(W {shape.source_doc} + c), W a "
                                           "Linear(D/H, D/H) shared by the heads."),
        "rmsnorm_gate": (_RMS_INIT + "\n" + _GATE_INIT, _RMS + "\n" + _GATE, True,
                         f"Head-wise RMS norm, then the output gate sigmoid(W {shape.source_doc} + c)."),
        "skip": (_SKIP_INIT, _SKIP, False, f"Adds D_h * {shape.source_doc} per head (Mamba's D skip, D_h "
                                           "learned, starting at 1)."),
    }
    unknown = set(include) - set(variants)
    if unknown:
        raise KeyError(f"unknown shared readout alternatives {sorted(unknown)}; known: {sorted(variants)}")
    alternatives = []
    for name in include:
        extra_init, post, uses_norm, doc = variants[name]
        text = fill(_READOUT, call_doc=shape.call_doc, doc=doc, extra_init=extra_init, args=shape.args,
                    heads=shape.heads, post=post.replace("@SOURCE@", shape.source))
        alternatives.append(Alternative(name, text + (_NORM_METHOD if uses_norm else "")))
    return alternatives
