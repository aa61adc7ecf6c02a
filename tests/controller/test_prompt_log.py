"""Every design's prompt, answers and tokens reach OpenEvolve's ``Program.prompts`` in the checkpoints, in the
shape OpenEvolve's visualizer reads, and a resume rebuilds them from history.jsonl."""

import json
from pathlib import Path

from openevolve.config import DatabaseConfig, LLMModelConfig
from openevolve.llm.ensemble import LLMEnsemble

from fault_server import NO_DIFF_TEXT, FaultServer
from openevolve_genesys.controller.accounting import Accounting
from openevolve_genesys.controller.jobs import DesignAttempt, run_design_attempt
from openevolve_genesys.controller.ledger import BASELINE_ID, RunLedger
from openevolve_genesys.controller.prompt_log import PromptLog, Reply, TokenUsage, template_key
from openevolve_genesys.evaluation.settings import EvaluatorSettings
from openevolve_genesys.selection.database import GenesysDatabase

PROMPT = {"system": "You design sequence mixers.", "user": "Change the Score unit of this program: ..."}


class NoChildEvaluator:
    """Enough of an evaluator for attempts whose answer holds no diff: nothing is ever evaluated."""

    template = "x = 1\n"
    settings = EvaluatorSettings()


def visualizer_programs(checkpoint: Path) -> dict[str, dict]:
    """The programs as OpenEvolve's visualizer loads a checkpoint: the ids in metadata.json's islands, each
    read from programs/<id>.json (scripts/visualizer.py, load_evolution_data)."""
    meta = json.loads((checkpoint / "metadata.json").read_text())
    ids = [pid for island in meta["islands"] for pid in island]
    return {pid: json.loads((checkpoint / "programs" / f"{pid}.json").read_text()) for pid in ids}


def assert_visualizer_prompts(prompts: object) -> None:
    """What its program page and sidebar read: a mapping of template key to a mapping whose entries are
    text (system, user), a list of texts (responses) or a mapping of numbers (token_usage)."""
    assert isinstance(prompts, dict) and prompts
    for entry in prompts.values():
        assert isinstance(entry["system"], str) and isinstance(entry["user"], str)
        assert entry["responses"] and all(isinstance(r, str) for r in entry["responses"])
        assert all(isinstance(v, int) for v in entry.get("token_usage", {}).values())


def baseline_event() -> dict:
    return {"type": "baseline", "id": BASELINE_ID, "code": "x = 1\n",
            "rungs": {"r0": {"n_params": 1000, "final_eval_loss": 5.0}}, "metrics": {"combined_score": 0.0}}


def design_event(prompt_log: PromptLog | None) -> dict:
    event = {"type": "design", "attempt": 1, "id": "child-1", "seed_id": BASELINE_ID, "unit": "Score",
             "operator": "Score:scaled", "model": "m", "quadrant": None, "class": "ok", "failure": None,
             "message": "", "code": "x = 2\n", "notes": [], "seconds": 1.0, "tokens": 9, "learning_rate": None,
             "tune": None, "outcome": "ok", "rungs": {"r0": {"n_params": 1000, "final_eval_loss": 4.9}},
             "metrics": {"combined_score": 0.1}, "artifacts": {}, "requeues": 0, "requeued": False,
             "quarantined": False}
    if prompt_log is not None:
        event["prompt_log"] = prompt_log.to_dict()
    return event


def replay(events: list[dict], checkpoint: Path) -> dict[str, dict]:
    database = GenesysDatabase(DatabaseConfig())
    ledger = RunLedger(database, Accounting(), max_attempts=1)
    for event in events:
        ledger.apply(event)
    database.save(str(checkpoint), 1)
    return visualizer_programs(checkpoint)


def test_replies_are_appended_with_their_tokens_and_summed():
    log = PromptLog(template_key(rewrite=False), "s", "u")
    assert log.token_usage is None
    log = log.with_reply(Reply("first", TokenUsage(10, 5, 15))).with_reply(Reply("offline")).with_reply(
        Reply("repair", TokenUsage(12, 3, 15)))
    assert [r.text for r in log.replies] == ["first", "offline", "repair"]
    assert log.token_usage == TokenUsage(22, 8, 30)
    assert PromptLog.from_dict(json.loads(json.dumps(log.to_dict()))) == log
    assert template_key(rewrite=True) == "full_rewrite_user"
    assert TokenUsage.from_client(None) is None
    assert TokenUsage.from_client({"prompt_tokens": 3, "completion_tokens": 4}) == TokenUsage(3, 4, 7)


def test_an_attempt_keeps_the_answer_and_the_tokens_the_server_counted():
    with FaultServer("no_diff") as server:
        llm = LLMEnsemble([LLMModelConfig(name="m", api_base=server.url, api_key="k", retries=0, timeout=30)])
        job = run_design_attempt(DesignAttempt(BASELINE_ID, "Score", PROMPT, model_index=0), "x = 1\n", llm, 30,
                                 NoChildEvaluator(), [])
    completion = -(-len(NO_DIFF_TEXT) // 4)  # the fault server's own count: 4 characters a token, 1 prompt token
    assert job.replies == [Reply(NO_DIFF_TEXT, TokenUsage(1, completion, completion + 1))]


def test_checkpoints_hold_each_designs_prompt_in_openevolves_shape_and_a_resume_rebuilds_it(tmp_path):
    prompt_log = PromptLog("diff_user", PROMPT["system"], PROMPT["user"],
                           (Reply("<<<<<<< SEARCH ...", TokenUsage(120, 40, 160)),))
    events = [baseline_event(), design_event(prompt_log)]
    programs = replay(events, tmp_path / "checkpoint_1")
    child = programs["child-1"]["prompts"]
    assert_visualizer_prompts(child)
    assert child == {"diff_user": {**PROMPT, "responses": ["<<<<<<< SEARCH ..."],
                                   "token_usage": {"prompt_tokens": 120, "completion_tokens": 40,
                                                   "total_tokens": 160}}}
    assert programs[BASELINE_ID]["prompts"] is None  # the initial program was never prompted, as in OpenEvolve
    # A resumed run folds the same history.jsonl lines, after a round trip through JSON.
    resumed = replay(json.loads(json.dumps(events)), tmp_path / "checkpoint_resumed")
    assert resumed["child-1"]["prompts"] == child


def test_histories_older_than_prompt_logs_still_replay(tmp_path):
    programs = replay([baseline_event(), design_event(None)], tmp_path / "checkpoint_1")
    assert programs["child-1"]["prompts"] is None
