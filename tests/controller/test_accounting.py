import math
from functools import partial

import pytest
from openevolve.config import LLMModelConfig
from openevolve.llm.ensemble import LLMEnsemble

from fault_server import NO_DIFF_TEXT, FaultServer, Reply
from openevolve_genesys.controller.accounting import Accounting, classify_evaluation
from openevolve_genesys.controller.cost import Price
from openevolve_genesys.controller.jobs import DesignAttempt, run_design_attempt
from openevolve_genesys.evaluation.evaluator import Evaluation
from openevolve_genesys.evaluation.settings import EvaluatorSettings
from openevolve_genesys.llm.streaming import StallPolicy, init_streaming_client
from openevolve_genesys.llm.usage import TokenCount


@pytest.mark.parametrize("outcome, reason, expected", [
    ("ok", "ok", "ok"),
    ("invalid", "design_invalid", "invalid"),
    ("invalid", "exception", "invalid"),
    ("timeout", "wall", "invalid"),  # too slow is the design's fault
    ("timeout", "cpu", "invalid"),
    ("timeout", "stall", "stalled"),  # the heartbeat stopped
    ("timeout", "startup", "stalled"),
    ("crashed", "memory", "infra"),
    ("crashed", "signal", "infra"),
])
def test_evaluation_outcomes_map_to_attempt_classes(outcome, reason, expected):
    assert classify_evaluation(Evaluation(outcome, {"reason": reason}, {}, reason=reason)) == expected


def test_only_ok_and_invalid_are_charged_and_waste_is_counted_per_model():
    books = Accounting(requeue_limit=2)
    books.record("gpt", "ok", seconds=10.0, tokens=TokenCount(100, 500))
    books.record("gpt", "stalled", seconds=4.0, tokens=TokenCount(100, 30, estimated=True), requeued=True)
    books.record("gpt", "infra", seconds=1.0, tokens=TokenCount(0, 7), quarantined=True)
    books.record("offline", "invalid", seconds=2.0)
    assert books.charged == 2
    summary = books.summary()
    gpt = summary["models"]["gpt"]
    assert gpt["submissions"] == 3 and gpt["charged"] == 1
    assert gpt["outcomes"] == {"ok": 1, "invalid": 0, "stalled": 1, "infra": 1}
    assert gpt["stall_rate"] == pytest.approx(1 / 3)
    assert (gpt["requeued"], gpt["quarantined"], gpt["wasted_seconds"]) == (1, 1, 5.0)
    assert (gpt["tokens"], gpt["wasted_tokens"], gpt["prompt_tokens"], gpt["estimated_calls"]) == (537, 37, 200, 1)
    assert summary["models"]["offline"]["charged"] == 1 and summary["models"]["offline"]["tokens"] == 0
    assert gpt["cost"] is None and summary["spend"]["cost"] is None  # no prices: no cost, tokens still counted
    assert summary["spend"]["total_tokens"] == 737 and summary["spend"]["estimated"]
    assert any("1 stalled (33%)" in line and "200 prompt + 537 completion tokens (37 completion wasted, 1 calls "
               "estimated), unpriced" in line for line in books.summary_lines())


def test_cost_is_each_models_price_times_its_tokens_failed_calls_included():
    books = Accounting(prices={"gpt": Price(prompt=2.5, completion=10.0), "local": Price()})
    books.record("gpt", "ok", seconds=1.0, tokens=TokenCount(1_000, 200))
    books.record("gpt", "stalled", seconds=1.0, tokens=TokenCount(1_000, 0))  # a stall is billed its prompt
    books.record("local", "ok", seconds=1.0, tokens=TokenCount(5_000, 5_000))
    books.record("unpriced", "ok", seconds=1.0, tokens=TokenCount(10, 10))
    summary = books.summary()
    gpt_cost = (2_000 * 2.5 + 200 * 10.0) / 1e6
    assert summary["models"]["gpt"]["cost"] == pytest.approx(gpt_cost)
    assert summary["models"]["local"]["cost"] == 0.0 and summary["models"]["unpriced"]["cost"] is None
    spend = books.spend()
    assert (spend.prompt_tokens, spend.completion_tokens, spend.cost) == (7_010, 5_210, pytest.approx(gpt_cost))
    assert summary["spend"] == {"prompt_tokens": 7_010, "completion_tokens": 5_210, "total_tokens": 12_220,
                                "cost": pytest.approx(gpt_cost), "estimated": False}
    lines = books.summary_lines()
    assert any(line.startswith("gpt:") and line.endswith(f"${gpt_cost:.4f}") for line in lines)
    assert f"all models: 7010 prompt + 5210 completion = 12220 tokens, ${gpt_cost:.4f}" in lines


