"""The generated combination template: every combinator passes every check, layers really differ, and the
checks and the functional hash see every layer; plain framework programs behave exactly as before."""

import pytest
from flax import nnx

from openevolve_genesys.evaluation.checks import CheckSettings, check_mixer, check_parameter_budget
from openevolve_genesys.evaluation.hashing import functional_hash
from openevolve_genesys.evaluation.program import (
    ProgramError, block_classes, enforce_template, framework_path, load_program, replace_class, split_block,
)
from openevolve_genesys.training.model import accepts_layer, build_model, layer_slots
from openevolve_genesys.training.profiles import get_profile
from openevolve_genesys.stages.template import GATE_VARIANTS, HEAD_SPLIT_VARIANTS, render, renamed_block
from stage_programs import LEAKY_COEFFICIENTS, member, with_plan

SMOKE = get_profile("smoke")
HASH = dict(d_model=16, seq_len=8, batch=1, depths=(2,))
TINY_HASH = dict(d_model=16, seq_len=8, batch=1)
UNCHANGED_HASH = "38282c97026ebc715a0fc2081d7cfc46c14a66f8c6e0216c6ff752b3830960f5"  # coefficient_dynamics
TINY = CheckSettings(d_model=16, n_heads=4, seq_len=8, batch=1)  # members run at half width: 8 channels, 2 heads


def test_members_are_frozen_outside_the_block_under_their_own_prefix(template):
    block = split_block(template).block
    assert block_classes(template) == ["Plan", "Gate", "HeadSplit", "Mixer"]
    assert "class M0_Dynamics" not in block and "class M0_Dynamics" in template
    # Both frameworks define Readout; each member keeps its own, and attributes such as nnx.Linear are untouched.
    assert "class M0_Readout" in template and "class M1_Readout" in template and "nnx.M0_" not in template
    assert "self.readout = M0_Readout(" in template
    # The stage may not edit a base design: an edit outside the block is reverted to the template.
    edited = template.replace("class M0_Readout", "class M0_Readout2", 1)
    fixed, notes = enforce_template(edited, template)
    assert fixed == template and notes


def test_renaming_leaves_strings_comments_and_attributes_alone():
    code = framework_path("coefficient_dynamics").read_text().replace(
        "self.readout = Readout(", "self.Readout = Readout(  # Readout\n            ")
    text = renamed_block(code, "m3")
    assert "self.Readout = M3_Readout(  # Readout" in text and "class M3_Mixer" in text


@pytest.mark.parametrize("cycle", [
    [("single", "m0")],
    [("gate", "m0", "m1")],
    [("heads", "m1", "base")],
    [("single", "m0"), ("single", "base")],
])
def test_every_combinator_passes_every_check(template, cycle):
    program = load_program(with_plan(template, cycle), framework=None)
    check_mixer(program.build_mixer, TINY, depths=(2,))
    counts = check_parameter_budget(program.build_mixer, SMOKE)
    assert all(abs(design / baseline - 1) < 0.1 for design, baseline in counts.values())


def test_the_static_gate_and_uneven_head_splits_pass_too(template):
    source = replace_class(with_plan(template, [("gate", "m0", "base"), ("heads", "m1", "m0")]), "Gate",
                           GATE_VARIANTS["static"])
    source = replace_class(source, "HeadSplit", HEAD_SPLIT_VARIANTS["share_0.25"])
    program = load_program(source)
    check_mixer(program.build_mixer, TINY, depths=(2,))
    check_parameter_budget(program.build_mixer, SMOKE)


def test_a_layer_pattern_places_different_members_in_different_layers(template):
    program = load_program(with_plan(template, [("single", "m0"), ("single", "m1"), ("gate", "base", "m1")]))
    model = build_model(64, 32, 4, 4, mixer=program.build_mixer)
    cells = [type(block.mixer.cell).__name__ for block in model.blocks]
    assert cells == ["M0_Mixer", "M1_Mixer", "Gate", "M0_Mixer"]
    assert type(model.blocks[2].mixer.cell.first).__name__ == "Base_Mixer"


def test_the_hash_sees_later_layers_and_a_uniform_stack_shares_the_plain_hash(template, pool):
    one = functional_hash(load_program(with_plan(template, [("single", "m0")])).build_mixer, **HASH)
    two = functional_hash(load_program(with_plan(template, [("single", "m0"), ("single", "m1")])).build_mixer, **HASH)
    assert one != two  # layer 0 is the same in both: only layer 1 tells them apart
    plain = load_program(pool[0].code).build_mixer
    assert functional_hash(plain, **TINY_HASH) == one  # so the stage reuses the base run's cached results


def test_a_leak_in_a_later_layer_is_found_and_named(template):
    leaky = member("m9", replace_class(framework_path("coefficient_dynamics").read_text(), "Coefficients",
                                       LEAKY_COEFFICIENTS))
    source = with_plan(render("t", "b", [leaky, member("base", framework_path("coefficient_dynamics").read_text())],
                              (2,), "base"), [("single", "base"), ("single", "m9")])
    program = load_program(source)
    check_mixer(lambda d, h, *, rngs: program.build_mixer(d, h, rngs=rngs, layer=0, n_layers=2), TINY)  # fine
    with pytest.raises(ProgramError, match="layer 1 of 2: .*future") as err:
        check_mixer(program.build_mixer, TINY)
    assert err.value.kind == "causality"


def test_plain_framework_programs_are_built_and_hashed_as_before():
    build = load_program(framework_path("coefficient_dynamics").read_text()).build_mixer
    assert not accepts_layer(build) and layer_slots(build) is None
    calls = []

    def spy(d_model, n_heads, *, rngs, **options):  # takes no `layer`: must be called exactly as before
        calls.append(options)
        return build(d_model, n_heads, rngs=rngs)

    build_model(64, 32, 2, 4, mixer=spy)
    assert calls == [{}, {}]
    # Computed by hashing.py before layer-aware programs existed: a plain program's cache entries stay valid.
    assert functional_hash(build, **TINY_HASH) == UNCHANGED_HASH


def test_a_layer_aware_factory_must_declare_its_depths():
    def factory(d_model, n_heads, *, rngs, layer=0, n_layers=1):
        return nnx.Linear(d_model, d_model, rngs=rngs)

    with pytest.raises(ProgramError, match="build_mixer.depths"):
        check_mixer(factory, TINY)
    factory.depths = (2,)
    assert layer_slots(factory) == [(0, 2), (1, 2)]
