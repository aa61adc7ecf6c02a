"""An LLM answer as chat models really write it, turned into a child program or a named reason why not.

Chat models wrap the requested SEARCH/REPLACE blocks in reasoning (``<think>...</think>``), copy the seed's
lines with their indentation drifted, mix blocks that match with blocks that do not, or answer with the
whole updated program in a python fence. OpenEvolve's own parser raises on an unbalanced marker and its
matcher is exact, so each of these lost a correct idea. Here:

- reasoning sections are dropped before anything is read;
- blocks are read by a line scanner that reports a malformed block by its 1-based number, never raises;
- a block applies where its SEARCH text occurs exactly once, else where it occurs exactly once after each
  line's leading and trailing whitespace is stripped (its REPLACE is then re-indented by the same shift);
- a block that matches nowhere or in several places is reported in the feedback, the others still apply;
- a whole program (EVOLVE-BLOCK markers included) in a python fence is a rewrite: the mode's answer when
  ``diff_based_evolution`` is false, and the fallback when an answer's blocks give no child.

Every outcome is a child or a ``ProgramError`` whose kind is in the run's vocabulary (no_diff, no_change,
outside_block, too_long, evolve_block); nothing an answer holds raises anything else.
"""

from __future__ import annotations

import difflib
import re
from dataclasses import dataclass
from typing import Literal

from openevolve_genesys.evaluation.program import END, START, ProgramError, enforce_template, split_block

MAX_BLOCKS = 64  # more blocks than any real edit of one unit needs; bounds the matching work on huge answers
_SEARCH = re.compile(r"^\s*<{7,}\s*SEARCH\s*$")
_DIVIDER = re.compile(r"^\s*={7,}\s*$")
_REPLACE = re.compile(r"^\s*>{7,}\s*REPLACE\s*$")
_OPEN_THINK = re.compile(r"<(?:think|thinking|reasoning)>", re.IGNORECASE)
_CLOSE_THINK = re.compile(r"</(?:think|thinking|reasoning)>", re.IGNORECASE)
_FENCE = re.compile(r"^\s*```[ \t]*([\w+-]*)[ \t]*$")


@dataclass(frozen=True)
class Block:
    number: int  # 1-based position in the answer, as the feedback names it
    search: str
    replace: str


@dataclass(frozen=True)
class ParsedAnswer:
    blocks: tuple[Block, ...]
    problems: tuple[str, ...]  # malformed blocks, by number
    program: str | None  # the last fenced whole program holding the EVOLVE-BLOCK markers


@dataclass(frozen=True)
class AnswerRules:
    """How the run reads answers: OpenEvolve's ``diff_based_evolution`` and ``max_code_length``."""

    rewrite: bool = False  # diff_based_evolution: false -- the model answers with the whole program
    max_code_length: int | None = None  # a longer child is rejected as too_long; None: no limit

    def __post_init__(self) -> None:
        if self.max_code_length is not None and self.max_code_length < 1:
            raise ValueError(f"max_code_length must be a positive number of characters, got {self.max_code_length}")


@dataclass(frozen=True)
class Child:
    code: str
    notes: tuple[str, ...]  # what the feedback should tell the model: skipped blocks, re-indents, reverts
    kind: Literal["diff", "rewrite"]


def strip_reasoning(text: str) -> str:
    """``text`` without its reasoning sections: closed ``<think>`` pairs, text before an orphan ``</think>``
    (servers that put the opening tag in the prompt), and an unclosed leading ``<think>`` up to the answer.

    Scanned with one search per tag rather than a backtracking pattern, so that a megabyte of unclosed tags
    or blank lines costs linear time."""
    kept, pos = [], 0
    while (opened := _OPEN_THINK.search(text, pos)) is not None:
        closed = _CLOSE_THINK.search(text, opened.end())
        if closed is None:
            break
        kept.append(text[pos:opened.start()])
        pos = closed.end()
    text = "".join(kept) + text[pos:]
    orphan = _CLOSE_THINK.search(text)
    if orphan is not None:
        text = text[orphan.end():]
    if text.lstrip()[:12].lower().startswith(("<think>", "<thinking>", "<reasoning>")):
        # No closing tag: the reasoning runs up to the answer's Operator line, first block or fence.
        lines = text.splitlines(keepends=True)
        start = next((i for i, line in enumerate(lines) if i and _starts_answer(line)), len(lines))
        text = "".join(lines[start:])
    return text


def _starts_answer(line: str) -> bool:
    return line.lstrip().startswith(("Operator:", "```")) or bool(_SEARCH.match(line))


