"""The combination template: a framework file whose frozen part is the pool and whose EVOLVE-BLOCK combines it.

Each pool member's EVOLVE-BLOCK classes are copied OUTSIDE the new block with a per-member prefix
(``m0``'s ``Mixer`` becomes ``M0_Mixer``), so the stage can combine base designs but never edit them,
and ``POOL`` maps member keys to their mixers. The EVOLVE-BLOCK holds the combining units:

    Plan       which cell each layer gets: CYCLE[layer % len(CYCLE)], a cell being ("single", a),
               ("gate", a, b) or ("heads", a, b) over POOL keys
    Gate       two members on half the heads each, mixed per channel by a learned gate
    HeadSplit  two members side by side on a split of the heads
    Mixer      builds one layer's cell from the plan

``build_mixer`` (outside the block) takes ``layer`` and ``n_layers``, which the language model passes to a
layer-aware factory, and declares ``build_mixer.depths``: the depths of the stage's ladder, at which the
checks and the functional hash build every layer's mixer. The cells keep about one full-width mixer's
parameters (two half-width members behind their own projections), so the ladder's parameter check holds.
"""

from __future__ import annotations

import ast
import io
import textwrap
import tokenize
from typing import Sequence

from openevolve_genesys.evaluation.program import split_block
from openevolve_genesys.stages.pool import PoolMember

Cell = tuple[str, ...]
COMBINATORS = {"single": 1, "gate": 2, "heads": 2}  # combinator -> how many members a cell names


def prefix(key: str) -> str:
    return key[:1].upper() + key[1:] + "_"


def renamed_block(code: str, key: str) -> str:
    """The member's EVOLVE-BLOCK with its top-level names prefixed (attribute names like ``nnx.Linear`` and
    ``self.Mixer`` stay: only a bare name refers to a module-level definition)."""
    block = textwrap.dedent(split_block(code).block).strip("\n") + "\n"
    tree = ast.parse(block)
    names = set()
    for node in tree.body:
        if isinstance(node, (ast.ClassDef, ast.FunctionDef, ast.AsyncFunctionDef)):
            names.add(node.name)
        elif isinstance(node, (ast.Assign, ast.AnnAssign)):
            targets = node.targets if isinstance(node, ast.Assign) else [node.target]
            names.update(t.id for t in targets if isinstance(t, ast.Name))
    lines = block.splitlines(keepends=True)
    edits: list[tuple[int, int, int]] = []  # (row, start col, end col) of each name to prefix
    previous = None
    for token in tokenize.generate_tokens(io.StringIO(block).readline):
        if token.type == tokenize.NAME and token.string in names and not (previous and previous.string == "."):
            edits.append((token.start[0], token.start[1], token.end[1]))
        if token.type not in (tokenize.NL, tokenize.NEWLINE, tokenize.COMMENT, tokenize.INDENT, tokenize.DEDENT):
            previous = token
    for row, start, end in reversed(edits):  # right to left keeps the earlier columns valid
        line = lines[row - 1]
        lines[row - 1] = line[:start] + prefix(key) + line[start:end] + line[end:]
    return "".join(lines)


def imports_of(members: Sequence[PoolMember]) -> list[str]:
    """The import statements outside the members' EVOLVE-BLOCKs, each once, in first-seen order."""
    seen: list[str] = []
    for member in members:
        split = split_block(member.code)
        outside = split.before.rsplit("\n", 1)[0] + "\n" + split.after.split("\n", 1)[-1]
        for node in ast.parse(outside).body:
            if isinstance(node, (ast.Import, ast.ImportFrom)):
                text = ast.get_source_segment(outside, node)
                if text not in seen:
                    seen.append(text)
    return seen


