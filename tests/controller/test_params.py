"""Which designs keep their trained models: the staging, moving and pruning of controller/params.py."""

import json
import os

from openevolve_genesys.controller.params import KeptParams, ranked
from openevolve_genesys.evaluation.results import Evaluation
from openevolve_genesys.selection.records import DesignRecord, RungRecord
from openevolve_genesys.training.checkpoint import MODEL_FILE

BASELINE = "template source"


def record(design_id, utility, confidence):
    return DesignRecord(design_id, None, "h", 0, {}, "ok", rungs={"r0": RungRecord("r0", 1000, 5.0)},
                        utility=utility, confidence=confidence)


class TrainingEngine:
    """Writes a model file for each rung into the folder it is given, as a child saving its models would."""

    slots = 1

    def __init__(self):
        self.calls = []

    def evaluate(self, source, rungs, **options):
        self.calls.append(options)
        if "params_dir" in options:
            for rung in rungs:
                folder = options["params_dir"] + f"/{rung}"
                os.makedirs(folder)
                with open(f"{folder}/{MODEL_FILE}", "w") as f:
                    json.dump({"source": source}, f)
        return Evaluation("invalid" if source == "broken" else "ok", {})

    def shutdown(self):
        pass


def test_the_ranking_puts_confident_designs_first_and_leaves_out_the_baseline():
    records = [record("a", 0.3, 0.1), record("b", 0.1, 0.9), record("c", 0.2, 0.8), record("baseline", 0.5, 1.0),
               record("d", None, 0.0)]
    assert ranked(records, 0.5, "baseline") == ["c", "b", "a"]  # a: the best utility, not confident


def test_only_designs_that_may_be_the_best_keep_their_models_and_the_end_keeps_the_top_n(tmp_path):
    kept = KeptParams(tmp_path, 2, BASELINE)
    engine = kept.engine(TrainingEngine())
    records = {}

    def attempt(design_id, utility, confidence, source=None, rungs=("r0",)):
        evaluation = engine.evaluate(source or design_id, list(rungs))
        if evaluation.outcome == "ok":
            records[design_id] = record(design_id, utility, confidence)
        kept.record(design_id, evaluation, records, 0.5, "baseline")

    attempt("a", 0.1, 0.9)
    attempt("b", 0.2, 0.9)
    attempt("c", -0.5, 0.1)  # last by both orders: never kept
    assert sorted(p.name for p in kept.root.iterdir() if p.name != ".staging") == ["a", "b"]
    attempt("d", 0.9, 0.1)  # not confident, but the best utility: it may become the best when verified
    assert sorted(p.name for p in kept.root.iterdir() if p.name != ".staging") == ["a", "b", "d"]
    assert json.loads((kept.root / "d" / "r0" / MODEL_FILE).read_text()) == {"source": "d"}
    attempt("e", 0.0, 0.0, source="broken")  # a failed evaluation keeps nothing and stages nothing
    # A verification adds its rung to the design's folder.
    evaluation = engine.evaluate("a", ["r1"])
    kept.record("a", evaluation, records, 0.5, "baseline")
    assert sorted(p.name for p in (kept.root / "a").iterdir()) == ["r0", "r1"]
    assert not any((kept.root / ".staging").iterdir())
    kept.finish(records, 0.5, "baseline")
    assert sorted(p.name for p in kept.root.iterdir()) == ["a", "b"]  # the top 2 by the ranking (confident)


def test_tune_trials_baseline_seeds_and_the_baseline_are_never_asked_to_keep_models(tmp_path):
    inner = TrainingEngine()
    engine = KeptParams(tmp_path, 3, BASELINE).engine(inner)
    engine.evaluate(BASELINE, ["r0"])
    engine.evaluate("x", ["r0"], trial={"learning_rate": 0.1})
    engine.evaluate("x", ["r0"], seeds=[1, 2])
    assert all("params_dir" not in options for options in inner.calls)
    assert KeptParams(tmp_path, 0, BASELINE).engine(inner) is inner  # keep_params: 0 changes nothing
