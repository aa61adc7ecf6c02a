"""Next-token cross-entropy through the tied output head.

At the seed profile's vocab (16384) and batch (64 x 128 tokens) the logits alone are 512 MiB in
float32, and their gradient as much again: on a CPU the head and the softmax are memory-bound and
dominate the small rungs. ``chunk_tokens`` computes the head in token chunks under
``jax.checkpoint``, so each chunk's logits live only in cache-sized pieces, forward and backward.
"""

from __future__ import annotations

import jax
import jax.numpy as jnp


def _chunk_nll_sum(hidden: jax.Array, embedding: jax.Array, targets: jax.Array, weights: jax.Array) -> jax.Array:
    logits = jnp.dot(hidden, embedding.T, preferred_element_type=jnp.float32)
    target_logit = jnp.take_along_axis(logits, targets[:, None], axis=-1)[:, 0]
    return jnp.sum((jax.nn.logsumexp(logits, axis=-1) - target_logit) * weights)


def tied_cross_entropy(
    hidden: jax.Array, embedding: jax.Array, targets: jax.Array, *, chunk_tokens: int = 0
) -> jax.Array:
    """Mean NLL of ``targets`` [B, T] under logits ``hidden @ embedding.T``; ``hidden`` is [B, T, D]."""
    d = hidden.shape[-1]
    hidden = hidden.reshape(-1, d)
    targets = targets.reshape(-1)
    n = targets.shape[0]
    if chunk_tokens <= 0 or chunk_tokens >= n:
        return _chunk_nll_sum(hidden, embedding, targets, jnp.ones((n,), jnp.float32)) / n
    n_chunks = -(-n // chunk_tokens)
    pad = n_chunks * chunk_tokens - n
    weights = jnp.pad(jnp.ones((n,), jnp.float32), (0, pad))
    hidden = jnp.pad(hidden, ((0, pad), (0, 0))).reshape(n_chunks, chunk_tokens, d)
    targets = jnp.pad(targets, (0, pad)).reshape(n_chunks, chunk_tokens)
    weights = weights.reshape(n_chunks, chunk_tokens)
    per_chunk = jax.checkpoint(_chunk_nll_sum)

    def body(total, xs):
        return total + per_chunk(xs[0], embedding, xs[1], xs[2]), None

    total, _ = jax.lax.scan(body, jnp.zeros((), jnp.float32), (hidden, targets, weights))
    return total / n
