"""Answers as chat models write them: reasoning, drifted indentation, partly matching blocks, whole programs,
and adversarial text that must always end as a child or a named ProgramError, never another exception."""

from __future__ import annotations

import json

import pytest
from hypothesis import HealthCheck, given, settings, strategies as st
from openevolve.config import DatabaseConfig

from openevolve_genesys.controller.accounting import Accounting
from openevolve_genesys.controller.answer import (MAX_BLOCKS, AnswerRules, child_from_answer, operator_name,
                                                  parse_answer, strip_reasoning)
from openevolve_genesys.controller.ledger import RunLedger
from openevolve_genesys.evaluation.program import END, START, ProgramError, framework_path, split_block
from openevolve_genesys.selection.database import GenesysDatabase

TEMPLATE = framework_path("coefficient_dynamics").read_text()
SQRT = "        logits = logits * (1.0 / math.sqrt(q.shape[-1])) + g"
SCALED = "        logits = logits * (1.25 / math.sqrt(q.shape[-1])) + g"
CAUSAL = "        causal = jnp.tril(jnp.ones((t, t), dtype=bool))"
INIT = "    def __init__(self, d_model: int, n_heads: int, *, rngs: nnx.Rngs):"
KINDS = {"no_diff", "no_change", "outside_block", "too_long", "evolve_block"}
assert TEMPLATE.count(SQRT) == 1 and TEMPLATE.count(CAUSAL) == 1 and TEMPLATE.count(INIT) > 1


def block(search: str, replace: str) -> str:
    return f"<<<<<<< SEARCH\n{search}\n=======\n{replace}\n>>>>>>> REPLACE\n"


def program_answer(code: str, lead: str = "Operator: Coefficients:scale\nHere is the program.\n") -> str:
    return f"{lead}```python\n{code}```\n"


def test_an_exact_block_applies():
    child = child_from_answer(TEMPLATE, "Operator: Coefficients:x\n" + block(SQRT, SCALED), TEMPLATE)
    assert child.code == TEMPLATE.replace(SQRT, SCALED) and child.notes == () and child.kind == "diff"


def test_a_block_with_drifted_indentation_and_blank_lines_is_reindented():
    drifted = "\n" + SQRT.strip() + "   \n  " + CAUSAL.strip() + "\n"
    replace = SCALED.strip() + "\n  " + CAUSAL.strip().replace("bool", "jnp.bool_")
    child = child_from_answer(TEMPLATE, block(drifted, replace), TEMPLATE)
    expected = TEMPLATE.replace(SQRT + "\n" + CAUSAL, SCALED + "\n" + "  " + CAUSAL.replace("bool", "jnp.bool_"))
    assert child.code == expected
    assert "block 1 of 1 matched only once leading and trailing whitespace was ignored" in child.notes[0]
    assert "re-indented by +8 spaces" in child.notes[0]


def test_an_ambiguous_and_an_absent_block_are_named_by_number():
    answer = block(INIT, INIT + "  # changed") + block("jnp.nonexistent(q)", "x") + block(SQRT, SCALED)
    child = child_from_answer(TEMPLATE, answer, TEMPLATE)
    assert child.code == TEMPLATE.replace(SQRT, SCALED)
    assert len(child.notes) == 2
    assert child.notes[0].startswith("block 1 of 3 was not applied: its SEARCH text occurs")
    assert "include more surrounding lines" in child.notes[0]
    assert child.notes[1].startswith("block 2 of 3 was not applied: its SEARCH text matches nothing")


def test_when_no_block_applies_the_no_diff_message_says_which_and_why():
    with pytest.raises(ProgramError) as err:
        child_from_answer(TEMPLATE, block(INIT, "x") + block("logits = logits * (1.0 / math.sqr(q))", "y"),
                          TEMPLATE)
    assert err.value.kind == "no_diff"
    assert "block 1 of 2" in err.value.message and "occurs" in err.value.message
    assert "block 2 of 2" in err.value.message and "closest to the seed's" in err.value.message


@pytest.mark.parametrize("answer, words", [
    ("<<<<<<< SEARCH\nx\n>>>>>>> REPLACE\n", "no '=======' line"),
    ("<<<<<<< SEARCH\nx\n=======\ny\n=======\nz\n>>>>>>> REPLACE\n", "a second '=======' line"),
    ("<<<<<<< SEARCH\nx\n=======\ny\n", "ends before its '>>>>>>> REPLACE'"),
    ("<<<<<<< SEARCH\nx\n<<<<<<< SEARCH\ny\n=======\nz\n>>>>>>> REPLACE\n", "started before"),
    ("<<<<<<< SEARCH\n\n=======\ny\n>>>>>>> REPLACE\n", "SEARCH text is empty"),
])
def test_malformed_blocks_are_reported_not_raised(answer, words):
    with pytest.raises(ProgramError, match=words) as err:
        child_from_answer(TEMPLATE, answer, TEMPLATE)
    assert err.value.kind == "no_diff"


