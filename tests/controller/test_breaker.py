"""The circuit breaker's count, its message, and the ``llm.max_consecutive_failures`` key."""

import pytest
import yaml

from openevolve_genesys.config import load_run_config
from openevolve_genesys.controller.breaker import BreakerSettings, CircuitBreaker, LLMEndpointDown, likely_fix
from openevolve_genesys.strict import ConfigError
from run_configs import run_config


def test_the_streak_trips_at_the_limit_and_an_answer_resets_it():
    breaker = CircuitBreaker(BreakerSettings(3))
    for _ in range(2):
        breaker.failed("APIConnectionError: Connection error.", "m", "http://h:1/v1")
    breaker.answered()
    breaker.failed("x", "m", "u")
    breaker.failed("x", "m", "u")
    with pytest.raises(LLMEndpointDown, match=r"the LLM endpoint http://h:1/v1 \(model 'm'\) failed 3 calls in a row"):
        breaker.failed("LLMStalled: no token within first_token_seconds=60", "m", "http://h:1/v1")
    never = CircuitBreaker(BreakerSettings(0))
    for _ in range(100):
        never.failed("x", "m", "u")


@pytest.mark.parametrize("error, words", [
    ("LLMUnavailable: APIConnectionError: Connection error. (connection refused)", "llm.api_base"),
    ("LLMStalled: no token within first_token_seconds=2", "first_token_seconds"),
    ("LLMUnavailable: HTTP 429 Too Many Requests", "rate-limiting"),
    ("something else", "the model name"),
])
def test_the_likely_fix_follows_the_error(error, words):
    assert words in likely_fix(error)


def test_the_key_lives_in_the_llm_section_and_is_validated(tmp_path):
    path = run_config(tmp_path, "coefficient_dynamics")
    assert load_run_config(path).breaker.max_consecutive_failures == 5
    raw = yaml.safe_load(path.read_text())
    raw.setdefault("llm", {})["max_consecutive_failures"] = 2
    path.write_text(yaml.safe_dump(raw))
    config = load_run_config(path)
    assert config.breaker.max_consecutive_failures == 2
    raw["llm"]["max_consecutive_failures"] = -1
    path.write_text(yaml.safe_dump(raw))
    with pytest.raises(ConfigError, match="max_consecutive_failures must be a whole number >= 0"):
        load_run_config(path)
    raw["llm"]["max_consecutive_failure"] = 2
    path.write_text(yaml.safe_dump(raw))
    with pytest.raises(ConfigError, match="did you mean 'max_consecutive_failures'"):
        load_run_config(path)
