"""Every catalogue alternative is a valid unit: contract checks, bfloat16, and the parameter budget of any combination.

The budget is proven for the whole product space at once: each unit's alternatives only add parameters
(checked), mixer parameters add up across units (checked), so the design taking every unit's largest
alternative bounds every design; that design passes ``check_parameter_budget`` on the smoke and seed
ladders, and so does each alternative alone and every combination.
"""

import math
import re

import jax
import jax.numpy as jnp
import numpy as np
import pytest
from flax import nnx

from openevolve_genesys.evaluation.checks import CheckSettings, check_mixer, check_parameter_budget
from openevolve_genesys.evaluation.program import FRAMEWORKS, framework_path, load_program, replace_class
from openevolve_genesys.mutations import design_space_size, identify
from openevolve_genesys.mutations.catalogue import catalogue
from openevolve_genesys.mutations.units import class_texts, normalise
from openevolve_genesys.training.profiles import get_profile

PROFILES = ("smoke", "seed")
TINY = CheckSettings(d_model=16, n_heads=2, seq_len=8, batch=1)


def swap(framework: str, unit: str, text: str) -> str:
    return replace_class(framework_path(framework).read_text(), unit, text)


def mixer_params(build_mixer, d_model: int, n_heads: int) -> int:
    mixer = nnx.eval_shape(lambda: build_mixer(d_model, n_heads, rngs=nnx.Rngs(0)))
    return sum(int(np.prod(p.shape)) for p in jax.tree.leaves(nnx.state(mixer, nnx.Param)))


def rung_shapes() -> list[tuple[int, int]]:
    return sorted({(r.d_model, r.n_heads) for name in PROFILES for r in get_profile(name).rungs})


@pytest.mark.parametrize("framework", FRAMEWORKS)
def test_design_space_holds_hundreds_of_designs(framework):
    units = catalogue(framework)
    assert design_space_size(framework) == math.prod(len(a) for a in units.values()) >= 300
    assert all(len(alternatives) >= 4 for alternatives in units.values())


@pytest.mark.parametrize("framework", FRAMEWORKS)
def test_catalogue_covers_the_framework_units_with_its_baseline_first(framework):
    source = framework_path(framework).read_text()
    texts = class_texts(source)
    units = catalogue(framework)
    assert list(units) == [name for name in texts if name != "Mixer"]
    for unit, alternatives in units.items():
        assert alternatives[0].text == texts[unit]
        assert len({normalise(a.text) for a in alternatives}) == len(alternatives)
        assert all(a.unit == unit and not re.search(r"@[A-Z][A-Z0-9_]*@", a.text) for a in alternatives)
    assert set(identify(source, framework).values()) == {alternatives[0].name for alternatives in units.values()}


@pytest.mark.parametrize("framework", FRAMEWORKS)
def test_every_alternative_passes_the_mixer_checks_alone(framework):
    """check_mixer (shape, dtype, finite values and gradients, causality) and a bfloat16 forward pass."""
    x16 = jax.random.normal(jax.random.key(0), (1, 8, 16)).astype(jnp.bfloat16)
    for unit, alternatives in catalogue(framework).items():
        for alternative in alternatives[1:]:
            program = load_program(swap(framework, unit, alternative.text), framework=framework, policy="reject")
            assert identify(program.source, framework)[unit] == alternative.name
            check_mixer(program.build_mixer, TINY)
            mixer = program.build_mixer(16, 2, rngs=nnx.Rngs(0))
            graph, state = nnx.split(mixer)
            y = nnx.merge(graph, jax.tree.map(lambda p: p.astype(jnp.bfloat16), state))(x16)
            assert y.dtype == jnp.bfloat16 and bool(jnp.all(jnp.isfinite(y))), f"{unit}:{alternative.name}"


@pytest.mark.parametrize("framework", FRAMEWORKS)
def test_any_combination_stays_within_the_parameter_budget(framework):
    base = framework_path(framework).read_text()
    shapes = rung_shapes()
    baseline = {shape: mixer_params(load_program(base).build_mixer, *shape) for shape in shapes}
    largest, added = base, {shape: 0 for shape in shapes}
    for unit, alternatives in catalogue(framework).items():
        deltas = []
        for alternative in alternatives:
            build = load_program(swap(framework, unit, alternative.text)).build_mixer
            deltas.append({shape: mixer_params(build, *shape) - baseline[shape] for shape in shapes})
        assert all(d >= 0 for delta in deltas for d in delta.values()), f"{unit}: an alternative removes parameters"
        pick = max(range(len(alternatives)), key=lambda i: sum(deltas[i].values()))
        assert all(deltas[pick][s] == max(delta[s] for delta in deltas) for s in shapes), f"{unit}: no single largest"
        largest = replace_class(largest, unit, alternatives[pick].text)
        added = {s: added[s] + deltas[pick][s] for s in shapes}
    build = load_program(largest, framework=framework).build_mixer
    assert {s: mixer_params(build, *s) - baseline[s] for s in shapes} == added  # parameters add up over units
    for profile in PROFILES:
        counts = check_parameter_budget(build, get_profile(profile))
        assert any(design > base_n for design, base_n in counts.values())  # the bound is not vacuous