def operator_name(answer: str, unit: str) -> str:
    """The answer's ``Operator: <unit>:<name>`` line (outside its reasoning), else ``<unit>:llm``."""
    for line in strip_reasoning(answer).splitlines():
        head, sep, name = line.strip().partition("Operator:")
        if sep and not head and name.strip():
            return name.strip()[:200]
    return f"{unit}:llm"


def parse_answer(answer: str) -> ParsedAnswer:
    """Blocks, malformed-block reports and a fenced whole program, read line by line from the answer."""
    lines = strip_reasoning(answer).splitlines()
    blocks: list[Block] = []
    problems: list[str] = []
    state, search, replace, number = "out", [], [], 0

    def fail(why: str) -> None:
        problems.append(f"block {number}: {why}; it was skipped")

    for line in lines:
        if _SEARCH.match(line):
            if state != "out":
                fail("a new '<<<<<<< SEARCH' started before its '>>>>>>> REPLACE'")
            number += 1
            state, search, replace = "search", [], []
        elif state == "out":
            if _DIVIDER.match(line) or _REPLACE.match(line):
                problems.append(f"a '{line.strip()}' line outside any block (after block {number}) was ignored")
        elif _DIVIDER.match(line):
            if state == "replace":
                fail("a second '=======' line in one block")
                state = "out"
            else:
                state = "replace"
        elif _REPLACE.match(line):
            if state == "search":
                fail("no '=======' line between its SEARCH and REPLACE text")
            else:
                blocks.append(Block(number, "\n".join(search), "\n".join(replace)))
            state = "out"
        else:
            (search if state == "search" else replace).append(line)
    if state != "out":
        fail("the answer ends before its '>>>>>>> REPLACE' line")
    return ParsedAnswer(tuple(blocks), tuple(problems), _fenced_program(lines))


def _fenced_program(lines: list[str]) -> str | None:
    """The last fenced code holding one EVOLVE-BLOCK-START and one END line (an unclosed last fence counts)."""
    found, body, inside = None, [], False
    for line in lines:
        fence = _FENCE.match(line)
        if fence and not inside:
            inside, body = True, []
        elif fence and inside and not fence.group(1):
            found = _as_program(body) or found
            inside = False
        elif inside:
            body.append(line)
    if inside:
        found = _as_program(body) or found
    return found


def _as_program(body: list[str]) -> str | None:
    text = "\n".join(body) + "\n"
    return text if text.count(START) == 1 and text.count(END) == 1 and text.index(START) < text.index(END) else None


def child_from_answer(seed: str, answer: str, template: str, rules: AnswerRules = AnswerRules(),
                      policy: str = "revert") -> Child:
    """The child an answer describes, with the template outside the EVOLVE-BLOCK (an edit there reverted, or
    rejected when ``policy`` is "reject"); else a ProgramError naming why."""
    parsed = parse_answer(answer)
    if rules.rewrite and parsed.program is not None:
        return _finish(seed, _rewrite(seed, parsed.program), template, rules, policy, (), "rewrite")
    code, notes, applied = _apply_blocks(seed, parsed)
    if applied:
        return _finish(seed, code, template, rules, policy, notes, "diff")
    if parsed.program is not None:  # a whole program where a diff was asked for (or a diff that failed)
        why = ("the answer's SEARCH/REPLACE blocks gave no child, so its whole program was used instead:\n"
               + "\n".join(notes)) if parsed.blocks or parsed.problems else ""
        return _finish(seed, _rewrite(seed, parsed.program), template, rules, policy, (why,) if why else (), "rewrite")
    wanted = "the whole program in a ```python fence" if rules.rewrite else "SEARCH/REPLACE block"
    if not parsed.blocks and not parsed.problems:
        raise ProgramError("no_diff", f"the answer holds no {wanted} (nor a whole program with the "
                                      f"'{START}' and '{END}' lines in a ```python fence)")
    raise ProgramError("no_diff", "no SEARCH/REPLACE block applied to the seed program:\n" + "\n".join(notes))


def _rewrite(seed: str, program: str) -> str:
    """A fenced program; one that is only the EVOLVE-BLOCK (markers included) is put in the seed's place."""
    split = split_block(program)
    head, tail = split.before[:-len(START)], split.after[len(END):]
    if head.strip() or tail.strip():
        return program
    seed_split = split_block(seed)
    return seed_split.before + split.block + seed_split.after


