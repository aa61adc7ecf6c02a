"""The repair prompt: the check's message, the child's offending lines numbered as in the child, the child to
copy SEARCH text from, and the mode's answer format."""

from openevolve_genesys.evaluation.program import END, START, framework_path
from openevolve_genesys.prompts.repair import (CHILD_HEADING, CheckFailure, RepairRequest, offending_lines,
                                               repair_prompt)

SEED = framework_path("coefficient_dynamics").read_text()
LINE = next(line for line in SEED.splitlines() if "math.sqrt(" in line)
BROKEN = SEED.replace(LINE, LINE + " + (", 1)
BROKEN_NUMBER = BROKEN.splitlines().index(LINE + " + (") + 1


def request(check: CheckFailure, **changes) -> RepairRequest:
    return RepairRequest(**{"child": BROKEN, "seed": SEED, "check": check, "unit": "Coefficients", "round": 1,
                            "rounds": 2, **changes})


def test_a_syntax_error_shows_its_line_marked_with_the_lines_around_it():
    check = CheckFailure("syntax", f"line {BROKEN_NUMBER}: '(' was never closed: {LINE.strip()} + (")
    text = repair_prompt(request(check))
    assert "# Repair round 1 of 2" in text and "fails the `syntax` check" in text and check.message in text
    excerpt = offending_lines(BROKEN, SEED, check.message).splitlines()
    marked = [row for row in excerpt if row.startswith(">>")]
    assert marked == [f">> {BROKEN_NUMBER} | {LINE} + ("]
    numbers = [int(row[2:].split("|")[0]) for row in excerpt]
    assert numbers == list(range(BROKEN_NUMBER - 3, BROKEN_NUMBER + 4))
    # The whole child follows under its heading, so SEARCH text can be copied from it without line numbers.
    assert f"{CHILD_HEADING}\n```python\n{BROKEN.rstrip()}\n```" in text
    assert "SEARCH/REPLACE blocks against the child program above (not the seed)" in text
    assert "Operator: <unit>:<short name of your change>" in text and "`Coefficients`" in text


def test_without_a_line_number_the_lines_the_answer_changed_are_shown():
    child = SEED.replace(LINE, LINE.replace("math.sqrt(", "undefined_name("), 1)
    number = child.splitlines().index(LINE.replace("math.sqrt(", "undefined_name(")) + 1
    excerpt = offending_lines(child, SEED, "mixer(x) raised NameError: name 'undefined_name' is not defined")
    assert [row for row in excerpt.splitlines() if row.startswith(">>")] == [
        f">> {number} | {LINE.replace('math.sqrt(', 'undefined_name(')}"]
    assert offending_lines(SEED, SEED, "no line here").startswith("(no line could be singled out")


def test_rewrite_mode_asks_for_the_whole_program_and_a_refused_reply_is_fed_back():
    check = CheckFailure("shape", "the mixer must return [batch, seq, d_model] = (2, 16, 32), got (2, 16)")
    rejected = CheckFailure("no_diff", "no SEARCH/REPLACE block applied to the seed program:\nblock 1 of 1 ...")
    text = repair_prompt(request(check, rewrite=True, rejected=rejected, round=2))
    assert "# Repair round 2 of 2" in text and check.message in text
    assert "Your previous repair answer could not be applied (no_diff):" in text and rejected.message in text
    assert "the whole corrected program in one ```python fence" in text and START in text and END in text
    assert "SEARCH/REPLACE" not in text.split("## Answer format")[1]
