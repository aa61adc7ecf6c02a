"""Through the real controller and a loopback OpenAI-compatible server: a refused endpoint ends the run on its
own, saved and resumable; answers written the way chat models write them become evaluated children; an
answer leaving a syntax error is recorded and neither the run nor its --resume dies of it."""

from __future__ import annotations

import json
import re
import socket

import pytest
import yaml

import openevolve_genesys
from fault_server import FaultServer, Reply, Request
from openevolve_genesys.controller.breaker import LLMEndpointDown
from openevolve_genesys.mutations.client import OfflineMutationLLM
from run_configs import events, run_config

pytestmark = pytest.mark.slow
SEED = re.compile(r"## Seed program\n```python\n(.*?)\n```\n", re.DOTALL)
LOGITS = re.compile(r"^( *)(logits = logits \* \(.*math\.sqrt\(q\.shape\[-1\]\)\) \+ g)$", re.MULTILINE)


def endpoint_config(tmp_path, url: str):
    # No verification beyond what the budget forces: each attempt trains only the smallest rung.
    path = run_config(tmp_path, "coefficient_dynamics", requeue_limit=1, selector={"verify_share": 0.0},
                      stall={"first_token_seconds": 2.0, "idle_seconds": 1.0})
    raw = yaml.safe_load(path.read_text())
    raw["llm"] = {"models": [{"name": "chat-model", "api_base": url, "api_key": "test-key", "weight": 1.0}],
                  "retries": 1, "retry_delay": 0, "timeout": 60}
    path.write_text(yaml.safe_dump(raw))
    return path


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def test_a_refused_endpoint_stops_the_run_with_one_message_and_resume_continues(tmp_path):
    url = f"http://127.0.0.1:{free_port()}/v1"
    output = tmp_path / "run"
    config = endpoint_config(tmp_path, url)
    with pytest.raises(LLMEndpointDown) as err:
        openevolve_genesys.run(str(config), iterations=2, output=str(output), profile="smoke")
    message = str(err.value)
    assert url in message and "'chat-model'" in message and "5 calls in a row" in message
    assert "Likely fix: nothing answers at that address" in message and "--resume" in message
    designs = [e for e in events(output) if e["type"] == "design"]
    assert len(designs) == 5 and {e["class"] for e in designs} == {"infra"}
    assert (output / "state.json").exists() and json.loads((output / "state.json").read_text())["attempts"] == 0
    # Fixed (here: a server now answers at a new address), the same run continues from its saved state.
    mutator = OfflineMutationLLM()
    with FaultServer(lambda r: Reply("ok", mutator.respond(r.last_user_message))) as server:
        raw = yaml.safe_load((output / "config.yaml").read_text())
        raw["llm"]["models"][0]["api_base"] = server.url
        (output / "config.yaml").write_text(yaml.safe_dump(raw))
        openevolve_genesys.run(str(output / "config.yaml"), iterations=1, output=str(output), resume=True,
                               profile="smoke")
    charged = [e for e in events(output) if e["type"] == "design" and e["attempt"]]
    assert len(charged) == 1 and sum(e["type"] == "baseline" for e in events(output)) == 1


def scaled(seed: str, factor: str) -> tuple[str, str, str]:
    """(indent, the seed's logits line, the line scaled by ``factor``)."""
    indent, line = LOGITS.search(seed).groups()
    return indent, line, line.replace("math.sqrt(", f"{factor} * math.sqrt(", 1)


def block(search: str, replace: str) -> str:
    return f"<<<<<<< SEARCH\n{search}\n=======\n{replace}\n>>>>>>> REPLACE\n"


def chat_answer(request: Request) -> Reply:
    """Answer i of the run in style i, each computed from the seed the prompt shows."""
    seed = SEED.search(request.last_user_message).group(1) + "\n"
    i = request.index
    indent, line, new = scaled(seed, f"1.{i + 1}")
    styles = [
        lambda: f"Operator: Coefficients:rewrite\n```python\n{seed.replace(indent + line, indent + new)}```\n",
        lambda: "Operator: Coefficients:drift\n" + block("  " + line + "  ", "  " + new),
        lambda: ("<think>\nFirst idea:\n" + block("not in the seed", "x") + "Better: scale.\n</think>\n"
                 "Operator: Coefficients:think\n" + block(indent + line, indent + new)),
        lambda: ("Operator: Coefficients:partial\n" + block(indent + "logits = undefined_name(q)", indent + "x")
                 + block(indent + line, indent + new)),
        lambda: "Operator: Coefficients:broken\n" + block(indent + line, indent + new + " + ("),
    ]
    if i < len(styles):
        return Reply("ok", styles[i]())
    return Reply("ok", OfflineMutationLLM().respond(request.last_user_message))


def test_chat_style_answers_become_evaluated_children_and_a_broken_one_survives_resume(tmp_path):
    output = tmp_path / "run"
    with FaultServer(chat_answer) as server:
        config = endpoint_config(tmp_path, server.url)
        openevolve_genesys.run(str(config), iterations=5, output=str(output), profile="smoke")
        designs = [e for e in events(output) if e["type"] == "design"]
        by_operator = {e["operator"].split(":")[1]: e for e in designs}
        for style in ("rewrite", "drift", "think", "partial"):
            event = by_operator[style]
            assert event["code"] and event["rungs"], (style, event["failure"], event["message"])
            assert event["class"] == "ok", (style, event["outcome"], event["artifacts"].get("message"))
        assert "re-indented" in by_operator["drift"]["notes"][0]
        assert by_operator["partial"]["notes"][0].startswith("block 1 of 2 was not applied")
        broken = by_operator["broken"]
        # Caught by the parent's parse ("syntax"), or, when tune runs in the design's job, by the sandbox's check.
        kind = broken["failure"] or broken["metrics"].get("check")
        assert broken["outcome"] in (None, "invalid")  # no evaluation ran, or it failed its check
        assert kind == "syntax" and broken["class"] == "invalid" and broken["attempt"] == 5
        openevolve_genesys.run(str(config), iterations=6, output=str(output), resume=True, profile="smoke")
    charged = [e["attempt"] for e in events(output) if e["type"] == "design" and e["attempt"]]
    assert charged == [1, 2, 3, 4, 5, 6]


def noop_answer(request: Request) -> Reply:
    """The first answer changes the code but not the function (``* 1.0`` on the logits); the rest are offline."""
    if request.index == 0:
        seed = SEED.search(request.last_user_message).group(1) + "\n"
        indent, line, _ = scaled(seed, "1.0")
        return Reply("ok", "Operator: Coefficients:noop\n" + block(indent + line, indent + line + " * 1.0"))
    return Reply("ok", OfflineMutationLLM().respond(request.last_user_message))


def test_a_child_equal_in_function_to_its_seed_is_charged_but_never_trained(tmp_path):
    output = tmp_path / "run"
    with FaultServer(noop_answer) as server:
        openevolve_genesys.run(str(endpoint_config(tmp_path, server.url)), iterations=2, output=str(output),
                               profile="smoke")
    designs = [e for e in events(output) if e["type"] == "design"]
    noop = next(e for e in designs if e["operator"].endswith(":noop"))
    assert noop["code"] and noop["class"] == "invalid" and noop["attempt"] == 1
    assert noop["metrics"]["check"] == "no_change", (noop["outcome"], noop["artifacts"].get("message"))
    assert noop["rungs"] == {} and not noop.get("train_seconds")
    assert noop["metrics"]["probe_distance"] == 0.0
    # The next attempt still trains: the screen cost one attempt, not the run.
    assert any(e["class"] == "ok" and e["rungs"] for e in designs if e is not noop)
