"""Repair rounds through the real controller and a loopback OpenAI-compatible server: a syntax slip answered by
a fixed reply is repaired, evaluated and charged once, its round in the history and the summary, and --resume
replays it; a child still broken after ``repair_rounds`` replies is charged invalid once with the last message;
``repair_rounds: 0`` makes no repair call."""

from __future__ import annotations

import json

import pytest
import yaml

import openevolve_genesys
from fault_server import FaultServer, Reply, Request
from openevolve_genesys.mutations.client import OfflineMutationLLM
from openevolve_genesys.prompts.repair import CHILD_HEADING
from run_configs import events
from test_endpoint_answers import SEED, block, endpoint_config, scaled

pytestmark = pytest.mark.slow
SLIP = " + ("


def repair_config(tmp_path, url: str, rounds: int):
    path = endpoint_config(tmp_path, url)
    raw = yaml.safe_load(path.read_text())
    raw["genesys"]["repair_rounds"] = rounds
    path.write_text(yaml.safe_dump(raw))
    return path


def slipped(request: Request) -> str:
    """The first answer: a correct scaling of the seed's logits line with a parenthesis never closed."""
    indent, line, new = scaled(SEED.search(request.last_user_message).group(1) + "\n", "1.5")
    return "Operator: Coefficients:scaled\n" + block(indent + line, indent + new + SLIP)


def fixed(request: Request) -> str:
    """A repair that closes the slip, computed from the child the repair prompt shows."""
    child = request.last_user_message.split(CHILD_HEADING, 1)[1]
    broken = next(line for line in child.splitlines() if line.endswith(SLIP))
    return "Operator: Coefficients:scaled\n" + block(broken, broken[:-len(SLIP)])


def designs(output) -> list[dict]:
    return [e for e in events(output) if e["type"] == "design"]


def test_a_syntax_slip_is_repaired_charged_once_recorded_and_replayed(tmp_path):
    output, mutator = tmp_path / "run", OfflineMutationLLM()

    def script(request: Request) -> Reply:
        if CHILD_HEADING in request.last_user_message:
            return Reply("ok", fixed(request))
        return Reply("ok", slipped(request) if request.index == 0 else mutator.respond(request.last_user_message))

    with FaultServer(script) as server:
        config = repair_config(tmp_path, server.url, rounds=2)
        openevolve_genesys.run(str(config), iterations=1, output=str(output), profile="smoke")
        assert server.total == 2  # the design answer and one repair, the same model
        (event,) = designs(output)
        assert event["attempt"] == 1 and event["class"] == "ok" and event["rungs"], event["artifacts"]
        assert "1.5 * math.sqrt(" in event["code"] and SLIP not in event["code"]
        (round_,) = event["repairs"]
        assert (round_["round"], round_["kind"], round_["result"], round_["fixed"]) == (1, "syntax", "passed", True)
        assert "never closed" in round_["message"] and round_["tokens"] > 0 and round_["seconds"] > 0
        first_tokens = -(-len(slipped(server.received[0])) // 4)  # the server's own count: 4 characters a token
        assert event["tokens"] == first_tokens + round_["tokens"]
        summary = json.loads((output / "summary.json").read_text())
        assert summary["repairs"] == {"attempts": 1, "rounds": 1, "saved": 1, "tokens": round_["tokens"],
                                      "seconds": pytest.approx(round_["seconds"], abs=0.01)}
        assert summary["charged_attempts"] == 1
        openevolve_genesys.run(str(config), iterations=2, output=str(output), resume=True, profile="smoke")
    assert [e["attempt"] for e in designs(output) if e["attempt"]] == [1, 2]
    summary = json.loads((output / "summary.json").read_text())
    assert summary["repairs"]["saved"] == 1 and summary["repairs"]["rounds"] == 1  # the replayed round counts


def test_a_child_still_broken_is_charged_invalid_once_and_zero_rounds_make_no_repair_call(tmp_path):
    def script(request: Request) -> Reply:
        if CHILD_HEADING not in request.last_user_message:
            return Reply("ok", slipped(request))
        if "Repair round 1 of" in request.last_user_message:
            return Reply("no_diff")
        child = request.last_user_message.split(CHILD_HEADING, 1)[1]
        broken = next(line for line in child.splitlines() if line.endswith(SLIP))
        return Reply("ok", block(broken, broken + "("))  # deeper into the same hole

    with FaultServer(script) as server:
        output = tmp_path / "still"
        openevolve_genesys.run(str(repair_config(tmp_path, server.url, rounds=2)), iterations=1, output=str(output),
                               profile="smoke")
        assert server.total == 3 and server.requests["no_diff"] == 1
    (event,) = designs(output)
    assert event["attempt"] == 1 and event["class"] == "invalid" and event["metrics"]["check"] == "syntax"
    assert [(r["result"], r["fixed"]) for r in event["repairs"]] == [("no_diff", False), ("syntax", False)]
    assert "no SEARCH/REPLACE block" in event["repairs"][0]["detail"]
    assert SLIP + "(" in event["code"] and "never closed" in event["artifacts"]["message"]
    assert json.loads((output / "summary.json").read_text())["repairs"]["saved"] == 0

    with FaultServer(script) as server:
        output, folder = tmp_path / "off", tmp_path / "off-config"
        folder.mkdir()
        openevolve_genesys.run(str(repair_config(folder, server.url, rounds=0)), iterations=1,
                               output=str(output), profile="smoke")
        assert server.total == 1
    (event,) = designs(output)
    assert event["class"] == "invalid" and event["repairs"] == [] and event["metrics"]["check"] == "syntax"
