"""A child whose text Python cannot parse must never end the run or its replay: hashing, loading and the
ledger's fold over the history all classify it instead of raising."""

from __future__ import annotations

import pytest
from hypothesis import given, settings, strategies as st
from openevolve.config import DatabaseConfig

from openevolve_genesys.controller.accounting import Accounting
from openevolve_genesys.controller.ledger import RunLedger
from openevolve_genesys.evaluation.hashing import code_hash
from openevolve_genesys.evaluation.program import ProgramError, import_source
from openevolve_genesys.selection.database import GenesysDatabase

ADVERSARIAL = [
    "def f(:\n    return 1\n",                     # a syntax slip
    "x = 1\x00\n",                                # a null byte (ValueError in ast.parse)
    "x = " + "(" * 500 + "1" + ")" * 500 + "\n",  # nesting past the parser's limit
    "x = 1" + " + 1" * 200_000 + "\n",            # a tree deep enough to exhaust the recursion limit
    "s = '\ud800'\n",                            # a lone surrogate, unencodable as UTF-8
    "```python\n# EVOLVE-BLOCK-START\nclass\n",   # an unbalanced fence around broken code
]
IDS = ["syntax", "null_byte", "nesting", "deep_tree", "surrogate", "open_fence"]


def _design_event(code: str) -> dict:
    return {"type": "design", "attempt": 1, "id": "child", "seed_id": "baseline", "unit": "mixer",
            "operator": "llm", "model": "m", "quadrant": None, "credit": None, "class": "invalid",
            "failure": "syntax", "message": "line 1: invalid syntax", "code": code, "notes": [], "seconds": 1.0,
            "llm_seconds": 1.0, "tokens": 10, "learning_rate": None, "tune": None, "outcome": "syntax",
            "rungs": {}, "metrics": {}, "artifacts": {}, "requeues": 0, "requeued": False, "quarantined": False}


@pytest.mark.parametrize("source", ADVERSARIAL, ids=IDS)
def test_unparsable_sources_hash_and_load_as_classified_errors(source):
    assert len(code_hash(source)) == 64
    assert code_hash(source) == code_hash(source)
    with pytest.raises(ProgramError) as err:
        import_source(source)
    assert err.value.kind == "syntax"


def test_a_broken_text_never_shares_a_parseable_programs_hash():
    assert code_hash("x = 1\n") == code_hash("x = 1  # same tree\n")
    assert code_hash("x = 1\n") != code_hash("x = (\n")


@settings(max_examples=200, deadline=None)
@given(st.text(alphabet=st.characters(blacklist_categories=()), max_size=400))
def test_code_hash_never_raises_on_any_text(source):
    assert len(code_hash(source)) == 64


@pytest.mark.parametrize("source", ADVERSARIAL, ids=IDS)
def test_the_history_line_of_a_broken_child_replays(source):
    """The live run and --resume both fold the same line through ``RunLedger.apply``."""
    for _ in range(2):  # the run, then its replay on a fresh ledger
        ledger = RunLedger(GenesysDatabase(DatabaseConfig()), Accounting(), max_attempts=5)
        ledger.apply(_design_event(source))
        assert ledger.attempts == 1
        assert ledger.database.records["child"].outcome == "syntax"
