"""Probe distances (evaluation/noop.py) of real mutations against deliberate no-op edits, for every framework.

Real mutations: every catalogue alternative of every unit swapped into the framework's baseline and into
``--designs`` random catalogue designs (the offline mutation library's own moves). No-op edits of the same
seeds, one unit at a time: local variables renamed, attributes renamed, comments added, two adjacent
independent assignments swapped, and the operands of every ``+`` and ``*`` commuted, and chains of them reassociated. The probe is the one the
evaluation job takes (the smoke profile's sequence length, every depth of its ladder).

    python experiments/benchmarks/noop_distances.py --out experiments/benchmarks/results/noop_distances.json

Runs the library's own code in this process (no evolved code): about two minutes on 2 CPU cores.
"""

from __future__ import annotations

import argparse
import ast
import json
import math
import random
import re
from pathlib import Path
from typing import Callable

import numpy as np

from openevolve_genesys.evaluation.hashing import FunctionalProbe, functional_probe
from openevolve_genesys.evaluation.noop import probe_distance
from openevolve_genesys.evaluation.program import FRAMEWORKS, framework_path, load_program, replace_class
from openevolve_genesys.mutations.catalogue import catalogue
from openevolve_genesys.mutations.mutator import enumerate_designs, identify
from openevolve_genesys.mutations.units import class_texts
from openevolve_genesys.training.profiles import get_profile


class _RenameLocals(ast.NodeTransformer):
    def visit_FunctionDef(self, node: ast.FunctionDef) -> ast.FunctionDef:
        # An argument rebound in the body (x = x + 1) keeps its name: renaming only the Name nodes would read
        # the new name before any assignment.
        arguments = {a.arg for n in ast.walk(node) if isinstance(n, ast.arguments)
                     for a in [*n.posonlyargs, *n.args, *n.kwonlyargs, n.vararg, n.kwarg] if a is not None}
        stored = {n.id for n in ast.walk(node) if isinstance(n, ast.Name) and isinstance(n.ctx, ast.Store)} - arguments
        for n in ast.walk(node):
            if isinstance(n, ast.Name) and n.id in stored:
                n.id = f"{n.id}_renamed"
        return node


class _RenameAttributes(ast.NodeTransformer):
    """Rename the attributes a class assigns on self (its parameters and settings, not its methods)."""

    def visit_ClassDef(self, node: ast.ClassDef) -> ast.ClassDef:
        selfs = [n for n in ast.walk(node) if isinstance(n, ast.Attribute) and isinstance(n.value, ast.Name)
                 and n.value.id == "self"]
        stored = {n.attr for n in selfs if isinstance(n.ctx, ast.Store)}
        for n in selfs:
            if n.attr in stored:
                n.attr = f"{n.attr}_renamed"
        return node


class _Commute(ast.NodeTransformer):
    def visit_BinOp(self, node: ast.BinOp) -> ast.BinOp:
        self.generic_visit(node)
        if isinstance(node.op, (ast.Add, ast.Mult)):
            node.left, node.right = node.right, node.left
        return node


class _Reassociate(ast.NodeTransformer):
    """(a op b) op c -> a op (b op c) for + and *: the same real number, rounded differently (about 1e-7)."""

    def visit_BinOp(self, node: ast.BinOp) -> ast.BinOp:
        self.generic_visit(node)
        inner = node.left
        if isinstance(node.op, (ast.Add, ast.Mult)) and isinstance(inner, ast.BinOp) and type(inner.op) is type(node.op):
            return ast.BinOp(inner.left, node.op, ast.BinOp(inner.right, node.op, node.right))
        return node


class _SwapIndependent(ast.NodeTransformer):
    """Swap the first two adjacent single-name assignments of which neither reads or writes the other's name."""

    done = False

    def _swap(self, body: list[ast.stmt]) -> None:
        for i in range(len(body) - 1):
            a, b = body[i], body[i + 1]
            if self.done or not all(isinstance(s, ast.Assign) and len(s.targets) == 1
                                    and isinstance(s.targets[0], ast.Name) for s in (a, b)):
                continue
            names = [{n.id for n in ast.walk(s) if isinstance(n, ast.Name)} for s in (a, b)]
            if a.targets[0].id not in names[1] and b.targets[0].id not in names[0]:
                body[i], body[i + 1] = b, a
                self.done = True

    def visit_FunctionDef(self, node: ast.FunctionDef) -> ast.FunctionDef:
        self._swap(node.body)
        return node