def test_a_malformed_block_does_not_stop_a_good_one():
    answer = "=======\n" + block(SQRT, SCALED) + "<<<<<<< SEARCH\nx\n"
    child = child_from_answer(TEMPLATE, answer, TEMPLATE)
    assert child.code == TEMPLATE.replace(SQRT, SCALED)
    assert any("outside any block" in n for n in child.notes) and any("ends before" in n for n in child.notes)


@pytest.mark.parametrize("answer", [
    "<think>Maybe\n" + block(CAUSAL, "bad") + "</think>\nOperator: Coefficients:s\n" + block(SQRT, SCALED),
    "I should scale it.\n" + block(CAUSAL, "bad") + "</think>\nOperator: Coefficients:s\n" + block(SQRT, SCALED),
    "<think>\nI should scale the logits.\nOperator: Coefficients:s\n" + block(SQRT, SCALED),
    "<THINKING>a</THINKING><think>b</think>Operator: Coefficients:s\n" + block(SQRT, SCALED),
])
def test_reasoning_is_ignored(answer):
    child = child_from_answer(TEMPLATE, answer, TEMPLATE)
    assert child.code == TEMPLATE.replace(SQRT, SCALED) and child.notes == ()
    assert operator_name(answer, "Coefficients") == "Coefficients:s"


def test_an_answer_that_is_only_unclosed_reasoning_has_no_diff():
    assert strip_reasoning("<think>\nstill thinking about " + block(SQRT, SCALED)[:20]) == ""
    assert operator_name("<think>Operator: x", "Readout") == "Readout:llm"


def test_a_whole_program_is_a_rewrite_in_rewrite_mode_and_a_fallback_otherwise():
    child_code = TEMPLATE.replace(SQRT, SCALED)
    for rules in (AnswerRules(rewrite=True), AnswerRules()):
        child = child_from_answer(TEMPLATE, program_answer(child_code), TEMPLATE, rules)
        assert child.code == child_code and child.kind == "rewrite" and child.notes == ()
    # Only the EVOLVE-BLOCK, markers included: put in the seed's place, not counted as an outside edit.
    only_block = START + split_block(child_code).block + END + "\n"
    child = child_from_answer(TEMPLATE, program_answer(only_block), TEMPLATE, AnswerRules(rewrite=True), "reject")
    assert child.code == child_code and child.notes == ()
    # An unclosed last fence still counts (answers cut at max_tokens after the program).
    assert child_from_answer(TEMPLATE, program_answer(child_code)[:-4], TEMPLATE).code == child_code


def test_a_diff_that_fails_falls_back_to_the_answers_program_and_says_so():
    answer = block("not in the seed", "x") + program_answer(TEMPLATE.replace(SQRT, SCALED), lead="")
    child = child_from_answer(TEMPLATE, answer, TEMPLATE)
    assert child.kind == "rewrite" and "whole program was used instead" in child.notes[0]
    assert "block 1 of 1" in child.notes[0]


def test_rewrite_mode_still_reads_a_diff_and_asks_for_the_program_when_there_is_neither():
    child = child_from_answer(TEMPLATE, block(SQRT, SCALED), TEMPLATE, AnswerRules(rewrite=True))
    assert child.kind == "diff"
    with pytest.raises(ProgramError, match="whole program in a ```python fence") as err:
        child_from_answer(TEMPLATE, "I like it as it is.", TEMPLATE, AnswerRules(rewrite=True))
    assert err.value.kind == "no_diff"


def test_a_rewrite_outside_the_block_is_reverted_or_rejected_as_for_diffs():
    outside = TEMPLATE.replace(SQRT, SCALED).replace("def build_mixer(", "def build_mixer_renamed(")
    child = child_from_answer(TEMPLATE, program_answer(outside), TEMPLATE, AnswerRules(rewrite=True))
    assert child.code == TEMPLATE.replace(SQRT, SCALED) and "reverted" in child.notes[0]
    with pytest.raises(ProgramError) as err:
        child_from_answer(TEMPLATE, program_answer(outside), TEMPLATE, AnswerRules(rewrite=True), "reject")
    assert err.value.kind == "outside_block"


