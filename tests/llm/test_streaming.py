"""The streaming client against a real OpenAI-compatible server on loopback, through OpenEvolve's ensemble."""

import asyncio
import math
import pickle
import socket
import sys
import time
from concurrent.futures import ThreadPoolExecutor
from functools import partial
from pathlib import Path

import pytest
from openevolve.config import LLMModelConfig
from openevolve.llm.ensemble import LLMEnsemble
from openevolve.llm.openai import OpenAILLM
from openevolve.utils.code_utils import extract_diffs

from openevolve_genesys.llm.streaming import (LLMRequestRejected, LLMStalled, LLMUnavailable, StallPolicy,
                                              StreamingLLM, classify_llm_error, init_streaming_client)

if str(Path(__file__).parent) not in sys.path:  # the fault server is a helper module next to this file
    sys.path.insert(0, str(Path(__file__).parent))
from fault_server import DEFAULT_TEXT, FaultServer, Reply, answer  # noqa: E402

FAST = StallPolicy(first_token_seconds=1.0, idle_seconds=1.0)
SYSTEM, USER = "You are a careful designer.", "Mutate the Score unit."


def ensemble(server: FaultServer, policy: StallPolicy = FAST, **settings) -> LLMEnsemble:
    """The plugin's normal path: an LLMModelConfig whose init_client builds the streaming client.
    The global timeout is long on purpose: every cut below must come from the stall policy."""
    settings = {"retries": 2, "retry_delay": 0, "timeout": 600, **settings}
    model = LLMModelConfig(name="fake-model", api_base=server.url, api_key="x",
                           init_client=partial(init_streaming_client, policy=policy), **settings)
    return LLMEnsemble([model])


def ask(llm: LLMEnsemble) -> str:
    # The outer limit only turns a broken stall policy into a quick failure (TimeoutError) instead of a hang.
    call = llm.generate_with_context(SYSTEM, [{"role": "user", "content": USER}])
    return asyncio.run(asyncio.wait_for(call, timeout=10))


def fails(llm: LLMEnsemble, kind: type[Exception]) -> tuple[Exception, float]:
    start = time.monotonic()
    with pytest.raises(kind) as caught:
        ask(llm)
    return caught.value, time.monotonic() - start


def test_ok_returns_the_streamed_text_through_the_ensemble():
    with FaultServer(answer(DEFAULT_TEXT)) as server:
        llm = ensemble(server, max_tokens=123, temperature=0.5)
        client = llm.models[0]
        assert isinstance(client, StreamingLLM) and client.model == "fake-model"
        assert ask(llm) == DEFAULT_TEXT
        body = server.received[0].body
    assert body["stream"] is True and body["model"] == "fake-model"
    assert body["max_tokens"] == 123 and body["temperature"] == 0.5
    assert body["messages"] == [{"role": "system", "content": SYSTEM}, {"role": "user", "content": USER}]
    assert client.last_call.outcome == "ok" and client.last_call.retries == 0
    assert client.last_call.tokens == math.ceil(len(DEFAULT_TEXT) / 4)


def test_hang_is_cut_as_stalled_after_first_token_seconds_and_never_retried():
    with FaultServer("hang") as server:
        llm = ensemble(server)
        error, seconds = fails(llm, LLMStalled)
        assert server.requests == {"hang": 1}  # retries=2, yet a stall goes straight back to the caller
        assert server.url in str(error)
    assert 0.9 < seconds < 2.5
    assert error.tokens == 0 and 0.9 < error.seconds < 2.5
    assert "first_token_seconds=1" in str(error) and "fake-model" in str(error)
    assert llm.models[0].last_call.outcome == "stalled"
    assert classify_llm_error(error) == "stalled"


def test_a_stream_that_stops_is_cut_after_idle_seconds():
    # One token a second against a 0.5 s idle limit: the first token arrives, the second is too late.
    policy = StallPolicy(first_token_seconds=3.0, idle_seconds=0.5)
    with FaultServer(Reply("slow", tokens_per_second=1.0)) as server:
        error, seconds = fails(ensemble(server, policy), LLMStalled)
    assert 1.3 < seconds < 2.5 and error.tokens == 1
    assert "idle_seconds=0.5" in str(error)


