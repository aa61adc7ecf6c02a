"""Pool members and combination templates for the stage tests, built from the frameworks (tiny, no training)."""

from pathlib import Path

from openevolve_genesys.evaluation.program import framework_path, replace_class
from openevolve_genesys.mutations.catalogue import catalogue
from openevolve_genesys.stages.pool import PoolMember
from openevolve_genesys.stages.template import plan_text

ROOT = Path(__file__).resolve().parents[2]

# A Coefficients unit without the causal mask: the leak the checks must find in whichever layer holds it.
LEAKY_COEFFICIENTS = '''class Coefficients(nnx.Module):
    """(q, k, g) -> alpha over every position, past and future (not causal)."""

    def __init__(self, d_model: int, n_heads: int, *, rngs: nnx.Rngs):
        del d_model, n_heads, rngs

    def __call__(self, q: jax.Array, k: jax.Array, g: jax.Array) -> jax.Array:
        logits = jnp.einsum("bhtf,bhsf->bhts", q, k) / math.sqrt(q.shape[-1])
        return jax.nn.softmax(logits, axis=-1)'''


def alternative(framework: str, unit: str, name: str) -> str:
    text = next(a.text for a in catalogue(framework)[unit] if a.name == name)
    return replace_class(framework_path(framework).read_text(), unit, text)


def member(key: str, code: str, utility: float = 0.0) -> PoolMember:
    return PoolMember(key=key, design_id=f"id-{key}", utility=utility, confidence=0.9, learning_rate=None,
                      operator="test", code=code)


def with_plan(template: str, cycle) -> str:
    return replace_class(template, "Plan", plan_text(cycle))
