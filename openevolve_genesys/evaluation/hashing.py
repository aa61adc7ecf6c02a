"""Two hashes that decide whether a design was already evaluated.

``code_hash`` is cheap and conservative: equal hashes mean the same syntax tree once comments,
docstrings and formatting are gone, so a known source is answered without building anything.
It does not canonicalise names or operand order, because a false match there would hand one
design another design's fitness.

``functional_hash`` (Gillard et al. 2023) is the one that decides equality of designs: it builds the
mixer with a fixed key, runs it on fixed inputs, takes one fixed gradient step and hashes the
rounded numbers. Renamed variables, renamed attributes, comments, formatting and reordered
commutative terms (``a + b`` vs ``b + a``, exact in IEEE arithmetic) share it; a changed constant that
moves the function by more than the rounding does not. It executes the program's code, so call it
inside the sandbox. A layer-aware program (a hybrid stack, whose ``build_mixer`` takes ``layer`` and
``n_layers``) is hashed layer by layer at every depth it trains at: one that builds the same function
in every layer shares the hash (and so the cached results) of a plain program computing it.
"""

from __future__ import annotations

import ast
import functools
import hashlib
from typing import Any, Callable, Sequence

import numpy as np

_FUNCTIONAL_VERSION = b"genesys-functional-hash-v1"
_LAYERED_VERSION = b"genesys-layered-hash-v1"
_CODE_VERSION = b"genesys-code-hash-v1"
_UNPARSED_VERSION = b"genesys-unparsed-text-v1"
_SGD_LEARNING_RATE = 0.1


def _strip_docstrings(tree: ast.AST) -> ast.AST:
    for node in ast.walk(tree):
        if isinstance(node, (ast.Module, ast.ClassDef, ast.FunctionDef, ast.AsyncFunctionDef)):
            body = node.body
            if body and isinstance(body[0], ast.Expr) and isinstance(body[0].value, ast.Constant) \
                    and isinstance(body[0].value.value, str):
                node.body = body[1:] or [ast.Pass()]
    return tree


def code_hash(source: str) -> str:
    """SHA-256 of the docstring-free AST. Never raises: a source Python cannot parse (a syntax error, null
    bytes, nesting deep enough to exhaust the parser) is hashed by its text under another tag, so equal
    broken texts share a hash and none shares a parseable program's."""
    try:
        tree = _strip_docstrings(ast.parse(source))
        dump = ast.dump(tree, annotate_fields=False, include_attributes=False)
    except (SyntaxError, ValueError, RecursionError, MemoryError):
        text = source.encode("utf-8", "surrogatepass")
        return hashlib.sha256(_UNPARSED_VERSION + b"\0" + text).hexdigest()
    return hashlib.sha256(_CODE_VERSION + b"\0" + dump.encode("utf-8", "surrogatepass")).hexdigest()


def round_mantissa(values: Any, mantissa_bits: int) -> np.ndarray:
    """float32 rounded to ``mantissa_bits`` explicit mantissa bits (round to nearest, ties away
    from zero), returned as its uint32 bit pattern. NaNs become one canonical NaN and -0 becomes +0,
    so that only the value, not its encoding, reaches the hash. A carry out of the mantissa
    correctly bumps the exponent (and the largest finite values round to infinity)."""
    if not 0 <= mantissa_bits <= 23:
        raise ValueError(f"mantissa_bits must be in [0, 23] (float32 has 23), got {mantissa_bits}")
    x = np.ascontiguousarray(values, dtype=np.float32)
    bits = x.view(np.uint32).copy()
    drop = 23 - mantissa_bits
    finite = np.isfinite(x)
    if drop:
        half, mask = np.uint32(1 << (drop - 1)), np.uint32(~((1 << drop) - 1) & 0xFFFFFFFF)
        bits[finite] = (bits[finite] + half) & mask
    bits[np.isnan(x)] = np.uint32(0x7FC00000)
    bits[bits == np.uint32(0x80000000)] = np.uint32(0)
    return bits


def _digest(tag: str, array: Any, mantissa_bits: int) -> bytes:
    array = np.asarray(array)
    if not (np.issubdtype(array.dtype, np.floating) or array.dtype.name == "bfloat16"):
        raise TypeError(f"functional_hash expects floating outputs and gradients, got {tag} with dtype "
                        f"{array.dtype}; the mixer must return a float array")
    header = f"{tag}|{array.shape}|{array.dtype.name}|".encode()
    rounded = round_mantissa(array.astype(np.float32), mantissa_bits).astype("<u4")
    return hashlib.sha256(header + rounded.tobytes()).digest()