def test_max_code_length_rejects_a_longer_child():
    longer = TEMPLATE.replace(SQRT, SCALED + "  # " + "x" * 500)
    limit = len(TEMPLATE) + 100
    with pytest.raises(ProgramError, match=f"over max_code_length={limit:,}") as err:
        child_from_answer(TEMPLATE, program_answer(longer), TEMPLATE, AnswerRules(max_code_length=limit))
    assert err.value.kind == "too_long"
    assert child_from_answer(TEMPLATE, program_answer(longer), TEMPLATE, AnswerRules(max_code_length=len(longer)))
    with pytest.raises(ValueError, match="max_code_length"):
        AnswerRules(max_code_length=0)


def test_an_unchanged_program_is_no_change():
    with pytest.raises(ProgramError) as err:
        child_from_answer(TEMPLATE, program_answer(TEMPLATE), TEMPLATE, AnswerRules(rewrite=True))
    assert err.value.kind == "no_change"


def test_too_many_blocks_are_cut_and_reported():
    answer = block(SQRT, SCALED) + block("absent", "x") * MAX_BLOCKS
    child = child_from_answer(TEMPLATE, answer, TEMPLATE)
    assert f"blocks {MAX_BLOCKS + 1} onward were ignored" in child.notes[-1]


def test_markers_inside_strings_are_code_not_markers():
    parsed = parse_answer(block('    s = "<<<<<<< SEARCH"', '    s = "======="'))
    assert [(b.search, b.replace) for b in parsed.blocks] == [('    s = "<<<<<<< SEARCH"', '    s = "======="')]


ADVERSARIAL = [
    "\x00" * 1000 + block(SQRT, SCALED.replace("1.25", "1.25\x00")),
    block(SQRT, "x" * 1_000_000),
    "<think>" * 200_000,
    "\n" * 1_000_000 + "Operator:",
    block(SQRT, "        logits = " + "(" * 5000 + "g" + ")" * 5000),
    "```python\n" + START + "\n" + "```\n" * 1000,
    "```python\n" + START + "\nclass Broken(\n" + END + "\n",
    block(SQRT, '        s = "\ud800"'),
    block(f"{START}\n", "gone"),
    (block(SQRT, SCALED) + "=======\n>>>>>>> REPLACE\n") * 3000,
]


def _event(code: str | None, failure: str | None) -> dict:
    return {"type": "design", "attempt": 1, "id": "child", "seed_id": "baseline", "unit": "Coefficients",
            "operator": "llm", "model": "m", "quadrant": None, "credit": None, "class": "invalid",
            "failure": failure, "message": "m", "code": code, "notes": [], "seconds": 1.0, "llm_seconds": 1.0,
            "tokens": 1, "learning_rate": None, "tune": None, "outcome": failure or "syntax", "rungs": {},
            "metrics": {}, "artifacts": {}, "requeues": 0, "requeued": False, "quarantined": False}


def assert_classified_and_replayable(answer: str, rules: AnswerRules = AnswerRules()) -> None:
    try:
        child = child_from_answer(TEMPLATE, answer, TEMPLATE, rules)
        code, failure = child.code, None
        assert isinstance(code, str) and all(isinstance(n, str) for n in child.notes)
    except ProgramError as err:
        assert err.kind in KINDS, err.kind
        code, failure = None, err.kind
    operator_name(answer, "Coefficients")
    line = json.dumps(_event(code, failure))  # what history.jsonl holds
    ledger = RunLedger(GenesysDatabase(DatabaseConfig()), Accounting(), max_attempts=5)
    ledger.apply(json.loads(line))
    assert ledger.attempts == 1


@pytest.mark.parametrize("answer", ADVERSARIAL, ids=range(len(ADVERSARIAL)))
def test_adversarial_answers_end_classified_and_their_history_line_replays(answer):
    for rules in (AnswerRules(), AnswerRules(rewrite=True, max_code_length=20_000)):
        assert_classified_and_replayable(answer, rules)


PIECES = st.sampled_from(["<<<<<<< SEARCH\n", "=======\n", ">>>>>>> REPLACE\n", "```python\n", "```\n",
                          START + "\n", END + "\n", "<think>", "</think>", "Operator: x\n", SQRT + "\n",
                          SQRT.strip() + "\n", SCALED + "\n", INIT + "\n", "\x00", "\ud800", "((((", "\n"])


@settings(max_examples=300, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(st.lists(st.one_of(PIECES, st.text(max_size=30)), max_size=40), st.booleans())
def test_any_text_ends_as_a_child_or_a_named_outcome(pieces, rewrite):
    assert_classified_and_replayable("".join(pieces), AnswerRules(rewrite=rewrite))
