"""A run against a real OpenAI-compatible server on loopback that hangs, fails and talks nonsense.

The plugin talks to it through its normal configuration (``llm.api_base``, a key, the streaming client).
Stalls and infra faults are re-queued and never charged; after the re-queue limit they are quarantined;
answers without a diff are real, failed attempts. The summary counts what happened.
"""

import json
import math

import pytest
import yaml

import openevolve_genesys
from fault_server import NO_DIFF_TEXT, FaultServer, Reply, Request
from openevolve_genesys.controller.accounting import CHARGED
from openevolve_genesys.mutations.client import OfflineMutationLLM
from run_configs import events, run_config

pytestmark = pytest.mark.slow


def mutating(script: list):
    """Serve ``script``'s entries in order (a mode name or a Reply); 'ok' answers like the offline mutator
    would (a real diff)."""
    mutator = OfflineMutationLLM()

    def choose(request: Request) -> Reply:
        mode = script[request.index] if request.index < len(script) else "ok"
        if isinstance(mode, Reply):
            return mode
        return Reply("ok", text=mutator.respond(request.last_user_message)) if mode == "ok" else Reply(mode)
    return choose


def endpoint_config(tmp_path, url):
    path = run_config(tmp_path, "coefficient_dynamics", requeue_limit=1,
                      stall={"first_token_seconds": 2.0, "idle_seconds": 1.0})
    raw = yaml.safe_load(path.read_text())
    raw["llm"] = {"models": [{"name": "fault-model", "api_base": url, "api_key": "test-key", "weight": 1.0}],
                  "retries": 1, "retry_delay": 0, "timeout": 60}
    path.write_text(yaml.safe_dump(raw))
    return path


def test_faults_are_classified_requeued_quarantined_and_never_charged(tmp_path):
    # Six design events, two trainings. Infra faults in the retry slot of a call (llm.retries=1) cost no event.
    trickle = Reply("slow", tokens_per_second=0.7)  # one token at 1.4 s, the next too late for idle_seconds=1
    script = ["hang",                      # design 1: stalled (no first token), re-queued ...
              "http_500", "ok",            # ... answered after a transient 500: charged attempt 1
              "http_429", "no_choices",    # design 2: infra (429, then no usable choices), re-queued ...
              trickle,                     # ... stalled after one token at the re-queue limit: quarantined
              "no_diff",                   # design 3: an answer without a diff is a real, failed attempt
              "malformed", "ok"]           # design 4: answered after a malformed stream: charged attempt 3
    with FaultServer(mutating(script)) as server:
        output = tmp_path / "run"
        openevolve_genesys.run(str(endpoint_config(tmp_path, server.url)), iterations=3, output=str(output),
                               profile="smoke")
        assert server.requests == {"hang": 1, "http_500": 1, "http_429": 1, "no_choices": 1, "slow": 1,
                                   "malformed": 1, "no_diff": 1, "ok": 2}
    designs = [e for e in events(output) if e["type"] == "design"]
    assert [e["class"] for e in designs[:4]] == ["stalled", designs[1]["class"], "infra", "stalled"]
    assert designs[1]["class"] in CHARGED and designs[4]["class"] == "invalid" and designs[5]["class"] in CHARGED
    assert "first_token_seconds" in designs[0]["message"] and "idle_seconds" in designs[3]["message"]
    assert "without any choices" in designs[2]["message"]  # after the 429 was retried
    assert [e["requeued"] for e in designs[:5]] == [True, False, True, False, False]
    assert [e["quarantined"] for e in designs[:5]] == [False, False, False, True, False]
    assert [e["attempt"] for e in designs] == [None, 1, None, None, 2, 3]
    assert designs[0]["seed_id"] == designs[1]["seed_id"]  # the same seed and prompt, re-queued
    assert designs[2]["seed_id"] == designs[3]["seed_id"]
    # Tokens: the server's usage for answers; for the cut stream, the one chunk received before the cut.
    assert [e["tokens"] for e in designs[:4]] == [0, designs[1]["tokens"], 0, 1] and designs[1]["tokens"] > 0
    assert designs[4]["tokens"] == math.ceil(len(NO_DIFF_TEXT) / 4)
    summary = json.loads((output / "summary.json").read_text())
    model = summary["models"]["fault-model"]
    assert summary["charged_attempts"] == 3 and model["charged"] == 3
    assert (model["outcomes"]["stalled"], model["outcomes"]["infra"], model["outcomes"]["invalid"]) == (2, 1, 1 + (
        designs[1]["class"] == "invalid") + (designs[5]["class"] == "invalid"))
    assert (model["requeued"], model["quarantined"]) == (2, 1)
    assert model["wasted_seconds"] > 0 and model["stall_rate"] == pytest.approx(2 / 6)
    assert (model["tokens"], model["wasted_tokens"]) == (sum(e["tokens"] for e in designs), 1)


def test_a_rejected_request_stops_the_run_with_the_endpoint_message(tmp_path):
    with FaultServer("http_400") as server:
        output = tmp_path / "run"
        with pytest.raises(openevolve_genesys.config.ConfigError, match="rejected the request"):
            openevolve_genesys.run(str(endpoint_config(tmp_path, server.url)), iterations=2, output=str(output),
                                   profile="smoke")
    assert (output / "state.json").exists()  # saved before stopping
