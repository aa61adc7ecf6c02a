import jax
import jax.numpy as jnp
import numpy as np
import pytest

from openevolve_genesys.training.loss import tied_cross_entropy


def reference(hidden, embedding, targets):
    logits = hidden @ embedding.T
    return jnp.mean(jax.nn.logsumexp(logits, -1) - jnp.take_along_axis(logits, targets[..., None], -1)[..., 0])


@pytest.mark.parametrize("chunk", [0, 7, 16, 48, 1000])
def test_chunked_head_matches_the_full_head_in_value_and_gradient(chunk):
    k1, k2, k3 = jax.random.split(jax.random.key(0), 3)
    hidden = jax.random.normal(k1, (3, 16, 8))
    embedding = jax.random.normal(k2, (40, 8))
    targets = jax.random.randint(k3, (3, 16), 0, 40)
    want, want_grads = jax.value_and_grad(reference, argnums=(0, 1))(hidden, embedding, targets)
    got, got_grads = jax.value_and_grad(
        lambda h, e: tied_cross_entropy(h, e, targets, chunk_tokens=chunk), argnums=(0, 1))(hidden, embedding)
    np.testing.assert_allclose(got, want, rtol=1e-5)
    for g, w in zip(got_grads, want_grads):
        np.testing.assert_allclose(g, w, rtol=1e-4, atol=1e-6)
