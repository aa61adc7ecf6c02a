"""The three evolvable framework programs: file contract, causality, stability, baseline equivalence, unit swaps."""

import ast
import importlib.util
import itertools
import sys
import textwrap
from pathlib import Path
from types import ModuleType

import jax
import jax.numpy as jnp
import numpy as np
import pytest
from flax import nnx

from openevolve_genesys.evaluation.program import replace_class
from openevolve_genesys.training.model import CausalSelfAttention, build_model, count_parameters

FRAMEWORKS_DIR = Path(__file__).resolve().parents[2] / "frameworks"
FRAMEWORKS = ["coefficient_dynamics", "test_time_regression", "matrix_mixer"]
START, END = "# EVOLVE-BLOCK-START", "# EVOLVE-BLOCK-END"
_module_ids = itertools.count()


def load_module(path: Path) -> ModuleType:
    spec = importlib.util.spec_from_file_location(f"_framework_under_test_{next(_module_ids)}", path)
    module = importlib.util.module_from_spec(spec)
    sys.modules[spec.name] = module
    spec.loader.exec_module(module)
    return module


def split_source(source: str) -> tuple[str, str, str]:
    """(before START, the block, after END); both markers must be whole lines, once each, in order."""
    lines = source.splitlines(keepends=True)
    starts = [i for i, line in enumerate(lines) if line.strip() == START]
    ends = [i for i, line in enumerate(lines) if line.strip() == END]
    assert source.count(START) == 1 and source.count(END) == 1 and len(starts) == 1 and len(ends) == 1
    assert starts[0] < ends[0]
    return "".join(lines[: starts[0]]), "".join(lines[starts[0] + 1: ends[0]]), "".join(lines[ends[0] + 1:])


def framework_source(name: str) -> str:
    return (FRAMEWORKS_DIR / f"{name}.py").read_text()


@pytest.fixture(scope="module", params=FRAMEWORKS)
def framework(request) -> tuple[str, ModuleType]:
    return request.param, load_module(FRAMEWORKS_DIR / f"{request.param}.py")


def mixer_of(module: ModuleType, d: int = 32, heads: int = 4, seed: int = 0) -> nnx.Module:
    return module.build_mixer(d, heads, rngs=nnx.Rngs(seed))


def assert_causal(mixer: nnx.Module) -> None:
    """Perturbing x after t leaves y up to t unchanged, and the Jacobian dy_t/dx_s is zero for every s > t."""
    apply = jax.jit(lambda inp: mixer(inp))
    x = jax.random.normal(jax.random.key(1), (2, 10, 32))
    y = apply(x)
    for t in (0, 4, 8):
        changed = x.at[:, t + 1:].add(3.0 * jax.random.normal(jax.random.key(t), x[:, t + 1:].shape))
        assert float(jnp.max(jnp.abs(apply(changed)[:, : t + 1] - y[:, : t + 1]))) < 1e-6
    jac = jax.jit(jax.jacrev(apply))(x[:1, :7])  # [1, T, D, 1, S, D]
    size = jnp.max(jnp.abs(jac[0, :, :, 0]), axis=(1, 3))  # [T, S]
    assert float(jnp.max(jnp.triu(size, k=1))) == 0.0
    assert float(jnp.min(jnp.diagonal(size))) > 0.0  # the check can see a dependence when there is one


def assert_finite_output_and_grads(mixer: nnx.Module, seq: int) -> None:
    # Eager on purpose: the frameworks share most primitives, and eager dispatch caches them across tests.
    x = jax.random.normal(jax.random.key(2), (2, seq, 32))
    y = mixer(x)
    assert y.shape == x.shape and y.dtype == x.dtype
    assert bool(jnp.all(jnp.isfinite(y)))
    param_grads, x_grad = nnx.grad(lambda m, inp: jnp.sum(m(inp) ** 2), argnums=(0, 1))(mixer, x)
    leaves = jax.tree.leaves(param_grads)
    assert leaves and all(bool(jnp.all(jnp.isfinite(g))) for g in leaves)
    assert any(float(jnp.max(jnp.abs(g))) > 0 for g in leaves)
    assert bool(jnp.all(jnp.isfinite(x_grad))) and float(jnp.max(jnp.abs(x_grad))) > 0