def test_slow_stream_under_the_rate_floor_is_cut_as_stalled():
    policy = StallPolicy(first_token_seconds=1.0, idle_seconds=1.0, min_tokens_per_second=20.0, grace_seconds=0.5)
    with FaultServer(Reply("slow", tokens_per_second=5.0)) as server:
        error, seconds = fails(ensemble(server, policy), LLMStalled)
        assert server.requests == {"slow": 1}
    assert seconds < 1.5  # the whole answer would take len/4/5 = 7 s
    assert 0 < error.tokens < math.ceil(len(DEFAULT_TEXT) / 4)
    assert "min_tokens_per_second=20" in str(error)


def test_slow_stream_above_the_rate_floor_succeeds():
    policy = StallPolicy(first_token_seconds=1.0, idle_seconds=1.0, min_tokens_per_second=20.0, grace_seconds=0.1)
    with FaultServer(Reply("slow", tokens_per_second=200.0)) as server:
        assert ask(ensemble(server, policy)) == DEFAULT_TEXT


def test_a_healthy_stream_past_the_per_attempt_timeout_is_cut_too():
    # llm.timeout still bounds one attempt, so a runaway answer cannot stream forever.
    with FaultServer(Reply("slow", tokens_per_second=20.0)) as server:
        error, seconds = fails(ensemble(server, timeout=0.5), LLMStalled)
        assert server.requests == {"slow": 1}
    assert seconds < 1.2 and error.tokens > 0 and "per-attempt timeout of 0.5 s" in str(error)


@pytest.mark.parametrize("mode", ["http_500", "http_429", "malformed", "no_choices"])
def test_infra_faults_are_retried_then_raise_unavailable(mode):
    with FaultServer(mode) as server:
        llm = ensemble(server, retries=2)
        error, _ = fails(llm, LLMUnavailable)
        assert server.requests == {mode: 3}
    assert llm.models[0].last_call.retries == 2 and llm.models[0].last_call.outcome == "infra"
    assert "3 attempt(s)" in str(error) and classify_llm_error(error) == "infra"
    if mode.startswith("http_"):
        assert f"HTTP {mode[5:]}" in str(error)
    else:
        assert "malformed" in str(error)


def test_a_transient_fault_is_retried_into_an_answer():
    with FaultServer(["http_500", "http_429", "ok"]) as server:
        llm = ensemble(server, retries=2)
        assert ask(llm) == DEFAULT_TEXT
        assert server.requests == {"http_500": 1, "http_429": 1, "ok": 1}
    assert llm.models[0].last_call.retries == 2


def test_bad_request_is_not_retried_and_blames_the_configuration():
    with FaultServer("http_400") as server:
        error, _ = fails(ensemble(server), LLMRequestRejected)
        assert server.requests == {"http_400": 1}
    assert "configuration" in str(error) and classify_llm_error(error) == "invalid"


def test_unreachable_endpoint_raises_unavailable():
    with socket.socket() as probe:  # a port nothing listens on
        probe.bind(("127.0.0.1", 0))
        port = probe.getsockname()[1]
    model = LLMModelConfig(name="nowhere", api_base=f"http://127.0.0.1:{port}/v1", retries=1, retry_delay=0,
                           init_client=partial(init_streaming_client, policy=FAST))
    with pytest.raises(LLMUnavailable, match="connection failed"):
        ask(LLMEnsemble([model]))


def test_no_diff_answer_reaches_the_caller_as_text_without_a_diff():
    with FaultServer("no_diff") as server:
        text = ask(ensemble(server))
    assert text and extract_diffs(text) == []


def test_classify_maps_the_stock_clients_errors():
    """The same server through OpenEvolve's own client, whose errors are raw SDK or asyncio exceptions."""
    def stock_error(script) -> Exception:
        with FaultServer(script) as server:
            client = OpenAILLM(LLMModelConfig(name="m", api_base=server.url, api_key="x", retries=0,
                                              retry_delay=0, timeout=1))
            with pytest.raises(Exception) as caught:
                asyncio.run(client.generate_with_context(SYSTEM, [{"role": "user", "content": USER}]))
            return caught.value

    expected = {"hang": "stalled", "http_500": "infra", "http_429": "infra", "malformed": "infra",
                "http_400": "invalid"}
    seen = {mode: classify_llm_error(stock_error(mode)) for mode in expected}
    assert seen == expected
    assert classify_llm_error(asyncio.TimeoutError()) == "stalled"
    assert classify_llm_error(ConnectionRefusedError()) == "infra"
    assert classify_llm_error(KeyError("choices")) == "invalid"


