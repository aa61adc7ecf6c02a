"""Hash dropout: exact keep rate, no correlations, unbiased, identity when deterministic."""

import jax
import jax.numpy as jnp
import numpy as np
import pytest

from openevolve_genesys.training.dropout import Dropout, keep_mask, mix32

SHAPE = (64, 128, 512)  # 4.2M elements: the binomial sd of a keep fraction is ~1.5e-4 at rate 0.1
N = int(np.prod(SHAPE))


def mask(key: jax.Array, rate: float = 0.1, shape: tuple[int, ...] = SHAPE) -> np.ndarray:
    return np.asarray(jax.jit(keep_mask, static_argnums=(1, 2))(key, shape, rate))


def correlation(a: np.ndarray, b: np.ndarray) -> float:
    a, b = a.astype(np.float64).ravel(), b.astype(np.float64).ravel()
    return float(np.corrcoef(a, b)[0, 1])


def test_mix32_is_the_murmur3_finaliser():
    # Reference values computed by hand from the murmur3 fmix32 definition (shifts 16/13/16, two multipliers).
    def fmix32(h: int) -> int:
        h ^= h >> 16
        h = (h * 0x85EBCA6B) & 0xFFFFFFFF
        h ^= h >> 13
        h = (h * 0xC2B2AE35) & 0xFFFFFFFF
        return h ^ (h >> 16)

    values = [0, 1, 2, 0xDEADBEEF, 0xFFFFFFFF, 123456789]
    assert np.asarray(mix32(jnp.asarray(values, jnp.uint32))).tolist() == [fmix32(v) for v in values]
    # A bijection: no collisions over a 2^20 block of consecutive inputs.
    block = np.asarray(mix32(jnp.arange(2**20, dtype=jnp.uint32)))
    assert len(np.unique(block)) == 2**20


@pytest.mark.parametrize("rate", [0.1, 0.5, 0.9])
def test_keep_fraction_is_the_rate_within_a_binomial_bound(rate):
    sd = np.sqrt(rate * (1 - rate) / N)
    for seed in range(3):
        kept = mask(jax.random.key(seed), rate).mean()
        assert abs(kept - (1 - rate)) < 5 * sd, (seed, kept)


def test_kept_counts_per_block_vary_as_binomial():
    # Clustered masks (long runs of kept or dropped elements) would inflate the spread between blocks.
    counts = mask(jax.random.key(7)).reshape(1024, -1).sum(axis=1)
    per_block = N // 1024
    expected_var = per_block * 0.9 * 0.1
    assert 0.8 < counts.var() / expected_var < 1.2  # sd of this ratio with 1024 blocks: ~0.044


@pytest.mark.parametrize("lag", [1, 2, 3, 16, 512, 4096, 65536])
def test_masks_of_nearby_elements_are_uncorrelated(lag):
    # Lags include the row length (512) and powers of two, where index hashes tend to fail.
    flat = mask(jax.random.key(1)).ravel()
    assert abs(correlation(flat[:-lag], flat[lag:])) < 5 / np.sqrt(N)


def test_masks_of_different_calls_layers_and_steps_are_uncorrelated():
    # Keys derived as the training loop derives them: fold_in(base, step), then split per layer and per call.
    base = jax.random.key(0)
    step0, step1 = jax.random.fold_in(base, 0), jax.random.fold_in(base, 1)
    layer_a, layer_b = jax.random.split(step0, 2)
    call_a, call_b, _ = jax.random.split(layer_a, 3)
    masks = [mask(k) for k in (call_a, call_b, layer_b, jax.random.split(step1, 2)[0])]
    for i in range(len(masks)):
        for j in range(i + 1, len(masks)):
            assert not np.array_equal(masks[i], masks[j])
            assert abs(correlation(masks[i], masks[j])) < 5 / np.sqrt(N), (i, j)


def test_same_key_gives_the_same_mask():
    np.testing.assert_array_equal(mask(jax.random.key(3), shape=(8, 16)), mask(jax.random.key(3), shape=(8, 16)))


def test_kept_values_are_scaled_and_the_expectation_is_preserved():
    rate = 0.25
    x = jax.random.normal(jax.random.key(11), (256, 1024)) + 2.0
    y = np.asarray(Dropout(rate)(x, deterministic=False, rngs=jax.random.key(12)))
    kept = y != 0
    np.testing.assert_allclose(y[kept], np.asarray(x)[kept] / (1 - rate), rtol=1e-6)
    # E[y] = E[x]: the mean over 262k elements agrees within 5 standard errors of the dropout noise.
    standard_error = np.sqrt(rate / (1 - rate) * np.mean(np.asarray(x) ** 2) / x.size)
    assert abs(y.mean() - float(x.mean())) < 5 * standard_error


def test_gradient_uses_the_forward_mask():
    rate = 0.3
    x = jax.random.normal(jax.random.key(2), (32, 64))
    layer = Dropout(rate)
    key = jax.random.key(5)
    grad = jax.grad(lambda inp: jnp.sum(layer(inp, deterministic=False, rngs=key)))(x)
    y = layer(x, deterministic=False, rngs=key)
    np.testing.assert_allclose(grad, np.where(np.asarray(y) != 0, 1 / (1 - rate), 0.0), rtol=1e-6)


def test_identity_when_deterministic_or_rate_zero_and_zeros_at_rate_one():
    x = jax.random.normal(jax.random.key(0), (4, 8)).astype(jnp.bfloat16)
    assert Dropout(0.5)(x, deterministic=True, rngs=None) is x
    assert Dropout(0.0)(x, deterministic=False, rngs=None) is x
    dropped = Dropout(1.0)(x, deterministic=False, rngs=jax.random.key(0))
    assert dropped.dtype == jnp.bfloat16 and not np.any(np.asarray(dropped, np.float32))
    assert Dropout(0.5)(x, deterministic=False, rngs=jax.random.key(0)).dtype == jnp.bfloat16


def test_bad_input_names_the_fix():
    with pytest.raises(ValueError, match=r"in \[0, 1\]"):
        Dropout(1.5)
    with pytest.raises(ValueError, match="needs a key"):
        Dropout(0.1)(jnp.ones((2, 2)), deterministic=False, rngs=None)
    # Shapes only: a tensor of more than 2^32 elements is refused before anything is allocated.
    with pytest.raises(ValueError, match="more than 2\\^32"):
        jax.eval_shape(lambda k: keep_mask(k, (2**16, 2**16 + 1), 0.1), jax.random.key(0))
