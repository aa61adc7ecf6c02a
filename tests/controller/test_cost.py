"""Prices, spending caps and the breaker's uncharged-time trigger: their keys, their arithmetic, and (through
the real controller and a loopback server) a cap that ends a run cleanly and a resume with a larger one."""

from __future__ import annotations

import json
import logging

import pytest
import yaml

import openevolve_genesys
from fault_server import FaultServer
from openevolve_genesys.config import load_run_config
from openevolve_genesys.controller.breaker import BreakerSettings, BreakerTripped, CircuitBreaker, LLMEndpointDown
from openevolve_genesys.controller.cost import CostSettings, Price, Spend
from openevolve_genesys.strict import ConfigError
from run_configs import events, run_config

PRICE = Price(prompt=200.0, completion=1000.0)  # dollars per million: a token costs $0.0002 and $0.001


def endpoint_config(tmp_path, url: str, **genesys):
    """One chat model at ``url``; each attempt trains only the smallest rung (no verification)."""
    path = run_config(tmp_path, "coefficient_dynamics", requeue_limit=1, selector={"verify_share": 0.0},
                      stall={"first_token_seconds": 0.5, "idle_seconds": 0.5}, **genesys)
    raw = yaml.safe_load(path.read_text())
    raw["llm"] = {"models": [{"name": "chat-model", "api_base": url, "api_key": "test-key", "weight": 1.0}],
                  "retries": 0, "retry_delay": 0, "timeout": 60}
    path.write_text(yaml.safe_dump(raw))
    return path


def rewrite(path, change) -> None:
    raw = yaml.safe_load(path.read_text())
    change(raw)
    path.write_text(yaml.safe_dump(raw))


# -- keys -----------------------------------------------------------------------------------------------
def test_prices_and_caps_load_and_a_price_for_a_model_not_in_the_ensemble_is_a_load_error(tmp_path):
    prices = {"chat-model": {"prompt": 2.5, "completion": 10}}
    path = endpoint_config(tmp_path, "http://127.0.0.1:9/v1", cost={"prices": prices, "max_cost": 1.5})
    cost = load_run_config(path).genesys.cost
    assert cost.prices == {"chat-model": Price(2.5, 10.0)} and (cost.max_cost, cost.max_total_tokens) == (1.5, None)
    rewrite(path, lambda raw: raw["genesys"]["cost"]["prices"].update({"chat-modle": {"prompt": 1}}))
    with pytest.raises(ConfigError, match=r"genesys.cost.prices names model 'chat-modle', which is not in "
                                          r"llm.models \(chat-model\)"):
        load_run_config(path)


@pytest.mark.parametrize("cost, message", [
    ({"prices": {"chat-model": {"prompt": -1}}}, r"genesys.cost.prices.chat-model: prompt must be a finite number"),
    ({"prices": {"chat-model": {"input": 1}}}, r"unknown key 'input' in genesys.cost.prices.chat-model"),
    ({"max_cost": 2}, r"max_cost needs prices"),
    ({"max_total_tokens": 0}, r"max_total_tokens must be a whole number >= 1"),
    ({"max_tokens": 5}, r"did you mean 'max_total_tokens'"),
])
def test_bad_cost_keys_are_load_errors_naming_the_key(tmp_path, cost, message):
    path = endpoint_config(tmp_path, "http://127.0.0.1:9/v1", cost=cost)
    with pytest.raises(ConfigError, match=message):
        load_run_config(path)


def test_the_breaker_share_keys_live_in_the_llm_section(tmp_path):
    path = endpoint_config(tmp_path, "http://127.0.0.1:9/v1")
    assert load_run_config(path).breaker == BreakerSettings(5, 0.5, 600.0)
    rewrite(path, lambda raw: raw["llm"].update(max_uncharged_share=0.25, uncharged_min_seconds=30))
    assert load_run_config(path).breaker == BreakerSettings(5, 0.25, 30)
    rewrite(path, lambda raw: raw["llm"].update(max_uncharged_share=1.0))
    with pytest.raises(ConfigError, match=r"max_uncharged_share must be a number in \[0, 1\)"):
        load_run_config(path)


