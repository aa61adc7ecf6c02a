"""The fixed language model around an evolvable sequence mixer.

Structure is the PyTorch prototype's model, rewritten in Flax NNX:
token embedding x sqrt(d_model) (tied to the output head) -> dropout -> + sinusoidal positions
-> N x [x + drop(mixer(LN(x))); x + drop(FFN(LN(x)))] -> final LN -> tied head.

One deliberate difference from the seed: the embedding is initialised with std d_model^-1/2 and
scaled by sqrt(d_model) on input, as in Vaswani et al. (2017), for whom sinusoidal positions were
designed. With the seed's std 0.02 and no scale, the unit-amplitude positions drown the token
signal: on the smoke profile the eval loss sat at the unigram entropy (6.43) after 300 steps,
against 5.59 with the scaling (same data, same steps; see tests/training/test_learning.py).

Only the mixer changes between designs. A mixer is any NNX module built as
``factory(d_model, n_heads, rngs=rngs)`` that maps [batch, seq, d_model] to the same shape
and is causal by itself (the model passes it no mask). A layer-aware factory (one whose signature
takes ``layer`` and ``n_layers`` keywords, such as a combination stage's ``build_mixer``) is also told
which block it builds, so a hybrid stack can place different mixers in different layers; the three
frameworks' factories take no such keywords and are called exactly as before.
"""

from __future__ import annotations

import functools
import inspect
import math
from typing import Callable, Protocol, Sequence

import jax
import jax.numpy as jnp
import numpy as np
from flax import nnx

from openevolve_genesys.training.dropout import Dropout

# A finite large negative for masked scores, as in the frameworks' baselines (frameworks/README.md).
_MASKED = float(np.finfo(np.float32).min / 2)


class MixerFactory(Protocol):
    def __call__(self, d_model: int, n_heads: int, *, rngs: nnx.Rngs) -> nnx.Module: ...


def accepts_layer(factory: Callable[..., nnx.Module]) -> bool:
    """True when ``factory`` takes ``layer`` and ``n_layers`` as keywords: it builds a per-layer mixer.

    Decided from the signature once per model, never by calling and catching a TypeError, which would
    also swallow a TypeError raised inside the evolved code."""
    try:
        parameters = inspect.signature(factory).parameters
    except (TypeError, ValueError):  # builtins and some C callables have no signature: plain factories
        return False
    keyword = (inspect.Parameter.KEYWORD_ONLY, inspect.Parameter.POSITIONAL_OR_KEYWORD)
    return all(name in parameters and parameters[name].kind in keyword for name in ("layer", "n_layers"))


def layer_slots(factory: Callable[..., nnx.Module], depths: Sequence[int] | None = None
                ) -> list[tuple[int, int]] | None:
    """The (layer, n_layers) pairs a layer-aware factory is checked and hashed at; None for a plain factory.

    ``depths`` are the model depths it is trained at; by default the factory's own ``depths`` attribute,
    which a generated program declares outside its EVOLVE-BLOCK (the depths of its stage's ladder)."""
    if not accepts_layer(factory):
        return None
    depths = getattr(factory, "depths", None) if depths is None else depths
    if not depths or any(not isinstance(d, int) or d < 1 for d in depths):
        raise ValueError(f"a layer-aware build_mixer (it takes layer= and n_layers=) must declare the model depths "
                         f"it is trained at as build_mixer.depths, a tuple of positive ints; got {depths!r}")
    return [(layer, n_layers) for n_layers in sorted(set(depths)) for layer in range(n_layers)]


