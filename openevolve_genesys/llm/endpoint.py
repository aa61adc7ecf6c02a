"""Which endpoint and key an LLM call uses: the YAML first, then the environment, as OpenEvolve does.

OpenEvolve 0.4.0 resolves ``${VAR}`` in ``api_key`` itself, and its stock client passes ``api_key=None``
to the ``openai`` SDK when the YAML has none, so the SDK falls back to ``$OPENAI_API_KEY``. For the base
URL OpenEvolve reads ``$OPENAI_API_BASE`` (``load_config`` without a file) and the SDK reads
``$OPENAI_BASE_URL``; both are honoured here, OpenEvolve's name first. OpenEvolve copies its default
``https://api.openai.com/v1`` into every model that sets no ``api_base`` (the shipped configs also spell it
out), so that value counts as "not chosen": an endpoint named in the environment replaces it, any other
``api_base`` in the YAML wins over the environment.
"""

from __future__ import annotations

import os
from urllib.parse import urlparse

OPENAI_API_BASE = "https://api.openai.com/v1"  # OpenEvolve's default llm.api_base
KEY_VARIABLES = ("OPENAI_API_KEY",)
BASE_VARIABLES = ("OPENAI_API_BASE", "OPENAI_BASE_URL")


def api_key(configured: str | None) -> str | None:
    """The YAML's key, else the first non-empty key variable of the environment, else None."""
    return configured or _from_environment(KEY_VARIABLES)


def api_base(configured: str | None) -> str | None:
    """The YAML's api_base unless it is OpenEvolve's default, else the environment's, else the YAML's (or None)."""
    if configured and not is_openai_default(configured):
        return configured
    return _from_environment(BASE_VARIABLES) or configured


def is_openai_default(base: str | None) -> bool:
    """Whether ``base`` is OpenAI's own API (any path): what OpenEvolve fills in when nothing is chosen."""
    return bool(base) and urlparse(base).hostname == urlparse(OPENAI_API_BASE).hostname


def _from_environment(names: tuple[str, ...]) -> str | None:
    return next((os.environ[n] for n in names if os.environ.get(n)), None)
