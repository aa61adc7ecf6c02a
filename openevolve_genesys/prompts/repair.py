"""The repair prompt: a child that failed a check of the program goes back to the model that wrote it.

It shows the check's kind and message, the offending lines of the child numbered as in the child (around
the line the message names, else the lines the answer changed), the whole child to copy SEARCH text from,
and the mode's answer format. The child, not the seed, is what the reply is applied to, so the format asks
for SEARCH text copied from the child.
"""

from __future__ import annotations

import difflib
import re
from dataclasses import dataclass

from openevolve_genesys.evaluation.program import END, START

CHILD_HEADING = "## Child program to repair"  # the offline mutator finds the child under this heading
CONTEXT_LINES = 3  # lines shown on each side of an offending line
MAX_SHOWN = 60  # offending lines shown at most; the whole child follows anyway
_LINE = re.compile(r"\bline (\d+)\b")


@dataclass(frozen=True)
class CheckFailure:
    """A failed check of a child program: its kind (``syntax``, ``shape``, ``no_diff``...) and message."""

    kind: str
    message: str


@dataclass(frozen=True)
class RepairRequest:
    child: str  # the broken child, as it was evaluated
    seed: str  # the program the first answer was applied to (to find the lines it changed)
    check: CheckFailure  # the child's failed check
    unit: str
    round: int  # 1-based
    rounds: int  # repair_rounds
    rewrite: bool = False  # the mode's answer is the whole program
    rejected: CheckFailure | None = None  # the previous repair reply, when the answer path refused it


def repair_prompt(request: RepairRequest) -> str:
    """The user message of one repair round."""
    check = request.check
    parts = [f"# Repair round {request.round} of {request.rounds}",
             "",
             f"The child program your answer produced fails the `{check.kind}` check, so it was not trained:",
             "",
             check.message.strip(),
             ""]
    if request.rejected is not None:
        parts += [f"Your previous repair answer could not be applied ({request.rejected.kind}):", "",
                  request.rejected.message.strip(), ""]
    parts += ["## Offending lines (numbered as in the child program)", "", "```",
              offending_lines(request.child, request.seed, check.message), "```", "",
              CHILD_HEADING, "```python", request.child.rstrip(), "```", "",
              "## Answer format", repair_format(request.unit, request.rewrite)]
    return "\n".join(parts) + "\n"


def repair_format(unit: str, rewrite: bool) -> str:
    """What a repair answer must look like: the mode's format, applied to the child rather than the seed."""
    keep = (f"Fix what the check reports and keep the idea of your change to `{unit}`. First one line "
            f"`Operator: <unit>:<short name of your change>`, then ")
    if rewrite:
        return (f"{keep}the whole corrected program in one ```python fence. Keep the lines `{START}` and "
                f"`{END}` and everything outside them exactly as in the child program.")
    return (f"{keep}one or more SEARCH/REPLACE blocks against the child program above (not the seed):\n"
            "<<<<<<< SEARCH\n<lines copied exactly from the child program, without line numbers>\n=======\n"
            "<the corrected lines>\n>>>>>>> REPLACE")


def offending_lines(child: str, seed: str, message: str) -> str:
    """The child's lines around each line the message names (``line 42``), else around the lines that differ
    from the seed, numbered from 1; those lines are marked ``>>``."""
    lines = child.splitlines()
    named = [int(n) for n in _LINE.findall(message) if 1 <= int(n) <= len(lines)]
    marked = set(named) or _changed_lines(seed.splitlines(), lines)
    if not marked:
        return "(no line could be singled out: read the whole child program below)"
    shown = sorted({n for m in marked for n in range(m - CONTEXT_LINES, m + CONTEXT_LINES + 1)
                    if 1 <= n <= len(lines)})
    width = len(str(shown[-1]))
    out, previous = [], None
    for n in shown[:MAX_SHOWN]:
        if previous is not None and n > previous + 1:
            out.append("...")
        out.append(f"{'>>' if n in marked else '  '} {n:>{width}} | {lines[n - 1]}")
        previous = n
    if len(shown) > MAX_SHOWN:
        out.append(f"... ({len(shown) - MAX_SHOWN} more lines: see the whole child program below)")
    return "\n".join(out)


def _changed_lines(seed: list[str], child: list[str]) -> set[int]:
    """1-based numbers of the child's lines that the answer inserted or replaced."""
    changed: set[int] = set()
    matcher = difflib.SequenceMatcher(None, seed, child, autojunk=False)
    for tag, _, _, j1, j2 in matcher.get_opcodes():
        if tag in ("replace", "insert"):
            changed.update(range(j1 + 1, j2 + 1))
        elif tag == "delete" and j1 < len(child):
            changed.add(j1 + 1)  # lines removed: show where they were
    return changed
