"""Load an evolved program: EVOLVE-BLOCK checks against its framework template, then an isolated import.

OpenEvolve 0.4.0 never enforces the EVOLVE-BLOCK in its workers, so an LLM edit outside the block
reaches the evaluator. Here the text outside the block must equal the framework template's; an
edit there is reverted (the block is kept and re-inserted into the template) or rejected.
"""

from __future__ import annotations

import ast
import difflib
import textwrap
import importlib.util
import itertools
import sys
import types
from dataclasses import dataclass
from pathlib import Path
from typing import Callable

START = "# EVOLVE-BLOCK-START"
END = "# EVOLVE-BLOCK-END"
FRAMEWORKS = ("coefficient_dynamics", "test_time_regression", "matrix_mixer")
_counter = itertools.count()


class ProgramError(Exception):
    """A program that cannot be loaded; ``kind`` names the check for the LLM's feedback."""

    def __init__(self, kind: str, message: str):
        super().__init__(f"{kind}: {message}")
        self.kind = kind
        self.message = message


@dataclass(frozen=True)
class BlockSplit:
    before: str
    block: str
    after: str


@dataclass
class LoadedProgram:
    source: str  # after enforcement: what was actually imported
    module: types.ModuleType
    build_mixer: Callable
    notes: list[str]  # e.g. "edit outside the EVOLVE-BLOCK reverted"


def split_block(source: str) -> BlockSplit:
    starts, ends = source.count(START), source.count(END)
    if starts != 1 or ends != 1:
        raise ProgramError("evolve_block", f"expected one '{START}' and one '{END}' marker, found {starts} and {ends}; "
                                           "keep both marker lines exactly as in the template")
    head, rest = source.split(START, 1)
    block, tail = rest.split(END, 1)
    return BlockSplit(head + START, block, END + tail)


def block_classes(source: str) -> list[str]:
    """Names of the top-level classes inside the EVOLVE-BLOCK: the framework's units, then Mixer."""
    return [n.name for n in ast.parse(textwrap.dedent(split_block(source).block)).body if isinstance(n, ast.ClassDef)]


def replace_class(source: str, name: str, class_text: str) -> str:
    """``source`` with the block's top-level class ``name`` replaced by ``class_text``: one unit swapped."""
    split = split_block(source)
    nodes = [n for n in ast.parse(split.block).body if isinstance(n, ast.ClassDef) and n.name == name]
    if not nodes:
        raise ValueError(f"the EVOLVE-BLOCK has no top-level class {name!r}; classes: {block_classes(source)}")
    node = nodes[0]
    lines = split.block.splitlines(keepends=True)
    first = min([node.lineno] + [d.lineno for d in node.decorator_list]) - 1
    new_block = "".join(lines[:first]) + textwrap.dedent(class_text).strip() + "\n" + "".join(lines[node.end_lineno:])
    return split.before + new_block + split.after


def framework_path(framework: str) -> Path:
    """The template file of a framework: one of FRAMEWORKS by name, or a generated framework file by path
    (a ``.py`` path, e.g. a combination stage's template; absolute, since the sandboxed child runs elsewhere)."""
    if framework.endswith(".py"):
        path = Path(framework).expanduser()
        if not path.is_file():
            raise ValueError(f"framework file {path} does not exist; genesys.framework is one of "
                             f"{', '.join(FRAMEWORKS)} or the path of a generated framework file")
        return path
    if framework not in FRAMEWORKS:
        near = difflib.get_close_matches(framework, FRAMEWORKS, n=1)
        raise ValueError(f"unknown framework {framework!r}" + (f"; did you mean {near[0]!r}?" if near else "")
                         + f" (frameworks: {', '.join(FRAMEWORKS)})")
    from openevolve_genesys.resources import framework_file

    return framework_file(framework)


def detect_framework(source: str) -> str:
    """The framework whose template matches ``source`` outside the EVOLVE-BLOCK (closest if none exactly)."""
    program = split_block(source)
    outside = program.before + program.after

    def similarity(name: str) -> float:
        reference = split_block(framework_path(name).read_text())
        return difflib.SequenceMatcher(None, outside, reference.before + reference.after).ratio()

    return max(FRAMEWORKS, key=similarity)


def enforce_template(source: str, template: str, *, policy: str = "revert") -> tuple[str, list[str]]:
    """Return the source with the template's text outside the EVOLVE-BLOCK, and notes on what changed.

    ``policy="reject"`` raises instead of reverting an outside edit.
    """
    program, reference = split_block(source), split_block(template)
    changed = [
        line for part, ref in ((program.before, reference.before), (program.after, reference.after))
        for line in difflib.unified_diff(ref.splitlines(), part.splitlines(), lineterm="", n=0)
        if line[:1] in "+-" and not line.startswith(("+++", "---"))
    ]
    if not changed:
        return source, []
    shown = "\n".join(changed[:12]) + ("\n..." if len(changed) > 12 else "")
    if policy == "reject":
        raise ProgramError("outside_block", f"the program edits text outside the EVOLVE-BLOCK (rejected):\n{shown}")
    fixed = reference.before + program.block + reference.after
    return fixed, [f"edits outside the EVOLVE-BLOCK were reverted to the template:\n{shown}"]


def import_source(source: str, *, filename: str = "<evolved program>") -> types.ModuleType:
    """Execute ``source`` as a fresh module with a unique name that is left in no registry."""
    name = f"_genesys_program_{next(_counter)}"
    try:
        code = compile(source, filename, "exec")
    except SyntaxError as err:
        raise ProgramError("syntax", f"line {err.lineno}: {err.msg}: {(err.text or '').strip()}") from None
    except (ValueError, RecursionError, MemoryError) as err:  # null bytes, nesting too deep to compile
        raise ProgramError("syntax", f"the program cannot be compiled: {type(err).__name__}: {err}") from None
    spec = importlib.util.spec_from_loader(name, loader=None, origin=filename)
    module = importlib.util.module_from_spec(spec)
    module.__file__ = filename
    # Flax and dataclasses look a class's module up in sys.modules while the class body runs.
    sys.modules[name] = module
    try:
        exec(code, module.__dict__)
    except Exception as err:  # any failure while importing is the program's fault
        raise ProgramError("import", f"{type(err).__name__}: {err}") from None
    finally:
        sys.modules.pop(name, None)
    return module


def load_program(source: str, *, framework: str | None = None, policy: str = "revert",
                 filename: str = "<evolved program>") -> LoadedProgram:
    """Check the EVOLVE-BLOCK (against ``framework``'s template when given) and import the program."""
    notes: list[str] = []
    if framework is not None:
        source, notes = enforce_template(source, framework_path(framework).read_text(), policy=policy)
    else:
        split_block(source)
    module = import_source(source, filename=filename)
    build = getattr(module, "build_mixer", None)
    if not callable(build):
        raise ProgramError("missing_mixer", "the program defines no callable build_mixer(d_model, n_heads, *, rngs); "
                                            "it is part of the fixed contract outside the EVOLVE-BLOCK")
    return LoadedProgram(source, module, build, notes)


def load_program_file(path: str | Path, **kwargs) -> LoadedProgram:
    path = Path(path)
    if not path.is_file():
        raise FileNotFoundError(f"program file {path} does not exist")
    return load_program(path.read_text(), filename=str(path), **kwargs)