def copy_reference_weights(reference: CausalSelfAttention, mixer: nnx.Module) -> None:
    """Copies the fused QKV and output projections, found by kernel shape wherever the units keep them."""
    d = reference.out.kernel.shape[0]
    linears = [m for _, m in nnx.iter_modules(mixer) if isinstance(m, nnx.Linear)]
    by_shape = {tuple(m.kernel.shape): m for m in linears}
    assert len(linears) == 2 and set(by_shape) == {(d, 3 * d), (d, d)}
    for source, target in ((reference.qkv, by_shape[(d, 3 * d)]), (reference.out, by_shape[(d, d)])):
        target.kernel[...] = source.kernel[...]
        target.bias[...] = source.bias[...]


def to_bfloat16(module: nnx.Module) -> nnx.Module:
    """A copy with every parameter cast to bfloat16, as the training loop does for the forward pass."""
    graph, state = nnx.split(module)
    return nnx.merge(graph, jax.tree.map(lambda p: p.astype(jnp.bfloat16), state))


def n_params(module: nnx.Module) -> int:
    return sum(int(np.prod(p.shape)) for p in jax.tree.leaves(nnx.state(module, nnx.Param)))


def test_markers_once_and_only_imports_and_build_mixer_outside(framework):
    name, _ = framework
    head, block, tail = split_source(framework_source(name))
    head_nodes = ast.parse(head).body
    docstring = ast.get_docstring(ast.parse(head))
    assert docstring and all(s in docstring for s in ("May evolve:", "Must preserve:", "Cannot modify:"))
    assert all(isinstance(n, (ast.Import, ast.ImportFrom)) for n in head_nodes[1:])
    imported = {a.asname or a.name for n in head_nodes[1:] for a in n.names}
    assert imported == {"math", "jax", "jnp", "nnx"}
    [entry] = ast.parse(tail).body
    assert isinstance(entry, ast.FunctionDef) and entry.name == "build_mixer"
    assert ast.unparse(entry.body[-1]) == "return Mixer(d_model, n_heads, rngs=rngs)"


def test_block_is_units_with_the_shared_constructor(framework):
    name, _ = framework
    _, block, _ = split_source(framework_source(name))
    nodes = ast.parse(block).body
    assert all(isinstance(n, ast.ClassDef) for n in nodes)
    assert [n.name for n in nodes][-1] == "Mixer" and 4 <= len(nodes) - 1 <= 6
    for node in nodes:
        methods = {f.name: f for f in node.body if isinstance(f, ast.FunctionDef)}
        assert ast.get_docstring(node) and {"__init__", "__call__"} <= set(methods), node.name
        init = methods["__init__"].args
        assert [a.arg for a in init.args] == ["self", "d_model", "n_heads"], node.name
        assert [a.arg for a in init.kwonlyargs] == ["rngs"], node.name


def test_output_shape_dtype_finite_values_and_gradients(framework):
    mixer = mixer_of(framework[1])
    assert_finite_output_and_grads(mixer, 9)
    single = mixer(jnp.ones((1, 1, 32)))  # the shortest sequence: a 1 x 1 mask
    assert single.shape == (1, 1, 32) and bool(jnp.all(jnp.isfinite(single)))


def test_baseline_is_causal(framework):
    assert_causal(mixer_of(framework[1]))


@pytest.mark.parametrize("d, heads", [(32, 4), (24, 3), (96, 6)])
def test_parameter_count_is_the_reference_attention(framework, d, heads):
    mixer = nnx.eval_shape(lambda: mixer_of(framework[1], d, heads))
    assert n_params(mixer) == n_params(nnx.eval_shape(lambda: CausalSelfAttention(d, heads, rngs=nnx.Rngs(0))))
    assert n_params(mixer) == 4 * d * d + 4 * d


def test_indivisible_heads_are_refused_with_the_fix(framework):
    with pytest.raises(ValueError, match="not divisible by n_heads=3; choose n_heads dividing d_model"):
        mixer_of(framework[1], 32, 3)


def test_baseline_equals_causal_self_attention(framework):
    reference = CausalSelfAttention(24, 3, rngs=nnx.Rngs(0))
    mixer = mixer_of(framework[1], 24, 3, seed=5)
    copy_reference_weights(reference, mixer)
    x = jax.random.normal(jax.random.key(3), (2, 11, 24))
    np.testing.assert_allclose(mixer(x), reference(x), rtol=0, atol=1e-5)


