import jax
import jax.numpy as jnp
import numpy as np
import pytest
from flax import nnx

from openevolve_genesys.training.model import CausalSelfAttention, build_model, count_parameters
from openevolve_genesys.training.profiles import PROFILES


def expected_non_embedding(d: int, layers: int) -> int:
    # Per block: fused QKV + out projection (4d^2 + 4d), FFN (8d^2 + 5d), two LayerNorms (4d); plus the final LayerNorm.
    return layers * (12 * d * d + 13 * d) + 2 * d


@pytest.mark.parametrize("profile", ["seed", "smoke", "genesys"])
def test_parameter_counts_match_the_profile_table(profile):
    p = PROFILES[profile]
    for rung in p.rungs[:4]:
        model = nnx.eval_shape(lambda: build_model(p.vocab_size, rung.d_model, rung.n_layers, rung.n_heads))
        n, total = count_parameters(model)
        assert n == expected_non_embedding(rung.d_model, rung.n_layers)
        assert total == n + p.vocab_size * rung.d_model  # tied head counted once


def test_seed_ladder_sizes_are_the_seed_projects():
    rungs = PROFILES["seed"].rungs
    assert [(r.d_model, r.n_layers, r.n_heads) for r in rungs] == [(96, 4, 4), (128, 4, 4), (128, 6, 4), (192, 6, 6)]
    n = [expected_non_embedding(r.d_model, r.n_layers) for r in rungs]
    assert n == sorted(n) and n[-1] / n[0] > 5


def test_logits_shape_and_tied_head():
    model = build_model(50, 32, 2, 4)
    tokens = jnp.arange(2 * 12).reshape(2, 12) % 50
    logits = model(tokens)
    assert logits.shape == (2, 12, 50) and logits.dtype == jnp.float32
    h = model.hidden(tokens)
    np.testing.assert_allclose(logits, h @ model.embed.embedding[...].T, rtol=1e-5, atol=1e-5)


def future_leak(model, tokens, t):
    """Largest change of logits at positions <= t when every token after t is replaced."""
    changed = tokens.at[:, t + 1:].set((tokens[:, t + 1:] + 7) % 50)
    return float(jnp.max(jnp.abs(model(tokens)[:, : t + 1] - model(changed)[:, : t + 1])))


class LeakyAttention(CausalSelfAttention):
    """Full (non-causal) attention: the bug the causality check must catch."""

    def __call__(self, x):
        b, t, d = x.shape
        q, k, v = jnp.split(self.qkv(x).reshape(b, t, 3, self.n_heads, d // self.n_heads), 3, axis=2)
        y = jax.nn.dot_product_attention(q[:, :, 0], k[:, :, 0], v[:, :, 0], is_causal=False)
        return self.out(y.reshape(b, t, d))


def test_baseline_is_causal_and_a_leak_is_caught():
    tokens = jax.random.randint(jax.random.key(1), (2, 16), 0, 50)
    assert future_leak(build_model(50, 32, 2, 4), tokens, 7) < 1e-5
    assert future_leak(build_model(50, 32, 2, 4, mixer=LeakyAttention), tokens, 7) > 1e-3


def test_dropout_only_in_training_mode():
    model = build_model(50, 32, 2, 4, dropout=0.5)
    tokens = jnp.zeros((1, 8), jnp.int32)
    np.testing.assert_array_equal(model(tokens), model(tokens))
    a = model(tokens, deterministic=False, rngs=jax.random.key(0))
    b = model(tokens, deterministic=False, rngs=jax.random.key(1))
    assert not np.allclose(a, b)