def plan_text(cycle: Sequence[Cell]) -> str:
    for cell in cycle:
        if cell[0] not in COMBINATORS or len(cell) != 1 + COMBINATORS[cell[0]]:
            raise ValueError(f"a cell is ('single', a), ('gate', a, b) or ('heads', a, b), got {cell!r}")
    cells = "".join(f"\n        {tuple(cell)!r}," for cell in cycle)
    return f'''class Plan:
    """Which cell of pool members each layer gets: layer i of n takes CYCLE[i % len(CYCLE)].

    A cell is ("single", a): member a at full width; ("gate", a, b): a and b mixed by Gate; ("heads", a, b):
    a and b side by side, HeadSplit. Members are POOL keys (m0 is the best base design, "base" the baseline).
    """

    CYCLE = ({cells}
    )

    @classmethod
    def cell(cls, layer: int, n_layers: int) -> tuple:
        return cls.CYCLE[layer % len(cls.CYCLE)]'''


_GATE = '''class Gate(nnx.Module):
    """(d_model, n_heads, first, second, *, rngs): two POOL mixers, each on n_heads // 2 heads behind its own
    input projection, mixed per channel: y = out(g * first(P1 x) + (1 - g) * second(P2 x)); x, y [B, T, D].

    {doc}
    """

    def __init__(self, d_model: int, n_heads: int, first, second, *, rngs: nnx.Rngs):
        heads = max(1, n_heads // 2)
        width = heads * (d_model // n_heads)
        self.into_first = nnx.Linear(d_model, width, rngs=rngs)
        self.into_second = nnx.Linear(d_model, width, rngs=rngs)
        self.first = first(width, heads, rngs=rngs)
        self.second = second(width, heads, rngs=rngs)
{init}        self.out = nnx.Linear(width, d_model, rngs=rngs)

    def __call__(self, x: jax.Array) -> jax.Array:
{gate}        mixed = g * self.first(self.into_first(x)) + (1 - g) * self.second(self.into_second(x))
        return self.out(mixed)'''

GATE_VARIANTS = {
    "data": _GATE.format(
        doc="g = sigmoid(Linear(x)) per position and channel: data-dependent, and causal (pointwise in time).",
        init="        self.gate = nnx.Linear(d_model, width, rngs=rngs)\n",
        gate="        g = jax.nn.sigmoid(self.gate(x))\n"),
    "static": _GATE.format(
        doc="g = sigmoid(w) per channel, one learned logit per channel starting at an even mix.",
        init="        self.logit = nnx.Param(jnp.zeros((width,), jnp.float32))\n",
        gate="        g = jax.nn.sigmoid(self.logit[...]).astype(x.dtype)\n"),
}


def head_split_text(share: float) -> str:
    return f'''class HeadSplit(nnx.Module):
    """(d_model, n_heads, first, second, *, rngs): two POOL mixers side by side, the first on SHARE of the heads;
    y = out([first(h_1), second(h_2)]) with [h_1, h_2] = Linear(x) split at the head boundary; x, y [B, T, D].
    """

    SHARE = {share!r}

    def __init__(self, d_model: int, n_heads: int, first, second, *, rngs: nnx.Rngs):
        if n_heads < 2:
            raise ValueError(f"HeadSplit needs at least 2 heads, got n_heads={{n_heads}}")
        heads = min(n_heads - 1, max(1, round(n_heads * self.SHARE)))
        self.split = heads * (d_model // n_heads)
        self.into = nnx.Linear(d_model, d_model, rngs=rngs)
        self.first = first(self.split, heads, rngs=rngs)
        self.second = second(d_model - self.split, n_heads - heads, rngs=rngs)
        self.out = nnx.Linear(d_model, d_model, rngs=rngs)

    def __call__(self, x: jax.Array) -> jax.Array:
        h = self.into(x)
        both = jnp.concatenate([self.first(h[..., :self.split]), self.second(h[..., self.split:])], axis=-1)
        return self.out(both)'''


HEAD_SPLIT_VARIANTS = {f"share_{share:g}": head_split_text(share) for share in (0.25, 0.5, 0.75)}

MIXER_TEXT = '''class Mixer(nnx.Module):
    """One layer's mixer: the plan's cell for this layer; (d_model, n_heads, *, rngs, layer, n_layers); x -> y."""

    def __init__(self, d_model: int, n_heads: int, *, rngs: nnx.Rngs, layer: int = 0, n_layers: int = 1):
        kind, *members = Plan.cell(layer, n_layers)
        mixers = [POOL[member] for member in members]
        if kind == "single":
            self.cell = mixers[0](d_model, n_heads, rngs=rngs)
        elif kind == "gate":
            self.cell = Gate(d_model, n_heads, *mixers, rngs=rngs)
        elif kind == "heads":
            self.cell = HeadSplit(d_model, n_heads, *mixers, rngs=rngs)
        else:
            raise ValueError(f"unknown combinator {kind!r} in Plan.CYCLE; use single, gate or heads")

    def __call__(self, x: jax.Array) -> jax.Array:
        return self.cell(x)'''