# -- arithmetic -------------------------------------------------------------------------------------------
def test_a_cap_says_which_one_and_the_totals():
    settings = CostSettings(prices={"m": PRICE}, max_total_tokens=1000, max_cost=0.5)
    assert settings.cap_reached(Spend(400, 500, 0.49)) is None
    assert settings.cap_reached(Spend(400, 600, 0.1)) == (
        "genesys.cost.max_total_tokens=1000 reached: 400 prompt + 600 completion = 1000 tokens, $0.1000")
    assert settings.cap_reached(Spend(10, 20, 0.5, estimated=True)) == (
        "genesys.cost.max_cost=0.5 reached: 10 prompt + 20 completion = 30 tokens (partly estimated), $0.5000")
    assert CostSettings().cap_reached(Spend(10**9, 10**9, 10**6)) is None  # no caps by default


def test_the_share_trigger_waits_for_the_minimum_and_divides_by_the_worker_slots():
    breaker = CircuitBreaker(BreakerSettings(max_consecutive_failures=0, max_uncharged_share=0.5,
                                             uncharged_min_seconds=60))
    breaker.failed("LLMStalled: no token within first_token_seconds=60", "m", "http://h:1/v1")
    breaker.check_share(uncharged_seconds=50, wall_seconds=59, slots=1)  # too early to judge
    breaker.check_share(uncharged_seconds=100, wall_seconds=120, slots=2)  # 42% of 240 worker seconds
    with pytest.raises(LLMEndpointDown, match=r"the LLM endpoint http://h:1/v1 \(model 'm'\): stalled and infra "
                                              r"jobs took 70 s, 58% of the 120 s x 1 worker time .*"
                                              r"Likely fix: the server accepts the request"):
        breaker.check_share(uncharged_seconds=70, wall_seconds=120, slots=1)
    breaker.evaluation_failed("verification of abc at r2: killed by signal 9")
    with pytest.raises(BreakerTripped, match=r"the last was an evaluation: verification of abc at r2: killed by "
                                             r"signal 9\. Likely fix: evaluations stall or die") as caught:
        breaker.check_share(uncharged_seconds=70, wall_seconds=120, slots=1)
    assert not isinstance(caught.value, LLMEndpointDown)
    off = CircuitBreaker(BreakerSettings(max_uncharged_share=0.0, uncharged_min_seconds=0))
    off.check_share(uncharged_seconds=100, wall_seconds=100, slots=1)


# -- through the controller -------------------------------------------------------------------------------
def spent(output) -> tuple[int, int, float]:
    """(prompt, completion, cost) summed from the history lines, priced by PRICE."""
    designs = [e for e in events(output) if e["type"] == "design"]
    prompt, completion = sum(e["prompt_tokens"] for e in designs), sum(e["tokens"] for e in designs)
    return prompt, completion, PRICE.cost(prompt, completion)


@pytest.mark.slow
def test_a_cost_cap_stops_the_run_cleanly_and_resume_with_a_larger_cap_continues(tmp_path, caplog):
    output = tmp_path / "run"
    prices = {"chat-model": {"prompt": PRICE.prompt, "completion": PRICE.completion}}
    # Answers without a diff: charged attempts that cost tokens and train nothing (only the baseline trains).
    with FaultServer("no_diff") as server:
        config = endpoint_config(tmp_path, server.url, cost={"prices": prices, "max_cost": 0.001})
        with caplog.at_level(logging.INFO, logger="openevolve_genesys"):
            openevolve_genesys.run(str(config), iterations=10, output=str(output), profile="smoke")
        charged = [e for e in events(output) if e["type"] == "design" and e["attempt"]]
        assert len(charged) == 1  # one answer costs more than the cap
        prompt, completion, cost = spent(output)
        assert prompt == 1 and completion == charged[0]["tokens"] > 0  # the fault server's usage chunk
        summary = json.loads((output / "summary.json").read_text())
        assert summary["spend"] == {"prompt_tokens": prompt, "completion_tokens": completion,
                                    "total_tokens": prompt + completion, "cost": pytest.approx(cost),
                                    "estimated": False}
        assert summary["models"]["chat-model"]["cost"] == pytest.approx(cost)
        assert summary["stopped_by"].startswith("genesys.cost.max_cost=0.001 reached: 1 prompt + ")
        assert json.loads((output / "state.json").read_text())["attempts"] == 1
        assert any(f"${cost:.4f}" in r.getMessage() and "stopped by a spending cap" in r.getMessage()
                   for r in caplog.records)
        # A larger cap: the run goes on until the next answer passes it.
        rewrite(output / "config.yaml", lambda raw: raw["genesys"]["cost"].update(max_cost=cost + 0.0001))
        openevolve_genesys.run(str(output / "config.yaml"), iterations=10, output=str(output), resume=True,
                               profile="smoke")
        assert [e["attempt"] for e in events(output) if e["type"] == "design" and e["attempt"]] == [1, 2]
        assert json.loads((output / "summary.json").read_text())["spend"]["cost"] == pytest.approx(spent(output)[2])
        # The same cap again: it stops at once, with the message, and asks the server nothing.
        asked = server.total
        caplog.clear()
        with caplog.at_level(logging.INFO, logger="openevolve_genesys"):
            openevolve_genesys.run(str(output / "config.yaml"), iterations=10, output=str(output), resume=True,
                                   profile="smoke")
        assert server.total == asked and len([e for e in events(output) if e["type"] == "design"]) == 2
        assert any("stopping: genesys.cost.max_cost=" in r.getMessage() for r in caplog.records)


