"""docs/configuration.md is generated from the settings classes and must match them."""

import dataclasses
from pathlib import Path

from openevolve_genesys import config_reference
from openevolve_genesys.config import RunSettings
from openevolve_genesys.openevolve_keys import ALIASES, REFUSED, STOCK_ONLY
from openevolve_genesys.selection.selector import SelectorSettings
from openevolve_genesys.training.profiles import TrainConfig

PAGE = Path(__file__).resolve().parents[1] / "docs" / "configuration.md"


def test_the_committed_page_is_what_the_code_generates():
    # When this fails: python -m openevolve_genesys.config_reference, and commit docs/configuration.md.
    assert PAGE.read_text() == config_reference.render()


def test_check_mode_reports_a_stale_page(tmp_path, capsys):
    stale = tmp_path / "configuration.md"
    stale.write_text("# old\n")
    assert config_reference.main(["--check", "--output", str(stale)]) == 1
    assert "out of date" in capsys.readouterr().err
    assert config_reference.main(["--output", str(stale)]) == 0
    assert config_reference.main(["--check", "--output", str(stale)]) == 0


def test_every_key_has_a_row_with_its_default():
    page = config_reference.render()
    for cls in (RunSettings, SelectorSettings, TrainConfig):
        for f in dataclasses.fields(cls):
            assert f"| `{f.name}` |" in page, f.name
    assert "| `verify_share` | `0.5` |" in page
    assert "| `from` | `\"\"` |" in page  # the stage key is spelt as in YAML
    for key in [*ALIASES, *STOCK_ONLY, "evaluator.max_retries"]:
        assert f"`{key}`" in page
    assert set(REFUSED)  # each refused key or section is listed
    assert all(f"`{k}" in page for k in REFUSED)