def test_baseline_tracks_reference_in_bfloat16(framework):
    """The training loop runs the forward pass in bfloat16 on accelerators: logits/softmax must stay float32."""
    reference = CausalSelfAttention(32, 4, rngs=nnx.Rngs(0))
    mixer = mixer_of(framework[1], seed=5)
    copy_reference_weights(reference, mixer)
    x = jax.random.normal(jax.random.key(4), (2, 16, 32)).astype(jnp.bfloat16)
    y = to_bfloat16(mixer)(x)
    assert y.dtype == jnp.bfloat16 and bool(jnp.all(jnp.isfinite(y)))
    np.testing.assert_allclose(np.float32(y), np.float32(to_bfloat16(reference)(x)), rtol=0, atol=3e-2)


def test_two_layer_language_model_gives_finite_logits(framework):
    model = build_model(64, 32, 2, 4, mixer=framework[1].build_mixer)
    tokens = jax.random.randint(jax.random.key(5), (2, 12), 0, 64)
    logits = model(tokens, deterministic=False, rngs=jax.random.key(6))
    assert logits.shape == (2, 12, 64) and bool(jnp.all(jnp.isfinite(logits)))
    reference = build_model(64, 32, 2, 4)
    assert count_parameters(model) == count_parameters(reference)
    # The baseline draws its parameters in the reference's order, so the same seed gives the same network.
    np.testing.assert_allclose(model(tokens), reference(tokens), rtol=0, atol=1e-4)


FORGETTING_GATE_DYNAMICS = '''
class Dynamics(nnx.Module):
    """Forgetting Transformer gate: g_{t,s} = sum_{r=s+1..t} log sigmoid(w_h . x_r + c_h) <= 0, A_t = I."""

    def __init__(self, d_model, n_heads, *, rngs):
        self.gate = nnx.Linear(d_model, n_heads, rngs=rngs)

    def __call__(self, x, q, k):
        t = q.shape[2]
        cumulative = jnp.cumsum(jax.nn.log_sigmoid(self.gate(x).astype(jnp.float32)), axis=1).transpose(0, 2, 1)
        causal = jnp.tril(jnp.ones((t, t), dtype=bool))
        return q, k, jnp.where(causal, cumulative[..., :, None] - cumulative[..., None, :], 0.0)
'''

LINEAR_COEFFICIENTS = '''
class Coefficients(nnx.Module):
    """Linear attention: alpha_{t,s} = q_t.k_s exp(g_{t,s}) / max(|sum_s ...|, 1)."""

    def __init__(self, d_model, n_heads, *, rngs):
        del d_model, n_heads, rngs

    def __call__(self, q, k, g):
        t = q.shape[2]
        scores = jnp.einsum("bhtf,bhsf->bhts", q, k, preferred_element_type=jnp.float32)
        causal = jnp.tril(jnp.ones((t, t), dtype=bool))
        scores = jnp.where(causal, scores * jnp.exp(jnp.minimum(g, 0.0)), 0.0)
        return (scores / jnp.maximum(jnp.abs(scores.sum(-1, keepdims=True)), 1.0)).astype(q.dtype)
'''

EXPONENTIAL_FORGETTING_WEIGHTS = '''
class SampleWeights(nnx.Module):
    """Exponential forgetting with a learned rate per head: log gamma_i^(t) = -softplus(r_h) (t - i)."""

    def __init__(self, d_model, n_heads, *, rngs):
        self.rate = nnx.Param(jnp.zeros((n_heads,)))

    def __call__(self, x, k):
        t = k.shape[2]
        distance = jnp.maximum(jnp.arange(t)[:, None] - jnp.arange(t)[None, :], 0).astype(jnp.float32)
        return (-jax.nn.softplus(self.rate[...])[:, None, None] * distance)[None]
'''