@pytest.mark.slow
def test_an_always_hanging_endpoint_ends_the_run_and_resume_against_a_working_one_continues(tmp_path):
    output = tmp_path / "run"
    with FaultServer("hang") as server:
        url, config = server.url, endpoint_config(tmp_path, server.url)
        with pytest.raises(LLMEndpointDown) as err:
            openevolve_genesys.run(str(config), iterations=2, output=str(output), profile="smoke")
    message = str(err.value)
    assert url in message and "failed 5 calls in a row" in message and "first_token_seconds" in message
    assert "Likely fix: the server accepts the request but sends no answer in time" in message
    designs = [e for e in events(output) if e["type"] == "design"]
    assert len(designs) == 5 and {e["class"] for e in designs} == {"stalled"}
    # Each hung call was accepted, so its prompt is billed: estimated at characters / 4.
    assert all(e["prompt_tokens"] > 100 and e["tokens_estimated"] for e in designs)
    assert json.loads((output / "state.json").read_text())["attempts"] == 0
    with FaultServer("no_diff") as server:  # an answer, if a useless one: a charged attempt
        rewrite(output / "config.yaml", lambda raw: raw["llm"]["models"][0].update(api_base=server.url))
        openevolve_genesys.run(str(output / "config.yaml"), iterations=1, output=str(output), resume=True,
                               profile="smoke")
    assert [e["attempt"] for e in events(output) if e["type"] == "design" and e["attempt"]] == [1]


@pytest.mark.slow
def test_uncharged_time_over_its_share_stops_the_run_when_the_streak_never_would(tmp_path):
    output = tmp_path / "run"
    with FaultServer("hang") as server:
        config = endpoint_config(tmp_path, server.url)
        rewrite(config, lambda raw: raw["llm"].update(max_consecutive_failures=0, max_uncharged_share=0.5,
                                                      uncharged_min_seconds=1.5))
        with pytest.raises(LLMEndpointDown, match=r"stalled and infra jobs took \d+ s, \d+% of the \d+ s x 1 worker "
                                                  r"time since the run started \(llm.max_uncharged_share=0.5\)"):
            openevolve_genesys.run(str(config), iterations=2, output=str(output), profile="smoke")
    designs = [e for e in events(output) if e["type"] == "design"]
    assert len(designs) >= 3 and {e["class"] for e in designs} == {"stalled"}  # 3 x 0.5 s reach the minimum
    assert (output / "state.json").exists() and (output / "summary.json").exists()


@pytest.mark.slow
def test_at_the_cap_the_jobs_in_flight_finish_and_are_recorded_and_none_starts(tmp_path):
    output = tmp_path / "run"
    with FaultServer("no_diff") as server:
        config = endpoint_config(tmp_path, server.url, workers=2, cost={"max_total_tokens": 1})
        openevolve_genesys.run(str(config), iterations=10, output=str(output), profile="smoke")
        assert server.total == 2  # both slots were filled before any result was recorded
    designs = [e for e in events(output) if e["type"] == "design"]
    assert [e["attempt"] for e in designs] == [1, 2] and all(e["tokens"] > 0 for e in designs)
    summary = json.loads((output / "summary.json").read_text())
    assert summary["spend"]["total_tokens"] == sum(e["prompt_tokens"] + e["tokens"] for e in designs)
    assert summary["spend"]["cost"] is None and summary["stopped_by"].startswith("genesys.cost.max_total_tokens=1")