def _ast_edit(transformer: Callable[[], ast.NodeTransformer]) -> Callable[[str], str | None]:
    def edit(text: str) -> str | None:
        tree = ast.parse(text)
        t = transformer()
        tree = t.visit(tree)
        if getattr(t, "done", True) is False:
            return None
        return ast.unparse(tree)
    return edit


def _add_comments(text: str) -> str:
    return re.sub(r"^(\s*)(def |return )", r"\1# a comment that changes nothing\n\1\2", text, flags=re.M)


NOOP_EDITS: dict[str, Callable[[str], str | None]] = {
    "rename_locals": _ast_edit(_RenameLocals),
    "rename_attributes": _ast_edit(_RenameAttributes),
    "add_comments": _add_comments,
    "swap_independent": _ast_edit(_SwapIndependent),
    "commute": _ast_edit(_Commute),
    "reassociate": _ast_edit(_Reassociate),
}


def _probe(source: str, framework: str, seq_len: int, depths: list[int]) -> FunctionalProbe:
    program = load_program(source, framework=framework)
    return functional_probe(program.build_mixer, seq_len=seq_len, depths=depths)


def measure(framework: str, designs: int, rng: random.Random) -> list[dict]:
    ladder = get_profile("smoke")
    seq_len, depths = ladder.train.seq_len, sorted({r.n_layers for r in ladder.rungs})
    template = framework_path(framework).read_text()
    seeds = [("baseline", template)] + [(f"design{i}", d.source)
                                        for i, d in enumerate(enumerate_designs(framework, designs, rng))]
    rows = []
    for seed_name, seed in seeds:
        seed_probe = _probe(seed, framework, seq_len, depths)
        current = identify(seed, framework)
        texts = class_texts(seed)
        for unit, alternatives in catalogue(framework).items():
            children = [("mutation", f"{unit}:{a.name}", replace_class(seed, unit, a.text))
                        for a in alternatives if a.name != current[unit]]
            for name, edit in NOOP_EDITS.items():
                edited = edit(texts[unit])
                if edited is not None and edited.strip() != texts[unit].strip():
                    children.append(("noop", f"{unit}:{name}", replace_class(seed, unit, edited)))
            for kind, operator, child in children:
                d = probe_distance(_probe(child, framework, seq_len, depths), seed_probe)
                rows.append({"framework": framework, "seed": seed_name, "kind": kind, "operator": operator,
                             **d.to_dict()})
    return rows


def summarise(rows: list[dict]) -> dict:
    out = {}
    for kind in ("mutation", "noop"):
        picked = [r for r in rows if r["kind"] == kind]
        matched = [r["distance"] for r in picked if r["params_match"] and r["distance"] is not None]
        q = np.quantile(matched, [0, 0.1, 0.5, 0.9, 1]).tolist() if matched else []
        out[kind] = {"n": len(picked), "params_match": len(matched),
                     "quantiles_0_10_50_90_100": q}
    mutations = [r["distance"] for r in rows if r["kind"] == "mutation" and r["params_match"]
                 and r["distance"] is not None]
    noops = [r["distance"] for r in rows if r["kind"] == "noop" and r["distance"] is not None]
    out["largest_noop"] = max(noops, default=None)
    out["smallest_matched_mutation"] = min(mutations, default=None)
    out["noops_with_params_mismatch"] = sum(1 for r in rows if r["kind"] == "noop" and not r["params_match"])
    if out["largest_noop"] and out["smallest_matched_mutation"]:
        # the geometric middle of the gap: as far (in orders of magnitude) from either side
        out["gap_middle"] = math.sqrt(out["largest_noop"] * out["smallest_matched_mutation"])
    return out


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--frameworks", nargs="*", default=list(FRAMEWORKS))
    parser.add_argument("--designs", type=int, default=2, help="random catalogue designs used as seeds, besides "
                                                                 "the baseline")
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--out", type=Path, default=None)
    args = parser.parse_args()
    rng = random.Random(args.seed)
    rows = [row for framework in args.frameworks for row in measure(framework, args.designs, rng)]
    result = {"summary": {f: summarise([r for r in rows if r["framework"] == f]) for f in args.frameworks},
              "all": summarise(rows), "rows": rows}
    text = json.dumps(result, indent=1)
    if args.out:
        args.out.write_text(text + "\n")
    print(json.dumps({"summary": result["summary"], "all": result["all"]}, indent=1))


if __name__ == "__main__":
    main()
