"""Next-token cross-entropy through the tied output head.

At the seed profile's vocab (16384) and batch (64 x 128 tokens) the logits alone are 512 MiB in
float32, and their gradient as much again, and the head is ~75% of the FLOPs of the smallest rung.
With ``chunk_tokens > 0`` the head runs in token chunks and its gradient is formed in the same pass
as the loss: per chunk, logits -> softmax - onehot -> d hidden and d embedding. Each chunk's logits
live only in cache-sized pieces, and the head costs exactly its three matmuls (autodiff under
``jax.checkpoint`` recomputes the forward matmul: four; plain autodiff streams the 512 MiB buffers
through memory several times). On the 2-core benchmark machine a whole seed training step got 12%
faster at the smallest rung and 4% at the largest, against the unchunked head; 256-1024 tokens per
chunk were equally fast (experiments/benchmarks/README.md).
"""

from __future__ import annotations

from functools import partial

import jax
import jax.numpy as jnp


def _logits(hidden: jax.Array, embedding: jax.Array) -> jax.Array:
    return jnp.dot(hidden, embedding.T, preferred_element_type=jnp.float32)


def _nll_sum(hidden: jax.Array, embedding: jax.Array, targets: jax.Array, weights: jax.Array) -> jax.Array:
    logits = _logits(hidden, embedding)
    target_logit = jnp.take_along_axis(logits, targets[:, None], axis=-1)[:, 0]
    return jnp.sum((jax.nn.logsumexp(logits, axis=-1) - target_logit) * weights)


def _nll_and_grads(hidden: jax.Array, embedding: jax.Array, targets: jax.Array, weights: jax.Array):
    """Sum of weighted NLL of one chunk, with its gradients w.r.t. the chunk's hidden and the embedding."""
    logits = _logits(hidden, embedding)
    top = jnp.max(logits, axis=-1, keepdims=True)
    exp = jnp.exp(logits - top)
    total = jnp.sum(exp, axis=-1, keepdims=True)
    target_logit = jnp.take_along_axis(logits, targets[:, None], axis=-1)[:, 0]
    nll = jnp.sum((jnp.log(total[:, 0]) + top[:, 0] - target_logit) * weights)
    # d nll / d logits = softmax - onehot(target), per token times its weight.
    onehot = targets[:, None] == jnp.arange(logits.shape[-1], dtype=targets.dtype)[None, :]
    dlogits = (exp / total - onehot.astype(jnp.float32)) * weights[:, None]
    dlogits = dlogits.astype(hidden.dtype)
    d_hidden = jnp.dot(dlogits, embedding, preferred_element_type=jnp.float32).astype(hidden.dtype)
    d_embedding = jnp.dot(dlogits.T, hidden, preferred_element_type=jnp.float32)
    return nll, d_hidden, d_embedding


def _chunked(hidden: jax.Array, targets: jax.Array, chunk_tokens: int):
    """[N, D], [N] -> [n_chunks, C, D], [n_chunks, C], weights [n_chunks, C] (0 on padding)."""
    n, d = hidden.shape
    n_chunks = -(-n // chunk_tokens)
    pad = n_chunks * chunk_tokens - n
    weights = jnp.pad(jnp.ones((n,), jnp.float32), (0, pad)).reshape(n_chunks, chunk_tokens)
    hidden = jnp.pad(hidden, ((0, pad), (0, 0))).reshape(n_chunks, chunk_tokens, d)
    targets = jnp.pad(targets, (0, pad)).reshape(n_chunks, chunk_tokens)
    return hidden, targets, weights


@partial(jax.custom_vjp, nondiff_argnums=(3,))
def _fused_mean_nll(hidden: jax.Array, embedding: jax.Array, targets: jax.Array, chunk_tokens: int) -> jax.Array:
    # The value alone (evaluation): no gradient is formed.
    n = targets.shape[0]
    hs, ts, ws = _chunked(hidden, targets, chunk_tokens)
    sums = jax.lax.map(lambda xs: _nll_sum(xs[0], embedding, xs[1], xs[2]), (hs, ts, ws))
    return jnp.sum(sums) / n


def _fused_forward(hidden, embedding, targets, chunk_tokens):
    n, d = hidden.shape
    hs, ts, ws = _chunked(hidden, targets, chunk_tokens)

    def body(d_embedding, xs):
        nll, d_hidden, d_emb = _nll_and_grads(xs[0], embedding, xs[1], xs[2])
        return d_embedding + d_emb, (nll, d_hidden)

    d_embedding, (nll, d_hidden) = jax.lax.scan(body, jnp.zeros(embedding.shape, jnp.float32), (hs, ts, ws))
    d_hidden = d_hidden.reshape(-1, d)[:n] / n
    return jnp.sum(nll) / n, (d_hidden, (d_embedding / n).astype(embedding.dtype))


def _fused_backward(chunk_tokens, residuals, cotangent):
    d_hidden, d_embedding = residuals
    # The loss is a scalar, so the whole backward pass is a scale; integer targets get no cotangent.
    return (cotangent * d_hidden).astype(d_hidden.dtype), (cotangent * d_embedding).astype(d_embedding.dtype), None


_fused_mean_nll.defvjp(_fused_forward, _fused_backward)


def tied_cross_entropy(
    hidden: jax.Array, embedding: jax.Array, targets: jax.Array, *, chunk_tokens: int = 0
) -> jax.Array:
    """Mean NLL of ``targets`` [B, T] under logits ``hidden @ embedding.T``; ``hidden`` is [B, T, D].

    ``chunk_tokens > 0`` selects the fused chunked head (same value and gradient; reverse mode only).
    """
    d = hidden.shape[-1]
    hidden = hidden.reshape(-1, d)
    targets = targets.reshape(-1)
    n = targets.shape[0]
    if chunk_tokens <= 0 or chunk_tokens >= n:
        return _nll_sum(hidden, embedding, targets, jnp.ones((n,), jnp.float32)) / n
    return _fused_mean_nll(hidden, embedding, targets, chunk_tokens)
