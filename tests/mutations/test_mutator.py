"""propose(): honours the unit, always changes it, and its SEARCH/REPLACE applies with OpenEvolve's own diff code."""

import random

import pytest
from openevolve.utils.code_utils import apply_diff_blocks, extract_diffs

from openevolve_genesys.evaluation.checks import CheckSettings, check_mixer, check_parameter_budget
from openevolve_genesys.evaluation.program import FRAMEWORKS, framework_path, load_program, replace_class
from openevolve_genesys.mutations import design_space_size, enumerate_designs, identify, propose
from openevolve_genesys.mutations.catalogue import catalogue
from openevolve_genesys.mutations.client import format_mutation
from openevolve_genesys.training.profiles import get_profile

TINY = CheckSettings(d_model=16, n_heads=2, seq_len=8, batch=1)


def seed(framework: str) -> str:
    return framework_path(framework).read_text()


@pytest.mark.parametrize("framework", FRAMEWORKS)
def test_propose_honours_the_unit_and_never_repeats_the_current_alternative(framework):
    rng = random.Random(0)
    source = enumerate_designs(framework, 1, random.Random(1))[0].source
    before = identify(source, framework)
    for unit, alternatives in catalogue(framework).items():
        picked = set()
        for _ in range(8 * len(alternatives)):
            mutation = propose(source, framework, unit=unit, rng=rng)
            after = identify(mutation.child_source, framework)
            assert mutation.unit == unit and mutation.previous == before[unit]
            assert after[unit] != before[unit] and mutation.operator == f"{unit}:{after[unit]}"
            assert {u: n for u, n in after.items() if u != unit} == {u: n for u, n in before.items() if u != unit}
            picked.add(after[unit])
        assert picked == {a.name for a in alternatives} - {before[unit]}  # every other alternative is reachable


@pytest.mark.parametrize("framework", FRAMEWORKS)
def test_the_diff_applies_with_openevolve_and_reproduces_the_child(framework):
    rng = random.Random(2)
    source = seed(framework)
    units = set()
    for _ in range(12):
        mutation = propose(source, framework, unit=None, rng=rng)
        units.add(mutation.unit)
        blocks = extract_diffs(format_mutation(mutation))
        assert blocks == [(mutation.search, mutation.replace)]
        child, applied = apply_diff_blocks(source, blocks)
        assert applied == 1 and child == mutation.child_source
        assert child == replace_class(source, mutation.unit, mutation.replace)
        source = child  # chains of mutations keep applying: SEARCH is always the text as it stands
    assert len(units) > 1  # unit=None draws different units


def test_a_custom_unit_is_reported_and_any_alternative_may_replace_it():
    framework = "matrix_mixer"
    source = seed(framework)
    plain = catalogue(framework)["Readout"][0].text
    custom = plain.replace("return self.out(", "return 0.5 * self.out(")
    edited = replace_class(source, "Readout", custom)
    assert identify(edited, framework)["Readout"] == "custom"
    reformatted = replace_class(source, "Readout", plain.replace('"""(M', '"""A reworded docstring. (M'))
    assert identify(reformatted, framework)["Readout"] == "plain"  # docstrings and layout do not count
    names = {propose(edited, framework, unit="Readout", rng=random.Random(i)).operator for i in range(40)}
    assert names == {f"Readout:{a.name}" for a in catalogue(framework)["Readout"]}


def test_bad_requests_name_the_problem():
    with pytest.raises(ValueError, match="no unit 'Mixer'.*units: KeyValueMap"):
        propose(seed("test_time_regression"), "test_time_regression", unit="Mixer", rng=random.Random(0))
    renamed = seed("coefficient_dynamics").replace("class FeatureMap(", "class FeatureMapping(")
    with pytest.raises(ValueError, match="lacks the unit class FeatureMap"):
        propose(renamed, "coefficient_dynamics", unit="FeatureMap", rng=random.Random(0))
    others = {propose(renamed, "coefficient_dynamics", unit=None, rng=random.Random(i)).unit for i in range(30)}
    assert others == {"Projections", "Dynamics", "Coefficients", "Readout"}  # the units still there
    with pytest.raises(ValueError, match="n must be in"):
        enumerate_designs("matrix_mixer", design_space_size("matrix_mixer") + 1, random.Random(0))


@pytest.mark.parametrize("framework", FRAMEWORKS)
def test_random_multi_unit_designs_are_valid(framework):
    designs = enumerate_designs(framework, 10, random.Random(3))
    assert len({tuple(d.choices.values()) for d in designs}) == 10
    assert sum(sum(a != alts[0].name for a, alts in zip(d.choices.values(), catalogue(framework).values())) >= 2
               for d in designs) >= 5  # most draws swap several units at once
    for design in designs:
        assert identify(design.source, framework) == design.choices
        program = load_program(design.source, framework=framework, policy="reject")
        check_mixer(program.build_mixer, TINY)
        check_parameter_budget(program.build_mixer, get_profile("smoke"))
