import os
import sys
from pathlib import Path

import pytest

# Test helper modules (broken programs, sandbox jobs) are imported by name, in-process and in sandbox children.
for folder in ("evaluation", "selection", "controller", "llm", "engine", "evolution"):
    sys.path.insert(0, str(Path(__file__).parent / folder))


@pytest.fixture(scope="session", autouse=True)
def genesys_cache_dir(tmp_path_factory):
    """Tokenizers, compiled programs and fitness results of a test session live in one throwaway folder,
    unless the caller (CI) points GENESYS_CACHE_DIR somewhere on purpose."""
    if not os.environ.get("GENESYS_CACHE_DIR"):
        os.environ["GENESYS_CACHE_DIR"] = str(tmp_path_factory.mktemp("genesys-cache"))
    return os.environ["GENESYS_CACHE_DIR"]