class NoChildEvaluator:
    """Enough of an evaluator for attempts whose answer holds no diff: nothing is ever evaluated."""

    template = "x = 1\n"
    settings = EvaluatorSettings()


def test_design_attempts_carry_the_tokens_the_model_sent_stalled_ones_included():
    policy = StallPolicy(first_token_seconds=3.0, idle_seconds=0.5)
    script = ["no_diff", Reply("slow", tokens_per_second=1.5), Reply("slow", tokens_per_second=1.5)]
    with FaultServer(script) as server:
        model = LLMModelConfig(name="m", api_base=server.url, api_key="k", retries=0, retry_delay=0, timeout=60,
                               init_client=partial(init_streaming_client, policy=policy))
        llm = LLMEnsemble([model])

        def attempt(index):
            return run_design_attempt(DesignAttempt("baseline", "Score", {"system": "s", "user": "u"},
                                                    model_index=index), "x = 1\n", llm, 10, NoChildEvaluator(), [])

        answered, stalled, stalled_via_ensemble = attempt(0), attempt(0), attempt(None)
    assert (answered.attempt_class, answered.failure) == ("invalid", "no_diff")
    assert answered.tokens == math.ceil(len(NO_DIFF_TEXT) / 4)  # the server's usage, 4 characters a token
    assert stalled.attempt_class == stalled_via_ensemble.attempt_class == "stalled"
    assert stalled.tokens == stalled_via_ensemble.tokens == 1  # one 4-character chunk, then nothing for 0.67 s
    books = Accounting()
    for job in (answered, stalled, stalled_via_ensemble):
        books.record("m", job.attempt_class, seconds=job.seconds, tokens=job.usage)
    m = books.summary()["models"]["m"]
    assert (m["tokens"], m["wasted_tokens"]) == (answered.tokens + 2, 2)
    # The server counted the answered call's prompt (1 token); the stalled one it never counted: "su" / 4. Through
    # the ensemble a failed call leaves only the error's completion count (the controller always names a model).
    assert (answered.usage.prompt, stalled.usage.prompt, stalled.usage.estimated) == (1, 1, True)
    assert stalled_via_ensemble.usage == TokenCount(0, 1)
    assert m["prompt_tokens"] == 2 and m["estimated_calls"] == 1


def test_verification_and_tuning_have_their_own_counters():
    books = Accounting()
    books.record_verification("stalled", seconds=3.0, requeued=True)
    books.record_tuning(trials=3, seconds=12.0)
    assert books.charged == 0
    assert books.summary()["verification"]["outcomes"]["stalled"] == 1
    assert books.summary()["tuning"] == {"trials": 3, "seconds": 12.0, "designs": 1}


def test_an_unknown_class_is_refused():
    with pytest.raises(ValueError, match="unknown attempt class 'hung'"):
        Accounting().record("m", "hung", seconds=1.0)


def test_stock_accounting_charges_every_submission():
    books = Accounting(charge_all=True)
    books.record("gpt", "stalled", seconds=60.0)
    books.record("gpt", "ok", seconds=10.0)
    assert books.charges("infra") and books.charged == 2
    assert books.summary()["models"]["gpt"]["charged"] == 2 and books.summary()["accounting"] == "stock"
