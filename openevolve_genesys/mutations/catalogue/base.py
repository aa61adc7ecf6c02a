"""What a catalogue entry is, and how entries are written: named class texts, some filled from templates.

A template is a class text with ``@TOKEN@`` fields (a marker Python code never contains), so a family
of alternatives (decay rates, slope sets, kernel widths) is written once and instantiated per constant.
"""

from __future__ import annotations

import re
import textwrap
from dataclasses import dataclass

from openevolve_genesys.evaluation.program import framework_path
from openevolve_genesys.mutations.units import class_name, class_texts, clean_class_text

_TOKEN = re.compile(r"@[A-Z][A-Z0-9_]*@")
_WIDTH = 112  # docstring lines of the generated classes, like the framework files' own


@dataclass(frozen=True)
class Alternative:
    """One way to write a unit: ``name`` is the operator suffix, ``text`` one top-level class of the unit's name."""

    name: str
    text: str

    def __post_init__(self) -> None:
        object.__setattr__(self, "text", clean_class_text(self.text))

    @property
    def unit(self) -> str:
        return class_name(self.text)


def fill(template: str, **tokens: object) -> str:
    """``template`` with every ``@KEY@`` replaced by ``tokens[key.lower()]``; a field left unfilled is an error.

    The line holding ``@DOC@`` is re-wrapped at its own indentation, so docstrings stay readable.
    """
    text = template
    for key, value in tokens.items():
        if key == "doc":
            text = "\n".join(_wrap(line.replace("@DOC@", str(value))) if "@DOC@" in line else line
                             for line in text.split("\n"))
        text = text.replace(f"@{key.upper()}@", str(value))
    left = sorted(set(_TOKEN.findall(text)))
    if left:
        raise KeyError(f"template fields left unfilled: {', '.join(left)}")
    return text


def _wrap(line: str) -> str:
    indent = line[: len(line) - len(line.lstrip())]
    return textwrap.fill(line.strip(), width=_WIDTH, initial_indent=indent, subsequent_indent=indent,
                         break_on_hyphens=False, break_long_words=False)


def baseline(framework: str, unit: str, name: str) -> Alternative:
    """The framework file's own class ``unit``, so the catalogue always holds the seed exactly as shipped."""
    texts = class_texts(framework_path(framework).read_text())
    if unit not in texts:
        raise KeyError(f"frameworks/{framework}.py has no unit class {unit!r}; classes: {list(texts)}")
    return Alternative(name, texts[unit])
