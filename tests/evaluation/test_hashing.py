import subprocess
import sys

import jax
import jax.numpy as jnp
import numpy as np
import pytest
from flax import nnx

from openevolve_genesys.evaluation.hashing import code_hash, functional_hash, round_mantissa
from openevolve_genesys.training.model import CausalSelfAttention

# ---- code hash ---------------------------------------------------------------------------------

SOURCE = '''
"""Module docstring."""
import math


def mix(x, scale=2.0):
    """Function docstring."""
    return x * scale + 1  # a comment
'''

REFORMATTED = '''
import math
def mix(x,
        scale = 2.0):
    # another comment, no docstring
    return (x*scale) + 1
'''


def test_code_hash_ignores_comments_docstrings_and_formatting() -> None:
    assert code_hash(SOURCE) == code_hash(REFORMATTED)
    assert code_hash(SOURCE) != code_hash(SOURCE.replace("scale=2.0", "scale=2.5"))
    assert code_hash(SOURCE) != code_hash(SOURCE.replace("x * scale + 1", "x * scale - 1"))
    # Conservative on purpose: a renamed argument is a different tree (the functional hash decides).
    assert code_hash(SOURCE) != code_hash(SOURCE.replace("scale", "factor"))


def test_code_hash_of_a_syntax_error_is_its_text_never_an_exception() -> None:
    broken = "def broken(:\n    pass\n"
    assert code_hash(broken) == code_hash(broken)
    assert code_hash(broken) != code_hash(broken + " ")  # unparsed text is hashed as written
    assert code_hash(broken) != code_hash("def broken():\n    pass\n")


# ---- rounding ----------------------------------------------------------------------------------

def test_round_mantissa_rounds_to_nearest_and_canonicalises() -> None:
    one = np.float32(1.0).view(np.uint32)
    ulp10 = 1 << 13  # one unit in the last place at 10 mantissa bits
    values = np.array([1.0, 1.0 + 2**-12, 1.0 + 2**-11, 1.0 + 3 * 2**-12, -0.0, np.nan, -np.nan, np.inf],
                      np.float32)
    got = round_mantissa(values, 10)
    assert list(got[:4]) == [one, one, one + ulp10, one + ulp10]
    assert got[4] == 0 and got[5] == got[6] == 0x7FC00000 and got[7] == 0x7F800000
    # A carry out of the mantissa moves to the next power of two.
    assert round_mantissa(np.float32(1.9999), 10)[()] == np.float32(2.0).view(np.uint32)
    assert np.array_equal(round_mantissa(values, 23), np.where(np.isnan(values), 0x7FC00000,
                                                                np.where(values == 0, 0, values.view(np.uint32))))
    with pytest.raises(ValueError, match="mantissa_bits"):
        round_mantissa(values, 24)


# ---- functional hash ---------------------------------------------------------------------------

