import sys

import pytest

from openevolve_genesys.evaluation.program import (
    END, START, ProgramError, block_classes, detect_framework, enforce_template, framework_path, load_program,
)

TEMPLATE = framework_path("coefficient_dynamics").read_text()


def test_the_baseline_loads_and_leaves_no_module_behind():
    program = load_program(TEMPLATE, framework="coefficient_dynamics")
    assert callable(program.build_mixer) and program.notes == []
    assert program.module.__name__ not in sys.modules
    assert not [name for name in sys.modules if name.startswith("_genesys_program_")]


@pytest.mark.parametrize("framework", ["coefficient_dynamics", "test_time_regression", "matrix_mixer"])
def test_framework_is_recognised_from_the_text_outside_the_block(framework):
    source = framework_path(framework).read_text()
    assert detect_framework(source) == framework
    assert block_classes(source)[-1] == "Mixer"


def test_an_edit_outside_the_block_is_reverted_with_a_note_or_rejected():
    edited = TEMPLATE.replace("import math\n", "import math\nimport os\n").replace(
        "return Mixer(d_model, n_heads, rngs=rngs)", "return None")
    fixed, notes = enforce_template(edited, TEMPLATE)
    assert fixed == TEMPLATE and "reverted" in notes[0] and "+import os" in notes[0]
    with pytest.raises(ProgramError) as err:
        load_program(edited, framework="coefficient_dynamics", policy="reject")
    assert err.value.kind == "outside_block" and "rejected" in err.value.message


def test_an_edit_inside_the_block_is_kept():
    edited = TEMPLATE.replace("class Readout(nnx.Module):", "class Readout(nnx.Module):\n    scale = 2.0", 1)
    assert enforce_template(edited, TEMPLATE) == (edited, [])


@pytest.mark.parametrize("source, kind, words", [
    (TEMPLATE.replace(START, ""), "evolve_block", "marker"),
    (TEMPLATE.replace(END, END + "\n" + END), "evolve_block", "marker"),
    (TEMPLATE.replace("class Readout(nnx.Module):", "class Readout(nnx.Module)"), "syntax", "line"),
    (TEMPLATE.replace("class Readout(nnx.Module):", "undefined_name()\nclass Readout(nnx.Module):"), "import",
     "NameError"),
])
def test_unloadable_programs_get_a_named_outcome(source, kind, words):
    with pytest.raises(ProgramError) as err:
        load_program(source, framework="coefficient_dynamics")
    assert err.value.kind == kind and words in err.value.message


def test_a_program_without_build_mixer_is_missing_its_mixer():
    source = TEMPLATE[: TEMPLATE.index("def build_mixer")]
    with pytest.raises(ProgramError) as err:
        load_program(source)
    assert err.value.kind == "missing_mixer"


def test_unknown_framework_names_the_nearest():
    with pytest.raises(ValueError, match="matrix_mixer"):
        framework_path("matrix_mixr")
