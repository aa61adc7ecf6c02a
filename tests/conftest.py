import os
import signal
import sys
from pathlib import Path

import pytest

# Test helper modules (broken programs, sandbox jobs) are imported by name, in-process and in sandbox children.
for folder in ("evaluation", "selection", "controller", "llm", "engine", "evolution"):
    sys.path.insert(0, str(Path(__file__).parent / folder))

# A suite started in the background (`cmd &` in a script, nohup) inherits SIGINT ignored, and so would every run
# and sandbox parent the tests start: Python installs no KeyboardInterrupt handler then, and the Ctrl-C tests would
# test nothing. A handler installed here is reset to the default in each started process, so they all get Ctrl-C.
if signal.getsignal(signal.SIGINT) == signal.SIG_IGN:
    signal.signal(signal.SIGINT, signal.default_int_handler)


@pytest.fixture(scope="session", autouse=True)
def genesys_cache_dir(tmp_path_factory):
    """Tokenizers, compiled programs and fitness results of a test session live in one throwaway folder,
    unless the caller (CI) points GENESYS_CACHE_DIR somewhere on purpose."""
    if not os.environ.get("GENESYS_CACHE_DIR"):
        os.environ["GENESYS_CACHE_DIR"] = str(tmp_path_factory.mktemp("genesys-cache"))
    return os.environ["GENESYS_CACHE_DIR"]