def functional_hash(
    mixer_factory: Callable[..., Any],
    *,
    d_model: int = 32,
    n_heads: int = 4,
    seq_len: int = 16,
    batch: int = 2,
    mantissa_bits: int = 10,
    seed: int = 0,
    depths: Sequence[int] | None = None,
) -> str:
    """Hash of what ``mixer_factory(d_model, n_heads, rngs=nnx.Rngs(seed))`` computes and how it learns.

    A layer-aware factory is hashed at every (layer, n_layers) of ``depths`` (default: its declared
    ``depths``); equal hashes in every layer give that hash, else a hash of the ordered layer hashes.

    Hashed, each rounded to ``mantissa_bits`` with shape and dtype: the output y on fixed inputs x;
    dL/dx and the parameter gradients of the fixed loss L = sum(y * w); the output after one SGD step
    on L. Parameter gradients enter as a sorted multiset, so renaming attributes does not change the
    hash; creating parameters in a different order does (their random init differs). The gradients
    separate mixers that agree at init but train differently (e.g. a zero-initialised gate).
    Computed on the CPU at highest matmul precision so GPU and CPU workers agree; rare elements
    close to a rounding boundary can still split reassociated but equal functions (a cache miss,
    never a false hit beyond the rounding tolerance).
    """
    from openevolve_genesys.training.model import layer_slots

    options = dict(d_model=d_model, n_heads=n_heads, seq_len=seq_len, batch=batch, mantissa_bits=mantissa_bits,
                   seed=seed)
    slots = layer_slots(mixer_factory, depths)
    if slots is None:
        return _hash_one(mixer_factory, **options)
    hashes = [_hash_one(functools.partial(mixer_factory, layer=layer, n_layers=n_layers), **options)
              for layer, n_layers in slots]
    if len(set(hashes)) == 1:  # the same function in every layer: a plain stack of it
        return hashes[0]
    h = hashlib.sha256(_LAYERED_VERSION)
    for (layer, n_layers), digest in zip(slots, hashes):
        h.update(f"{layer}/{n_layers}:{digest}|".encode())
    return h.hexdigest()


def _hash_one(mixer_factory: Callable[..., Any], *, d_model: int, n_heads: int, seq_len: int, batch: int,
              mantissa_bits: int, seed: int) -> str:
    import jax
    import jax.numpy as jnp
    from flax import nnx

    rng = np.random.default_rng(seed)
    x_np = rng.standard_normal((batch, seq_len, d_model)).astype(np.float32)
    w_np = rng.standard_normal((batch, seq_len, d_model)).astype(np.float32)
    cpu = jax.devices("cpu")[0]
    with jax.default_device(cpu), jax.default_matmul_precision("highest"):
        mixer = mixer_factory(d_model, n_heads, rngs=nnx.Rngs(seed))
        graphdef, params, rest = nnx.split(mixer, nnx.Param, ...)
        x, w = jnp.asarray(x_np), jnp.asarray(w_np)

        def loss(p: Any, inputs: jax.Array) -> tuple[jax.Array, jax.Array]:
            y = nnx.merge(graphdef, p, rest)(inputs)
            if getattr(y, "shape", None) != inputs.shape:
                raise ValueError(f"the mixer must map {inputs.shape} to the same shape, got "
                                 f"{getattr(y, 'shape', type(y).__name__)}")
            return jnp.sum(y.astype(jnp.float32) * w), y

        @jax.jit  # one compilation is much faster than dispatching every primitive eagerly
        def probe(p: Any, inputs: jax.Array) -> tuple[jax.Array, Any, jax.Array, jax.Array]:
            (_, y), (grad_p, grad_x) = jax.value_and_grad(loss, argnums=(0, 1), has_aux=True)(p, inputs)
            stepped = jax.tree.map(lambda v, g: v - _SGD_LEARNING_RATE * g, p, grad_p)
            return y, grad_p, grad_x, loss(stepped, inputs)[1]

        y, grad_params, grad_x, y_after = probe(params, x)

    param_digests = sorted(_digest("param-grad", g, mantissa_bits) for g in jax.tree.leaves(grad_params))
    h = hashlib.sha256(_FUNCTIONAL_VERSION)
    h.update(repr((d_model, n_heads, seq_len, batch, mantissa_bits, seed)).encode())
    h.update(_digest("y", y, mantissa_bits))
    h.update(_digest("dx", grad_x, mantissa_bits))
    h.update(f"{len(param_digests)} params".encode())
    for digest in param_digests:
        h.update(digest)
    h.update(_digest("y-after-step", y_after, mantissa_bits))
    return h.hexdigest()
