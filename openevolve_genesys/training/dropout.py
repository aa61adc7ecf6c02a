"""Inverted dropout whose mask is an integer hash of the element index, not a stream of random bits.

Why not ``nnx.Dropout``: it draws one threefry random number per activation, and XLA on CPU is slow
at that. On the 2-core benchmark machine a jitted threefry Bernoulli mask comes out at ~100 M
elements/s using both cores (XLA's ``RngBitGenerator``, the ``rbg``/``unsafe_rbg`` PRNGs: ~150 M/s),
against ~1.7 G/s for the hash below, which moreover fuses into the mask's consumer. The
model drops d_model activations per token at the embedding and 6 x d_model per layer (both residual
branches and the 4x FFN hidden): 2,400 (r0) to 7,100 (r3) per token, 20-58 M per seed-rung step.
Swapping ``nnx.Dropout`` for this module made a whole training step 12% faster at r0 and 13% at r3.
Numbers and how they were measured: experiments/benchmarks/README.md, "Training speed".

Here only two random words are drawn per call (s0, s1, from the call's key); the mask is

    keep[i] = mix32(mix32(i ^ s0) + s1) >= round(rate * 2^32)

with ``i`` the flat element index and ``mix32`` the murmur3 32-bit finaliser. It is a few integer
ops per element that XLA fuses into the consumer of the mask. Properties the training relies on
(tests/training/test_dropout.py checks them statistically):

- the keep rate is exact: for fixed (s0, s1) the map i -> hash is a bijection of uint32 (xor with a
  constant, mix32, adding a constant and mix32 again are each bijections), so over all 2^32 indices
  exactly 2^32 - round(rate * 2^32) are kept; on a real tensor the kept count is binomial;
- masks of neighbouring elements, of different calls (layers) and of different steps are
  uncorrelated, because every output bit of mix32 depends on every input bit and each call's key
  is split from the step's key, which the loop folds from the step number;
- kept values are scaled by 1 / (1 - rate), so the expected value of every activation is unchanged,
  and the layer is the identity when ``deterministic`` is true (evaluation).
"""

from __future__ import annotations

import jax
import jax.numpy as jnp
from flax import nnx

_INDEX_LIMIT = 2**32  # the flat index is a uint32: a larger tensor would repeat its mask


def mix32(h: jax.Array) -> jax.Array:
    """The murmur3 finaliser on uint32: a bijection whose every output bit depends on every input bit."""
    h = h ^ (h >> 16)
    h = h * jnp.uint32(0x85EBCA6B)
    h = h ^ (h >> 13)
    h = h * jnp.uint32(0xC2B2AE35)
    return h ^ (h >> 16)


def keep_mask(key: jax.Array, shape: tuple[int, ...], rate: float) -> jax.Array:
    """Boolean mask of ``shape``, True with probability 1 - ``rate``; the same key gives the same mask."""
    size = 1
    for n in shape:
        size *= n
    if size > _INDEX_LIMIT:
        raise ValueError(f"hash dropout indexes elements with uint32, but this tensor has {size:,} elements "
                         f"(more than 2^32); apply dropout to smaller pieces, e.g. per batch shard")
    seed = jax.random.bits(key, (2,), jnp.uint32)
    index = jax.lax.iota(jnp.uint32, size).reshape(shape)
    threshold = jnp.uint32(round(rate * _INDEX_LIMIT))
    return mix32(mix32(index ^ seed[0]) + seed[1]) >= threshold


class Dropout(nnx.Module):
    """Drop-in for the model's ``nnx.Dropout`` uses: ``dropout(x, deterministic=..., rngs=key)``."""

    def __init__(self, rate: float):
        if not 0.0 <= rate <= 1.0:
            raise ValueError(f"dropout rate must be in [0, 1], got {rate}")
        self.rate = float(rate)

    def __call__(self, x: jax.Array, *, deterministic: bool, rngs: jax.Array | None) -> jax.Array:
        if deterministic or self.rate == 0.0:
            return x
        if rngs is None:
            raise ValueError("dropout with deterministic=False needs a key: pass rngs=jax.random.key(...) "
                             "or deterministic=True for evaluation")
        if self.rate == 1.0:  # 2^32 does not fit the uint32 threshold; nothing is kept anyway
            return jnp.zeros_like(x)
        keep = keep_mask(rngs, x.shape, self.rate)
        return jnp.where(keep, x / (1.0 - self.rate), jnp.zeros((), x.dtype))
