"""The prompt a design agent gets: seed, its scaling curve, the unit to mutate, references, instruction, feedback.

Templates are plain files (``templates/system.txt``, ``templates/design.txt``) with ``$name`` fields, so a
user can override them by pointing ``genesys.templates_dir`` at a folder holding either file. The sampler
holds only strings: it pickles, so it works the same in spawned or forked workers.
"""

from __future__ import annotations

import ast
import string
from dataclasses import dataclass, field
from importlib import resources
from pathlib import Path
from typing import Mapping, Sequence

import yaml

from openevolve_genesys.evaluation.program import END, START, block_classes, framework_path, split_block

TEMPLATE_NAMES = ("system.txt", "design.txt")


@dataclass(frozen=True)
class ReferenceDesign:
    """Another design shown to the agent: what changed in it and how it scaled."""

    design_id: str
    operator: str
    curve: str
    code: str


@dataclass(frozen=True)
class PromptRequest:
    framework: str
    seed_code: str
    seed_curve: str
    unit: str
    attempt: int
    # Tune mode (genesys.tune.enabled): the design's learning rate is swept on a cheap target before it is
    # verified, so the agent submits architectures and leaves optimiser constants alone.
    tuned: bool = False
    instruction: str | None = None
    references: Sequence[ReferenceDesign] = ()
    library_refs: Sequence[str] = ()
    feedback: str = ""
    # Rewrite mode (OpenEvolve's diff_based_evolution: false): the answer is the whole program, not blocks.
    rewrite: bool = False


@dataclass
class PromptSampler:
    templates_dir: str | None = None
    library_path: str | None = None
    _templates: dict[str, str] = field(default_factory=dict, repr=False)
    _library: dict[str, dict] = field(default_factory=dict, repr=False)

    def __post_init__(self) -> None:
        for name in TEMPLATE_NAMES:
            override = Path(self.templates_dir) / name if self.templates_dir else None
            if override is not None and override.is_file():
                self._templates[name] = override.read_text()
            else:
                self._templates[name] = resources.files(__package__).joinpath("templates", name).read_text()
        library = Path(self.library_path) if self.library_path else resources.files(__package__) / "references.yaml"
        if self.library_path and not Path(self.library_path).is_file():
            raise FileNotFoundError(f"reference library {self.library_path} does not exist "
                                    "(genesys.reference_library: a YAML of key -> {frameworks, text})")
        self._library = yaml.safe_load(library.read_text()) or {}

    def library_keys(self, framework: str) -> list[str]:
        return [key for key, entry in self._library.items() if framework in entry.get("frameworks", [framework])]

    def build(self, request: PromptRequest) -> dict[str, str]:
        system = string.Template(self._templates["system.txt"]).safe_substitute(
            framework_rules=framework_rules(request.framework))
        user = string.Template(self._templates["design.txt"]).safe_substitute(
            framework=request.framework, attempt=request.attempt, mode=_mode_text(request.tuned),
            seed_code=request.seed_code.rstrip(), seed_curve=request.seed_curve or "(not yet verified)",
            unit=request.unit, units=", ".join(u for u in block_classes(request.seed_code) if u != "Mixer"),
            instruction=request.instruction or "None: choose the change you expect to scale best.",
            references=self._references_text(request), feedback=request.feedback.strip() or "None.",
            answer_format=answer_format(request.unit, request.rewrite),
        )
        return {"system": system, "user": user}

    def _references_text(self, request: PromptRequest) -> str:
        parts = []
        for ref in request.references:
            changed = changed_classes(request.seed_code, ref.code)
            body = "\n\n".join(changed.values()) if changed else "(same code as the seed)"
            parts.append(f"### Design {ref.design_id} ({ref.operator})\n{ref.curve}\n```python\n{body}\n```")
        for key in request.library_refs:
            entry = self._library.get(key)
            if entry:
                parts.append(f"### {key}\n{entry['text'].strip()}")
        return "\n\n".join(parts) or "None."


def _mode_text(tuned: bool) -> str:
    submit = "submit (a real design attempt, charged to the budget and verified on the ladder)"
    if tuned:
        return (f"{submit}; its learning rate is then tuned automatically by a short sweep that is not charged, "
                "so change the architecture, not optimiser constants")
    return f"{submit}; it trains at the profile's learning rate, as the baseline does"


def answer_format(unit: str, rewrite: bool) -> str:
    """What the answer must look like: the whole program in rewrite mode, SEARCH/REPLACE blocks otherwise."""
    operator = "First one line `Operator: <unit>:<short name of your change>`, then "
    if rewrite:
        return (f"{operator}the whole updated program in one ```python fence. Keep the lines `{START}` and "
                f"`{END}` and everything outside them exactly as in the seed, and change only the class `{unit}`.")
    return (f"{operator}one or more SEARCH/REPLACE blocks that change only the class `{unit}`:\n"
            "<<<<<<< SEARCH\n<lines copied exactly from the seed program>\n=======\n<the new lines>\n"
            ">>>>>>> REPLACE")


def framework_rules(framework: str) -> str:
    """The 'May evolve / Must preserve / Cannot modify' lists of the framework's docstring."""
    doc = ast.get_docstring(ast.parse(framework_path(framework).read_text())) or ""
    start = doc.find("May evolve:")
    return doc[start:].strip() if start >= 0 else doc.strip()


def changed_classes(seed: str, other: str) -> dict[str, str]:
    """Top-level classes of ``other``'s EVOLVE-BLOCK whose text differs from the seed's."""
    seed_classes, other_classes = _class_texts(seed), _class_texts(other)
    return {name: text for name, text in other_classes.items() if seed_classes.get(name) != text}


def _class_texts(source: str) -> Mapping[str, str]:
    try:
        block = split_block(source).block
        tree = ast.parse(block)
    except Exception:  # a reference that no longer parses shows no classes rather than breaking the prompt
        return {}
    return {node.name: ast.get_source_segment(block, node) or "" for node in tree.body
            if isinstance(node, ast.ClassDef)}
