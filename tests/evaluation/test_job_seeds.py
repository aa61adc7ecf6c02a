"""The job's seeds path in process: the seeds of a rung train as one batched program, and one at a time when the
batch does not fit in memory, with the same results either way."""

import dataclasses

import pytest

from broken_programs import TEMPLATE
from openevolve_genesys.evaluation import job
from openevolve_genesys.evaluation.checks import CheckSettings
from openevolve_genesys.evaluation.program import ProgramError
from openevolve_genesys.evaluation.sandbox import DesignInvalid

TINY = {
    "vocab_size": 512,
    "rungs": [{"d_model": 16, "n_layers": 1, "n_heads": 2}],
    "train": {"seq_len": 32, "batch_size": 8, "steps": 40, "eval_interval": 20, "chunk_steps": 20,
              "eval_tokens": 1024, "warmup_steps": 5, "learning_rate": 0.01},
}


def run_seeds(tmp_path, name):
    return job.evaluate_program(TEMPLATE, "coefficient_dynamics", "smoke", TINY,
                                {"source": "stdlib", "max_corpus_bytes": 300_000}, ["r0"],
                                str(tmp_path / f"{name}.sqlite"), dataclasses.asdict(CheckSettings()), seeds=[1, 2])


def test_seeds_that_do_not_fit_batched_train_one_at_a_time_to_the_same_results(tmp_path, monkeypatch):
    batched = run_seeds(tmp_path, "batched")
    losses = [by_seed["r0"]["final_eval_loss"] for by_seed in batched["seed_rungs"]]
    assert len(set(losses)) == 2 and batched["rungs"] == batched["seed_rungs"][0]
    assert batched["trained_rungs"] == ["r0"] and not any("memory" in note for note in batched["notes"])

    def out_of_memory(*args, **kwargs):
        raise RuntimeError("RESOURCE_EXHAUSTED: Out of memory while trying to allocate the batch")

    monkeypatch.setattr(job, "train_rung_batched", out_of_memory)
    alone = run_seeds(tmp_path, "alone")
    assert any("ran out of memory" in note and "one at a time" in note for note in alone["notes"])
    for ours, theirs in zip(alone["seed_rungs"], batched["seed_rungs"]):
        assert ours["r0"]["final_eval_loss"] == pytest.approx(theirs["r0"]["final_eval_loss"], rel=1e-5)


def test_a_seed_that_fails_its_checks_fails_the_job_once_the_others_are_stored(tmp_path, monkeypatch):
    real_check, checked = job.check_learning, []

    def second_seed_explodes(result, *args, **kwargs):
        checked.append(result)  # the runs are checked in the order of the seeds
        if len(checked) == 2:
            raise ProgramError("loss_exploded", "diverged on purpose")
        real_check(result, *args, **kwargs)

    monkeypatch.setattr(job, "check_learning", second_seed_explodes)
    with pytest.raises(DesignInvalid, match="diverged on purpose") as failed:
        run_seeds(tmp_path, "failing")
    assert failed.value.payload["kind"] == "loss_exploded" and len(checked) == 2
    monkeypatch.setattr(job, "check_learning", real_check)
    # The seed that learnt was stored: run again, it is answered by the cache and only the other one trains.
    again = run_seeds(tmp_path, "failing")
    assert [by_seed["r0"]["cache_hit"] for by_seed in again["seed_rungs"]] == ["functional", None]
