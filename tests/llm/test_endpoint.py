"""Key and endpoint resolution: the YAML first, then the environment, OpenAI's default counting as unset."""

import pytest

from openevolve_genesys.llm import endpoint

VARIABLES = ("OPENAI_API_KEY", "OPENAI_API_BASE", "OPENAI_BASE_URL")


@pytest.fixture
def env(monkeypatch):
    for name in VARIABLES:
        monkeypatch.delenv(name, raising=False)
    return monkeypatch


def test_the_yaml_key_wins_over_the_environment(env):
    assert endpoint.api_key(None) is None
    env.setenv("OPENAI_API_KEY", "sk-env")
    assert endpoint.api_key(None) == endpoint.api_key("") == "sk-env"
    assert endpoint.api_key("sk-yaml") == "sk-yaml"


def test_a_chosen_base_wins_and_openais_default_gives_way_to_the_environment(env):
    assert endpoint.api_base("https://api.openai.com/v1") == "https://api.openai.com/v1"
    assert endpoint.api_base(None) is None
    env.setenv("OPENAI_BASE_URL", "http://sdk:1/v1")
    assert endpoint.api_base(None) == endpoint.api_base("https://api.openai.com/v1/") == "http://sdk:1/v1"
    env.setenv("OPENAI_API_BASE", "http://openevolve:2/v1")  # OpenEvolve's own name comes first
    assert endpoint.api_base("https://api.openai.com/v1") == "http://openevolve:2/v1"
    assert endpoint.api_base("http://127.0.0.1:8000/v1") == "http://127.0.0.1:8000/v1"
    assert not endpoint.is_openai_default("http://api.openai.com.example.org/v1")