def test_init_client_partial_and_errors_pickle():
    policy = StallPolicy(first_token_seconds=5.0, idle_seconds=2.0, min_tokens_per_second=3.0)
    hook = pickle.loads(pickle.dumps(partial(init_streaming_client, policy=policy)))
    client = hook(LLMModelConfig(name="m", api_base="http://127.0.0.1:9/v1"))
    assert isinstance(client, StreamingLLM) and client.policy == policy and client.model == "m"
    error = pickle.loads(pickle.dumps(LLMStalled("cut", 1.5, 7, "m", "http://x/v1")))
    assert (type(error), str(error), error.seconds, error.tokens, error.model) == (LLMStalled, "cut", 1.5, 7, "m")


@pytest.mark.parametrize("field,value", [("first_token_seconds", 0), ("idle_seconds", -1.0),
                                         ("min_tokens_per_second", float("nan")), ("grace_seconds", True)])
def test_stall_policy_rejects_bad_values(field, value):
    with pytest.raises(ValueError, match=f"StallPolicy.{field}"):
        StallPolicy(**{field: value})


def test_missing_api_base_is_named(monkeypatch):
    for name in ("OPENAI_API_BASE", "OPENAI_BASE_URL"):
        monkeypatch.delenv(name, raising=False)
    with pytest.raises(ValueError, match="api_base"):
        StreamingLLM(LLMModelConfig(name="m"))


def test_a_key_set_only_in_the_environment_is_sent_and_the_yaml_key_wins(monkeypatch):
    monkeypatch.setenv("OPENAI_API_KEY", "sk-from-env")
    with FaultServer("ok") as server:
        model = LLMModelConfig(name="m", api_base=server.url, init_client=partial(init_streaming_client, policy=FAST))
        ask(LLMEnsemble([model]))
        ask(LLMEnsemble([LLMModelConfig(name="m", api_base=server.url, api_key="sk-from-yaml",
                                        init_client=partial(init_streaming_client, policy=FAST))]))
        sent = [request.headers["authorization"] for request in server.received]
    assert sent == ["Bearer sk-from-env", "Bearer sk-from-yaml"]


def test_an_endpoint_set_only_in_the_environment_replaces_openais_default(monkeypatch):
    with FaultServer("ok") as server:
        monkeypatch.setenv("OPENAI_BASE_URL", server.url)
        client = StreamingLLM(LLMModelConfig(name="m", api_base="https://api.openai.com/v1"), FAST)
        assert client.api_base == server.url and client.api_key == "none"
        assert asyncio.run(client.generate(USER)) == DEFAULT_TEXT
        assert server.total == 1
    assert StreamingLLM(LLMModelConfig(name="m", api_base="http://127.0.0.1:9/v1")).api_base == "http://127.0.0.1:9/v1"


def test_tokens_are_the_servers_count_when_it_sends_usage():
    with FaultServer("ok") as server:
        llm = ensemble(server)
        ask(llm)
        assert server.received[0].wants_usage
    expected = math.ceil(len(DEFAULT_TEXT) / 4)  # the fault server's usage: 4 characters a token
    usage = llm.models[0].last_usage
    assert (usage["completion_tokens"], usage["prompt_tokens"], usage["estimated"]) == (expected, 1, False)
    assert llm.last_usage == usage and llm.models[0].last_call.tokens == expected  # what the ensemble copies


PROMPT_ESTIMATE = math.ceil(len(SYSTEM + USER) / 4)  # the prompt's characters / 4


def test_without_usage_the_text_chunks_are_counted_and_the_prompt_estimated():
    with FaultServer("ok", usage="ignore") as server:  # 16 characters a chunk
        llm = ensemble(server)
        ask(llm)
    usage = llm.models[0].last_usage
    assert (usage["completion_tokens"], usage["prompt_tokens"]) == (math.ceil(len(DEFAULT_TEXT) / 16),
                                                                    PROMPT_ESTIMATE)
    assert usage["estimated"]