def sinusoidal_positions(max_len: int, d_model: int) -> np.ndarray:
    """PE(pos, 2i) = sin(pos / 10000^(2i/d)), PE(pos, 2i+1) = cos(...), as in the PyTorch prototype."""
    position = np.arange(max_len, dtype=np.float64)[:, None]
    div_term = np.exp(np.arange(0, d_model, 2, dtype=np.float64) * -(math.log(10000.0) / d_model))
    pe = np.zeros((max_len, d_model), dtype=np.float64)
    pe[:, 0::2] = np.sin(position * div_term)
    pe[:, 1::2] = np.cos(position * div_term[: d_model // 2])
    return pe.astype(np.float32)


class CausalSelfAttention(nnx.Module):
    """The baseline mixer: multi-head causal softmax attention with a fused QKV projection."""

    def __init__(self, d_model: int, n_heads: int, *, rngs: nnx.Rngs):
        if d_model % n_heads:
            raise ValueError(f"d_model={d_model} is not divisible by n_heads={n_heads}")
        self.n_heads = n_heads
        self.qkv = nnx.Linear(d_model, 3 * d_model, rngs=rngs)
        self.out = nnx.Linear(d_model, d_model, rngs=rngs)

    def __call__(self, x: jax.Array) -> jax.Array:
        b, t, d = x.shape
        dh = d // self.n_heads
        # Projections on the 2-D [tokens, features] view, as in FeedForward.
        qkv = self.qkv(x.reshape(b * t, d)).reshape(b, t, 3, self.n_heads, dh)
        # Head-major [b, h, t, dh]: both attention matmuls are plain batched matmuls, which XLA CPU runs
        # without the transposed copies it puts around jax.nn.dot_product_attention's [b, t, h, dh]
        # einsums: 4-5% of a seed-rung training step (experiments/benchmarks/README.md).
        q, k, v = jnp.moveaxis(qkv, (2, 3), (0, 2))
        # Scores and softmax in float32 under a bfloat16 forward pass, as jax.nn.dot_product_attention does.
        scale = 1.0 / math.sqrt(dh)
        scores = jnp.matmul(q, jnp.swapaxes(k, -1, -2), preferred_element_type=jnp.float32) * scale
        causal = jnp.tril(jnp.ones((t, t), bool))
        weights = jax.nn.softmax(jnp.where(causal, scores, _MASKED), axis=-1).astype(v.dtype)
        y = jnp.swapaxes(jnp.matmul(weights, v), 1, 2).reshape(b * t, d)
        return self.out(y).reshape(b, t, d)


class FeedForward(nnx.Module):
    """Linear -> GELU -> dropout -> Linear, 4x expansion (fixed, never evolved)."""

    def __init__(self, d_model: int, dropout: float, *, rngs: nnx.Rngs):
        self.up = nnx.Linear(d_model, 4 * d_model, rngs=rngs)
        self.down = nnx.Linear(4 * d_model, d_model, rngs=rngs)
        self.dropout = Dropout(dropout)

    def __call__(self, x: jax.Array, *, deterministic: bool, rngs: jax.Array | None) -> jax.Array:
        # On the 2-D [tokens, features] view: autodiff of a dot over [b, t, d] forms the weight gradient
        # as a two-axis contraction, which XLA CPU serves with transposed copies of the activations that
        # fuse with the GELU/dropout backward into slow strided loops. Same math, same parameters; with
        # the attention projections, 6% (r0) to 15% (r3) of a seed-rung step (benchmark README).
        shape = x.shape
        h = jax.nn.gelu(self.up(x.reshape(-1, shape[-1])), approximate=False)
        return self.down(self.dropout(h, deterministic=deterministic, rngs=rngs)).reshape(shape)


class Block(nnx.Module):
    """Pre-LayerNorm block with plain residual additions."""

    def __init__(self, d_model: int, n_heads: int, dropout: float, mixer: MixerFactory, *, rngs: nnx.Rngs):
        self.norm_mixer = nnx.LayerNorm(d_model, epsilon=1e-5, rngs=rngs)
        self.mixer = mixer(d_model, n_heads, rngs=rngs)
        self.norm_ffn = nnx.LayerNorm(d_model, epsilon=1e-5, rngs=rngs)
        self.ffn = FeedForward(d_model, dropout, rngs=rngs)
        self.dropout = Dropout(dropout)

    def __call__(self, x: jax.Array, *, deterministic: bool, rngs: jax.Array | None) -> jax.Array:
        keys = (None,) * 3 if rngs is None else tuple(jax.random.split(rngs, 3))
        x = x + self.dropout(self.mixer(self.norm_mixer(x)), deterministic=deterministic, rngs=keys[0])
        h = self.ffn(self.norm_ffn(x), deterministic=deterministic, rngs=keys[1])
        return x + self.dropout(h, deterministic=deterministic, rngs=keys[2])


class LanguageModel(nnx.Module):
    """Decoder-only LM; ``hidden`` and ``logits`` are split so the loss can chunk the tied head."""

    def __init__(
        self,
        vocab_size: int,
        d_model: int,
        n_layers: int,
        n_heads: int,
        *,
        dropout: float = 0.1,
        mixer: MixerFactory = CausalSelfAttention,
        rngs: nnx.Rngs,
    ):
        self.embed = nnx.Embed(vocab_size, d_model, embedding_init=nnx.initializers.normal(d_model ** -0.5),
                               rngs=rngs)
        self.embed_scale = math.sqrt(d_model)
        self.dropout = Dropout(dropout)
        layered = accepts_layer(mixer)
        self.blocks = nnx.List([
            Block(d_model, n_heads, dropout,
                  functools.partial(mixer, layer=i, n_layers=n_layers) if layered else mixer, rngs=rngs)
            for i in range(n_layers)])
        self.norm = nnx.LayerNorm(d_model, epsilon=1e-5, rngs=rngs)

    def hidden(self, tokens: jax.Array, *, deterministic: bool = True, rngs: jax.Array | None = None) -> jax.Array:
        """Final-LayerNorm hidden states [batch, seq, d_model]."""
        keys = [None] * (len(self.blocks) + 1)
        if rngs is not None:
            keys = list(jax.random.split(rngs, len(self.blocks) + 1))
        x = self.dropout(self.embed(tokens) * self.embed_scale, deterministic=deterministic, rngs=keys[0])
        # A trace-time constant: positions are not parameters and not state.
        x = x + jnp.asarray(sinusoidal_positions(tokens.shape[1], x.shape[-1]), x.dtype)
        for block, key in zip(self.blocks, keys[1:]):
            x = block(x, deterministic=deterministic, rngs=key)
        return self.norm(x)

    def logits(self, hidden: jax.Array) -> jax.Array:
        return self.embed.attend(hidden)

    def __call__(self, tokens: jax.Array, *, deterministic: bool = True, rngs: jax.Array | None = None) -> jax.Array:
        return self.logits(self.hidden(tokens, deterministic=deterministic, rngs=rngs))


def count_parameters(model: LanguageModel) -> tuple[int, int]:
    """(non-embedding N, total). N follows Kaplan et al. 2020: embedding and positions excluded.

    The head is tied to the embedding, so it is neither counted twice in the total nor in N.
    """
    params = nnx.state(model, nnx.Param)
    total = sum(int(np.prod(x.shape)) for x in jax.tree.leaves(params))
    embedding = int(np.prod(model.embed.embedding.shape))
    return total - embedding, total


def build_model(
    vocab_size: int,
    d_model: int,
    n_layers: int,
    n_heads: int,
    *,
    dropout: float = 0.1,
    mixer: MixerFactory | Callable[..., nnx.Module] = CausalSelfAttention,
    seed: int = 0,
) -> LanguageModel:
    return LanguageModel(
        vocab_size, d_model, n_layers, n_heads, dropout=dropout, mixer=mixer, rngs=nnx.Rngs(seed),
    )
