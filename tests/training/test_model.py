import jax
import jax.numpy as jnp
import numpy as np
import pytest
from flax import nnx

from openevolve_genesys.training.model import CausalSelfAttention, FeedForward, build_model, count_parameters
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


class DotProductAttention(CausalSelfAttention):
    """The baseline as first written: token-major, jax.nn.dot_product_attention on the 3-D view."""

    def __call__(self, x):
        b, t, d = x.shape
        q, k, v = jnp.split(self.qkv(x).reshape(b, t, 3, self.n_heads, d // self.n_heads), 3, axis=2)
        y = jax.nn.dot_product_attention(q[:, :, 0], k[:, :, 0], v[:, :, 0], is_causal=True)
        return self.out(y.reshape(b, t, d))


def to_bfloat16(module):
    graph, state = nnx.split(module)
    return nnx.merge(graph, jax.tree.map(lambda p: p.astype(jnp.bfloat16), state))


def test_head_major_attention_equals_dot_product_attention():
    attention = CausalSelfAttention(48, 4, rngs=nnx.Rngs(3))
    reference = DotProductAttention(48, 4, rngs=nnx.Rngs(3))  # same seed: the same weights
    x = jax.random.normal(jax.random.key(0), (3, 17, 48))
    np.testing.assert_allclose(attention(x), reference(x), rtol=0, atol=1e-5)
    # bfloat16 forward pass: scores and softmax stay float32 in both, so they agree to bfloat16 rounding.
    y = to_bfloat16(attention)(x.astype(jnp.bfloat16))
    assert y.dtype == jnp.bfloat16
    np.testing.assert_allclose(np.float32(y), np.float32(to_bfloat16(reference)(x.astype(jnp.bfloat16))),
                               rtol=0, atol=2e-2)


def test_feed_forward_on_the_token_view_is_the_plain_composition():
    ffn = FeedForward(24, 0.1, rngs=nnx.Rngs(0))
    x = jax.random.normal(jax.random.key(1), (2, 5, 24))
    expected = ffn.down(jax.nn.gelu(ffn.up(x), approximate=False))
    np.testing.assert_allclose(ffn(x, deterministic=True, rngs=None), expected, rtol=0, atol=1e-5)


def test_training_gradients_match_the_dot_product_attention_model():
    # Same seed, same parameter order: the two models are the same network; with the same key they draw
    # the same dropout masks, so loss and gradients must agree up to float32 reduction order.
    tokens = jax.random.randint(jax.random.key(2), (2, 13), 0, 50)
    key = jax.random.key(4)

    def loss_and_grads(model):
        def loss(m):
            logits = m(tokens[:, :-1], deterministic=False, rngs=key)
            return -jnp.mean(jnp.take_along_axis(jax.nn.log_softmax(logits), tokens[:, 1:, None], axis=-1))
        return nnx.jit(nnx.value_and_grad(loss))(model)

    ours, ours_grads = loss_and_grads(build_model(50, 32, 2, 4, dropout=0.1))
    ref, ref_grads = loss_and_grads(build_model(50, 32, 2, 4, dropout=0.1, mixer=DotProductAttention))
    np.testing.assert_allclose(ours, ref, rtol=1e-6)
    for a, b in zip(jax.tree.leaves(ours_grads), jax.tree.leaves(ref_grads)):
        np.testing.assert_allclose(a, b, rtol=0, atol=1e-5)
