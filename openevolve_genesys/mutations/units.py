"""Locate the unit classes of a program's EVOLVE-BLOCK and compare them by meaning, not by formatting.

A mutation's SEARCH text must be the class exactly as the program spells it, so spans come from the
syntax tree's line numbers over the block's own lines. Two class texts are the same alternative when
their syntax trees agree once docstrings are dropped: reformatting or re-commenting a unit, or
rewording its docstring, does not make it a new design.
"""

from __future__ import annotations

import ast
import textwrap

from openevolve_genesys.evaluation.program import split_block


def class_texts(source: str) -> dict[str, str]:
    """Top-level classes of the EVOLVE-BLOCK in order: name -> its text exactly as in ``source`` (no final newline).

    Raises ``ProgramError`` when the markers are broken and ``SyntaxError`` when the block does not parse.
    """
    block = split_block(source).block
    lines = block.splitlines(keepends=True)
    texts: dict[str, str] = {}
    for node in ast.parse(block).body:
        if isinstance(node, ast.ClassDef):
            first = min([node.lineno] + [d.lineno for d in node.decorator_list]) - 1
            texts[node.name] = "".join(lines[first:node.end_lineno]).rstrip("\r\n")
    return texts


def clean_class_text(text: str) -> str:
    """One class text as ``replace_class`` inserts it: dedented, stripped; it must define exactly one class."""
    cleaned = textwrap.dedent(text).strip()
    body = ast.parse(cleaned).body
    if len(body) != 1 or not isinstance(body[0], ast.ClassDef):
        raise ValueError(f"a unit text must be exactly one top-level class, got: {cleaned[:80]!r}...")
    return cleaned


def class_name(text: str) -> str:
    return ast.parse(clean_class_text(text)).body[0].name


def normalise(text: str) -> str:
    """A key equal for class texts that differ only in formatting, comments or docstrings."""
    tree = ast.parse(textwrap.dedent(text).strip())
    for node in ast.walk(tree):
        if isinstance(node, (ast.ClassDef, ast.FunctionDef, ast.AsyncFunctionDef)):
            body = node.body
            if body and isinstance(body[0], ast.Expr) and isinstance(body[0].value, ast.Constant) \
                    and isinstance(body[0].value.value, str):
                node.body = body[1:] or [ast.Pass()]
    return ast.dump(tree, annotate_fields=False, include_attributes=False)