def _finish(seed: str, code: str, template: str, rules: AnswerRules, policy: str, notes: tuple[str, ...],
            kind: Literal["diff", "rewrite"]) -> Child:
    code, reverted = enforce_template(code, template, policy=policy)
    if code == seed:
        raise ProgramError("no_change", "the answer leaves the seed program unchanged")
    if rules.max_code_length is not None and len(code) > rules.max_code_length:
        raise ProgramError("too_long", f"the child program has {len(code):,} characters, over max_code_length="
                                       f"{rules.max_code_length:,}; write a shorter change")
    return Child(code, tuple(n for n in (*notes, *reverted) if n), kind)


def _apply_blocks(seed: str, parsed: ParsedAnswer) -> tuple[str, tuple[str, ...], int]:
    """Apply the blocks in order; (code, notes on each block not applied or re-indented, blocks applied)."""
    lines = seed.split("\n")
    notes = list(parsed.problems)
    applied = 0
    total = len(parsed.blocks) + sum(p.startswith("block ") for p in parsed.problems)
    for block in parsed.blocks[:MAX_BLOCKS]:
        result = _apply_block(lines, block, total)
        if isinstance(result, str):
            notes.append(result)
            continue
        lines, note = result
        applied += 1
        if note:
            notes.append(note)
    if len(parsed.blocks) > MAX_BLOCKS:
        notes.append(f"blocks {parsed.blocks[MAX_BLOCKS].number} onward were ignored: at most {MAX_BLOCKS} blocks")
    return "\n".join(lines), tuple(notes), applied


def _apply_block(lines: list[str], block: Block, total: int) -> tuple[list[str], str] | str:
    """The lines with the block applied and a note (empty when exact), or why it was not applied."""
    name = f"block {block.number} of {total}"
    search = block.search.split("\n")
    if not block.search.strip():
        return f"{name} was not applied: its SEARCH text is empty (copy the lines to replace from the seed)"
    exact = _occurrences(lines, search, str)
    if len(exact) == 1:
        i = exact[0]
        return lines[:i] + block.replace.split("\n") + lines[i + len(search):], ""
    if len(exact) > 1:
        return _ambiguous(name, exact, "")
    trimmed = _trim_blank(search)
    loose = _occurrences(lines, trimmed, str.strip)
    if len(loose) > 1:
        return _ambiguous(name, loose, " once whitespace is ignored")
    if not loose:
        return f"{name} was not applied: its SEARCH text matches nothing in the seed{_closest(lines, trimmed)}"
    i = loose[0]
    shift = _indent(lines[i]) - _indent(trimmed[0])
    replace = _trim_blank(block.replace.split("\n")) if block.replace.strip() else []
    new = [_reindent(line, shift) for line in replace]
    note = f"{name} matched only once leading and trailing whitespace was ignored" + (
        f"; its REPLACE was re-indented by {shift:+d} spaces" if shift else "")
    return lines[:i] + new + lines[i + len(trimmed):], note


def _occurrences(lines: list[str], search: list[str], key) -> list[int]:
    """Start indices where ``search`` occurs in ``lines`` when both are compared through ``key``."""
    if not search or len(search) > len(lines):
        return []
    keyed, wanted = [key(line) for line in lines], [key(line) for line in search]
    first, n = wanted[0], len(wanted)
    return [i for i in range(len(keyed) - n + 1) if keyed[i] == first and keyed[i:i + n] == wanted][:10]


def _ambiguous(name: str, starts: list[int], how: str) -> str:
    where = ", ".join(str(i + 1) for i in starts[:5])
    return (f"{name} was not applied: its SEARCH text occurs {len(starts)}{'+' if len(starts) >= 10 else ''} "
            f"times in the seed{how} (lines {where}); include more surrounding lines so it matches once")


def _closest(lines: list[str], search: list[str]) -> str:
    probe = next((line.strip() for line in search if line.strip()), "")
    if not probe or len(probe) > 400:
        return ""
    stripped = [line.strip() for line in lines if len(line) <= 400]
    near = difflib.get_close_matches(probe, stripped, n=1, cutoff=0.6)
    return f" (its first line {probe[:80]!r} is closest to the seed's {near[0][:80]!r})" if near else ""


def _trim_blank(lines: list[str]) -> list[str]:
    start = next((i for i, line in enumerate(lines) if line.strip()), len(lines))
    end = next((i for i in range(len(lines), 0, -1) if lines[i - 1].strip()), 0)
    return lines[start:end]


def _indent(line: str) -> int:
    expanded = line.expandtabs(4)
    return len(expanded) - len(expanded.lstrip())


def _reindent(line: str, shift: int) -> str:
    if not line.strip():
        return ""
    expanded = line.expandtabs(4)
    indent = max(0, _indent(expanded) + shift)
    return " " * indent + expanded.lstrip().rstrip()