def test_a_prompt_the_server_accepted_costs_tokens_even_when_the_call_stalls_and_a_refused_one_none():
    with FaultServer("hang") as server:  # headers, then nothing: the server has read the prompt
        llm = ensemble(server)
        fails(llm, LLMStalled)
    usage = llm.models[0].last_usage
    assert (usage["prompt_tokens"], usage["completion_tokens"], usage["estimated"]) == (PROMPT_ESTIMATE, 0, True)
    with FaultServer("http_500") as server:  # refused on each of its 1 + 1 attempts: nothing billed
        llm = ensemble(server, retries=1)
        fails(llm, LLMUnavailable)
    usage = llm.models[0].last_usage
    assert (usage["prompt_tokens"], usage["completion_tokens"], usage["estimated"]) == (0, 0, False)


def test_a_server_that_refuses_stream_options_is_asked_again_without_them():
    with FaultServer("ok", usage="reject") as server:
        llm = ensemble(server)
        assert ask(llm) == DEFAULT_TEXT
        assert ask(llm) == DEFAULT_TEXT
        assert server.total == 2 and not any(r.wants_usage for r in server.received)
    assert llm.models[0].last_usage["completion_tokens"] == math.ceil(len(DEFAULT_TEXT) / 16)
    assert llm.models[0].last_call.retries == 0


def test_tokens_received_before_a_stall_or_a_failure_are_counted():
    policy = StallPolicy(first_token_seconds=3.0, idle_seconds=0.5)
    with FaultServer(Reply("slow", tokens_per_second=1.0)) as server:
        llm = ensemble(server, policy)
        error, _ = fails(llm, LLMStalled)
    assert error.tokens == 1 and llm.models[0].last_usage["completion_tokens"] == 1
    assert llm.models[0].last_usage["estimated"]
    with FaultServer(["http_500", "ok"]) as server:  # a retried call counts every attempt
        llm = ensemble(server, retries=1)
        ask(llm)
    assert llm.models[0].last_usage["completion_tokens"] == math.ceil(len(DEFAULT_TEXT) / 4)
    assert llm.models[0].last_usage["prompt_tokens"] == 1  # the server's count; the HTTP 500 billed none


def test_a_call_cancelled_by_the_caller_keeps_what_it_received():
    with FaultServer(Reply("slow", tokens_per_second=10.0)) as server:
        client = ensemble(server, timeout=600).models[0]
        call = client.generate_with_context(SYSTEM, [{"role": "user", "content": USER}])
        with pytest.raises(TimeoutError):
            asyncio.run(asyncio.wait_for(call, timeout=0.45))
    assert 2 <= client.last_usage["completion_tokens"] <= 5


def test_each_thread_sees_its_own_calls_usage():
    with FaultServer(lambda request: answer("x" * int(request.last_user_message))) as server:
        client = ensemble(server).models[0]

        def call(chars: int) -> int:
            asyncio.run(client.generate(str(chars)))
            return client.last_usage["completion_tokens"]

        with ThreadPoolExecutor(max_workers=4) as pool:
            counts = list(pool.map(call, [40, 400, 4000, 40000] * 3))
    assert counts == [10, 100, 1000, 10000] * 3


def test_fault_server_script_repeats_its_last_entry_and_stops_while_a_request_hangs():
    seen = []
    with FaultServer(lambda request: seen.append(request.last_user_message) or "no_diff") as server:
        ask(ensemble(server))
    assert seen == [USER]
    server = FaultServer(["ok", "hang"]).start()
    llm = ensemble(server, policy=StallPolicy(first_token_seconds=0.3, idle_seconds=0.3))
    assert ask(llm) == DEFAULT_TEXT
    for _ in range(2):
        fails(llm, LLMStalled)
    assert server.requests == {"ok": 1, "hang": 2}
    start = time.monotonic()
    server.stop()  # two handlers are still parked in "hang"
    assert time.monotonic() - start < 1.0
    with pytest.raises(ValueError, match="unknown fault-server mode"):
        Reply("explode")