class Attention(nnx.Module):
    """Manual causal softmax attention with knobs for the constants under test."""

    def __init__(self, d_model, n_heads, *, rngs, scale_factor=1.0, swap_sum=False):
        self.n_heads, self.scale_factor, self.swap_sum = n_heads, scale_factor, swap_sum
        self.qkv = nnx.Linear(d_model, 3 * d_model, rngs=rngs)
        self.out = nnx.Linear(d_model, d_model, rngs=rngs)

    def __call__(self, x):
        b, t, d = x.shape
        h = self.n_heads
        q, k, v = jnp.split(self.qkv(x).reshape(b, t, 3, h, d // h).transpose(2, 0, 3, 1, 4), 3)
        scores = (q[0] @ k[0].swapaxes(-1, -2)) / jnp.sqrt(d // h) * self.scale_factor
        scores = jnp.where(jnp.tril(jnp.ones((t, t), bool)), scores, -1e9)
        y = (jax.nn.softmax(scores, axis=-1) @ v[0]).transpose(0, 2, 1, 3).reshape(b, t, d)
        residual = 0.5 * x
        return residual + self.out(y) if self.swap_sum else self.out(y) + residual


class RenamedAttention(nnx.Module):
    # Same function as Attention(): every name differs, parameters are created in the same order.
    def __init__(self, width, heads, *, rngs):
        self.heads = heads
        self.project_in = nnx.Linear(width, 3 * width, rngs=rngs)
        self.project_out = nnx.Linear(width, width, rngs=rngs)

    def __call__(self, inputs):
        batch, length, width = inputs.shape
        per_head = width // self.heads
        packed = self.project_in(inputs).reshape(batch, length, 3, self.heads, per_head)
        queries, keys, values = jnp.split(packed.transpose(2, 0, 3, 1, 4), 3)
        logits = (queries[0] @ keys[0].swapaxes(-1, -2)) / jnp.sqrt(per_head) * 1.0
        logits = jnp.where(jnp.tril(jnp.ones((length, length), bool)), logits, -1e9)
        mixed = (jax.nn.softmax(logits, axis=-1) @ values[0]).transpose(0, 2, 1, 3).reshape(batch, length, width)
        return self.project_out(mixed) + 0.5 * inputs


class NormalisedLinearAttention(nnx.Module):
    def __init__(self, d_model, n_heads, *, rngs, eps=1e-6):
        self.eps = eps
        self.qkv = nnx.Linear(d_model, 3 * d_model, rngs=rngs)

    def __call__(self, x):
        q, k, v = jnp.split(jax.nn.elu(self.qkv(x)) + 1.0, 3, axis=-1)
        scores = jnp.tril(q @ k.swapaxes(-1, -2))
        return (scores @ v) / (scores.sum(-1, keepdims=True) + self.eps)


class GatedAttention(nnx.Module):
    """Equal at init for every ``gate_gain`` (the gate starts at zero); trains differently."""

    def __init__(self, d_model, n_heads, *, rngs, gate_gain=1.0):
        self.inner = Attention(d_model, n_heads, rngs=rngs)
        self.gate = nnx.Param(jnp.zeros((d_model,)))
        self.gate_gain = gate_gain

    def __call__(self, x):
        return self.inner(x) * (1.0 + self.gate_gain * self.gate[...])


def variant(cls, **kwargs):
    return lambda d_model, n_heads, *, rngs: cls(d_model, n_heads, rngs=rngs, **kwargs)


@pytest.fixture(scope="module")
def attention_hash() -> str:
    return functional_hash(Attention)


@pytest.fixture(scope="module")
def baseline_hash() -> str:
    return functional_hash(CausalSelfAttention)


def test_names_and_commutative_order_share_the_hash(attention_hash: str) -> None:
    assert attention_hash == functional_hash(RenamedAttention)
    assert attention_hash == functional_hash(variant(Attention, swap_sum=True))
    assert len(attention_hash) == 64


def test_constants_that_change_the_function_change_the_hash(attention_hash: str) -> None:
    assert attention_hash != functional_hash(variant(Attention, scale_factor=1.01))
    assert functional_hash(NormalisedLinearAttention) != functional_hash(variant(NormalisedLinearAttention, eps=1.0))


def test_gradients_separate_mixers_equal_at_init() -> None:
    x = jnp.asarray(np.random.default_rng(1).standard_normal((2, 16, 32)), jnp.float32)
    one, two = GatedAttention(32, 4, rngs=nnx.Rngs(0)), GatedAttention(32, 4, rngs=nnx.Rngs(0), gate_gain=2.0)
    outputs = nnx.jit(lambda a, b, inputs: (a(inputs), b(inputs)))(one, two, x)
    assert np.array_equal(*outputs)  # the premise: identical outputs before training
    assert functional_hash(GatedAttention) != functional_hash(variant(GatedAttention, gate_gain=2.0))


def test_the_seed_is_part_of_the_hash(baseline_hash: str) -> None:
    assert baseline_hash != functional_hash(CausalSelfAttention, seed=1)


def test_wrong_output_shape_names_the_problem() -> None:
    class Shrinks(nnx.Module):
        def __init__(self, d_model, n_heads, *, rngs):
            self.proj = nnx.Linear(d_model, d_model // 2, rngs=rngs)

        def __call__(self, x):
            return self.proj(x)

    with pytest.raises(ValueError, match="same shape"):
        functional_hash(Shrinks)


def test_functional_hash_is_deterministic_across_processes(baseline_hash: str) -> None:
    # This process has compiled other mixers before; a fresh interpreter has not: they must agree.
    script = ("from openevolve_genesys.evaluation.hashing import functional_hash;"
              "from openevolve_genesys.training.model import CausalSelfAttention;"
              "print(functional_hash(CausalSelfAttention))")
    child = subprocess.run([sys.executable, "-c", script], capture_output=True, text=True, check=True, timeout=180)
    assert child.stdout.strip() == baseline_hash