WEIGHTED_LINEAR_MEMORY = '''
class Regressor(nnx.Module):
    """Linear function class, W_t = sum_{i<=t} gamma_i^(t) v_i k_i^T on L2-normalised keys, read at q_t."""

    def __init__(self, d_model, n_heads, *, rngs):
        del d_model, n_heads, rngs

    def __call__(self, k, v, q, log_gamma):
        t = q.shape[2]
        k = k / jnp.sqrt(jnp.sum(k * k, axis=-1, keepdims=True) + 1e-6)
        q = q / jnp.sqrt(jnp.sum(q * q, axis=-1, keepdims=True) + 1e-6)
        scores = jnp.einsum("bhtf,bhif->bhti", q, k, preferred_element_type=jnp.float32)
        causal = jnp.tril(jnp.ones((t, t), dtype=bool))
        scores = jnp.where(causal, scores * jnp.exp(jnp.minimum(log_gamma, 0.0)), 0.0)
        scores = scores / jnp.maximum(jnp.abs(scores.sum(-1, keepdims=True)), 1.0)
        return jnp.einsum("bhti,bhif->bhtf", scores.astype(v.dtype), v)
'''

TOEPLITZ_MATRIX = '''
class MatrixClass(nnx.Module):
    """Causal Toeplitz (a convolution): S_{t,s} = c_h[min(t - s, 63)], one learned kernel per head."""

    def __init__(self, d_model, n_heads, *, rngs):
        self.kernel = nnx.Param(0.02 * jax.random.normal(rngs.params(), (n_heads, 64)))

    def __call__(self, x, q, k):
        t = q.shape[2]
        offsets = jnp.clip(jnp.arange(t)[:, None] - jnp.arange(t)[None, :], 0, self.kernel.shape[1] - 1)
        return self.kernel[...][:, offsets][None].astype(jnp.float32)
'''

LINEAR_ROW_NORMALISATION = '''
class Normalisation(nnx.Module):
    """Linear rows: M = tril(S) / max(|row sum|, 1)."""

    def __init__(self, d_model, n_heads, *, rngs):
        del d_model, n_heads, rngs

    def __call__(self, scores):
        t = scores.shape[-1]
        causal = jnp.tril(jnp.ones((t, t), dtype=bool))
        scores = jnp.where(causal, scores.astype(jnp.float32), 0.0)
        return scores / jnp.maximum(jnp.abs(scores.sum(-1, keepdims=True)), 1.0)
'''

ALTERNATIVES = [
    ("coefficient_dynamics", "Dynamics", FORGETTING_GATE_DYNAMICS),
    ("coefficient_dynamics", "Coefficients", LINEAR_COEFFICIENTS),
    ("test_time_regression", "SampleWeights", EXPONENTIAL_FORGETTING_WEIGHTS),
    ("test_time_regression", "Regressor", WEIGHTED_LINEAR_MEMORY),
    ("matrix_mixer", "MatrixClass", TOEPLITZ_MATRIX),
    ("matrix_mixer", "Normalisation", LINEAR_ROW_NORMALISATION),
]


@pytest.mark.parametrize("name, unit, class_text", ALTERNATIVES, ids=[f"{n}-{u}" for n, u, _ in ALTERNATIVES])
def test_an_alternative_unit_drops_in(name, unit, class_text, tmp_path):
    source = framework_source(name)
    swapped = replace_class(source, unit, class_text)
    head, _, tail = split_source(swapped)
    assert (head, tail) == split_source(source)[::2]  # only the block changed
    path = tmp_path / f"{name}.py"
    path.write_text(swapped)
    mixer = mixer_of(load_module(path))
    expected_doc = ast.get_docstring(ast.parse(textwrap.dedent(class_text)).body[0])
    live = [m for _, m in nnx.iter_modules(mixer) if type(m).__name__ == unit]
    assert len(live) == 1 and type(live[0]).__doc__ == expected_doc  # the Mixer really uses the new class
    assert_causal(mixer)
    assert_finite_output_and_grads(mixer, 9)


NON_CAUSAL_NORMALISATION = '''
class Normalisation(nnx.Module):
    """A leak: row softmax over every position, future ones included."""

    def __init__(self, d_model, n_heads, *, rngs):
        del d_model, n_heads, rngs

    def __call__(self, scores):
        return jax.nn.softmax(scores.astype(jnp.float32), axis=-1)
'''


def test_a_leaking_unit_is_caught(tmp_path):
    path = tmp_path / "matrix_mixer.py"
    path.write_text(replace_class(framework_source("matrix_mixer"), "Normalisation", NON_CAUSAL_NORMALISATION))
    with pytest.raises(AssertionError):
        assert_causal(mixer_of(load_module(path)))
