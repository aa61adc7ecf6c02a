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
from dataclasses import dataclass
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


Slot = tuple[int, int] | None  # (layer, n_layers) of a layer-aware factory; None for a plain one


@dataclass(frozen=True)
class MixerProbe:
    """What one mixer computes on the fixed probe: the numbers the functional hash rounds and the no-op screen
    (evaluation/noop.py) compares. ``L = sum(y * w)`` is the fixed loss, ``y_after_step`` the output after one
    SGD step on it; ``init_digests`` are the exact initial parameter values, sorted (names do not enter)."""

    y: np.ndarray
    grad_x: np.ndarray
    grad_params: tuple[np.ndarray, ...]
    y_after_step: np.ndarray
    init_digests: tuple[str, ...]


@dataclass(frozen=True)
class FunctionalProbe:
    """A program's probe at every layer slot it trains at (one ``None`` slot for a plain factory)."""

    options: tuple[int, int, int, int, int]  # d_model, n_heads, seq_len, batch, seed
    slots: dict[Slot, MixerProbe]

    def hash(self, mantissa_bits: int = 10) -> str:
        """The functional hash (``functional_hash``) of these numbers."""
        hashes = {slot: _hash_probe(probe, self.options, mantissa_bits) for slot, probe in self.slots.items()}
        if len(set(hashes.values())) == 1:  # the same function in every layer: a plain stack of it
            return next(iter(hashes.values()))
        h = hashlib.sha256(_LAYERED_VERSION)
        for (layer, n_layers), digest in hashes.items():
            h.update(f"{layer}/{n_layers}:{digest}|".encode())
        return h.hexdigest()


def functional_probe(mixer_factory: Callable[..., Any], *, d_model: int = 32, n_heads: int = 4, seq_len: int = 16,
                     batch: int = 2, seed: int = 0, depths: Sequence[int] | None = None) -> FunctionalProbe:
    """Run ``mixer_factory(d_model, n_heads, rngs=nnx.Rngs(seed))`` on the fixed probe, at every (layer, n_layers)
    of ``depths`` (default: its declared ``depths``) for a layer-aware factory. Executes the program's code:
    call it inside the sandbox."""
    from openevolve_genesys.training.model import layer_slots

    options = (d_model, n_heads, seq_len, batch, seed)
    slots = layer_slots(mixer_factory, depths)
    if slots is None:
        return FunctionalProbe(options, {None: _probe_one(mixer_factory, *options)})
    return FunctionalProbe(options, {
        (layer, n_layers): _probe_one(functools.partial(mixer_factory, layer=layer, n_layers=n_layers), *options)
        for layer, n_layers in slots})


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
    probe = functional_probe(mixer_factory, d_model=d_model, n_heads=n_heads, seq_len=seq_len, batch=batch,
                             seed=seed, depths=depths)
    return probe.hash(mantissa_bits)


def _hash_probe(probe: MixerProbe, options: tuple[int, ...], mantissa_bits: int) -> str:
    param_digests = sorted(_digest("param-grad", g, mantissa_bits) for g in probe.grad_params)
    d_model, n_heads, seq_len, batch, seed = options
    h = hashlib.sha256(_FUNCTIONAL_VERSION)
    h.update(repr((d_model, n_heads, seq_len, batch, mantissa_bits, seed)).encode())
    h.update(_digest("y", probe.y, mantissa_bits))
    h.update(_digest("dx", probe.grad_x, mantissa_bits))
    h.update(f"{len(param_digests)} params".encode())
    for digest in param_digests:
        h.update(digest)
    h.update(_digest("y-after-step", probe.y_after_step, mantissa_bits))
    return h.hexdigest()


def _probe_one(mixer_factory: Callable[..., Any], d_model: int, n_heads: int, seq_len: int, batch: int,
               seed: int) -> MixerProbe:
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
        init = sorted(_exact_digest(v) for v in jax.tree.leaves(params))
    return MixerProbe(np.asarray(y), np.asarray(grad_x), tuple(np.asarray(g) for g in jax.tree.leaves(grad_params)),
                      np.asarray(y_after), tuple(init))


def _exact_digest(array: Any) -> str:
    array = np.asarray(array)
    return hashlib.sha256(f"{array.shape}|{array.dtype.name}|".encode() + array.tobytes()).hexdigest()
