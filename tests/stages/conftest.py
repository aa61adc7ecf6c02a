"""Fixtures of the stage tests; helpers live in stage_programs.py (importable: this folder is on sys.path)."""

import sys
from pathlib import Path

import pytest

sys.path.insert(0, str(Path(__file__).parent))

from openevolve_genesys.evaluation.program import framework_path  # noqa: E402
from openevolve_genesys.stages.pool import PoolMember  # noqa: E402
from openevolve_genesys.stages.template import render  # noqa: E402
from stage_programs import alternative, member  # noqa: E402


@pytest.fixture(scope="session")
def pool() -> list[PoolMember]:
    """A recurrent-style coefficient-dynamics design, a matrix-mixer design (other unit names) and the baseline."""
    return [member("m0", alternative("coefficient_dynamics", "Dynamics", "retnet"), 0.02),
            member("m1", alternative("matrix_mixer", "MatrixClass", "toeplitz_buckets"), 0.01),
            member("base", framework_path("coefficient_dynamics").read_text())]


@pytest.fixture(scope="session")
def template(pool) -> str:
    return render("test", "runs/base", pool, (2, 3), "m0")


@pytest.fixture
def template_file(tmp_path, template) -> Path:
    path = tmp_path / "template.py"
    path.write_text(template)
    return path