def initial_block(first: str) -> str:
    """The EVOLVE-BLOCK a stage starts from: member ``first`` alone in every layer."""
    units = [plan_text([("single", first)]), GATE_VARIANTS["data"], HEAD_SPLIT_VARIANTS["share_0.5"], MIXER_TEXT]
    return "\n\n\n".join(units)


_DOC = '''"""Combination stage {name!r}: hybrids of the frozen pool of base designs of {base}.

A program here is a stack of evolved base designs: which pool member in which layer (hybrid stacks, e.g. a
recurrent mixer interleaved with softmax attention), two members on split heads, or two members mixed by a
learned gate. It is scored by the same ladder as its base run; utility is relative to this stage's
baseline, its initial program ({first} alone in every layer).

Pool (frozen, outside the EVOLVE-BLOCK; utility and confidence in the base run, utility in nats vs its baseline):
{pool}

May evolve:
    - Plan (the cycle of cells over the layers, or any rule of (layer, n_layers) returning a cell),
      Gate and HeadSplit (how two members are combined), and how Mixer builds a layer's cell;
    - new combining units as top-level classes inside the EVOLVE-BLOCK.
Must preserve:
    - `Mixer(d_model, n_heads, *, rngs, layer=0, n_layers=1)` and `Mixer.__call__(x) -> y`, x and y
      [batch, seq, d_model], same dtype; members are used through POOL[key](width, heads, *, rngs);
    - causality, finite outputs and gradients, and about the baseline's parameter count (a cell holds about
      one full-width mixer: two members go on half the heads each);
Cannot modify:
    - the pool members' classes and POOL (outside the EVOLVE-BLOCK: base designs are frozen here);
    - `build_mixer`, its declared depths, the imports, and the rest of the language model.
"""'''


def render(name: str, base: str, members: Sequence[PoolMember], depths: Sequence[int], first: str) -> str:
    """The stage's framework file: docstring, imports, the renamed pool, POOL, the block, build_mixer."""
    if first not in {m.key for m in members}:
        raise ValueError(f"initial member {first!r} is not in the pool ({', '.join(m.key for m in members)})")
    pool_lines = "\n".join(
        f"    {m.key:<5} {m.design_id[:8]:<8}  utility {_fmt(m.utility)}, confidence {m.confidence:.2f}  "
        f"{m.operator}" for m in members)
    parts = [_DOC.format(name=name, base=base, first=first, pool=pool_lines), "\n".join(imports_of(members))]
    for m in members:
        parts.append(f"# ---- pool member {m.key}: base design {m.design_id} (frozen) ----\n"
                     + renamed_block(m.code, m.key).rstrip("\n"))
    entries = "".join(f"\n    {m.key!r}: {prefix(m.key)}Mixer," for m in members)
    parts.append(f"POOL = {{{entries}\n}}")
    parts.append(f"# EVOLVE-BLOCK-START\n{initial_block(first)}\n# EVOLVE-BLOCK-END")
    parts.append(f'''def build_mixer(d_model: int, n_heads: int, *, rngs: nnx.Rngs, layer: int = 0, n_layers: int = 1
                ) -> nnx.Module:
    """Fixed entry point: the language model calls it once per block with that block's layer."""
    return Mixer(d_model, n_heads, rngs=rngs, layer=layer, n_layers=n_layers)


# The depths (n_layers) of the stage's ladder: the checks and the functional hash build the mixer of every
# layer at each of them (openevolve_genesys.training.model.layer_slots).
build_mixer.depths = {tuple(sorted(set(depths)))!r}''')
    return "\n\n\n".join(parts) + "\n"


def _fmt(value: float | None) -> str:
    return "n/a" if value is None else f"{value:+.4f}"
