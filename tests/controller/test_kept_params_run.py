"""An offline run on the shortened smoke ladder keeps the trained models of exactly its top genesys.keep_params
designs, and a kept model gives back the eval loss the run recorded for it."""

import json

import jax.numpy as jnp
import numpy as np
import pytest
from flax import nnx

import openevolve_genesys
from openevolve_genesys.config import load_run_config
from openevolve_genesys.controller.params import ranked
from openevolve_genesys.data import DataConfig, load_data
from openevolve_genesys.selection.records import DesignRecord
from openevolve_genesys.training.checkpoint import load_params
from openevolve_genesys.training.loop import lm_loss
from run_configs import events, run_config

pytestmark = pytest.mark.slow


def test_a_run_keeps_the_models_of_its_top_designs_and_they_load_with_the_recorded_loss(tmp_path):
    output = tmp_path / "run"
    # A fitness cache of its own: a rung the session's shared cache answers (another test trained the same
    # mutation) trains nothing, so it has no model to keep, and which designs rank top would decide the test.
    config = run_config(tmp_path, "coefficient_dynamics", workers=1, keep_params=2,
                        cache_path=str(tmp_path / "fitness.sqlite"))
    openevolve_genesys.run(str(config), iterations=4, output=str(output), profile="smoke")
    checkpoint = max((output / "checkpoints").glob("checkpoint_*"), key=lambda p: int(p.name.split("_")[1]))
    records = [DesignRecord.from_dict(r) for r in
               json.loads(checkpoint.joinpath("genesys_records.json").read_text())["records"]]
    threshold = load_run_config(config).genesys.selector.confidence_threshold
    order = ranked(records, threshold, "baseline")
    assert len(order) > 2  # more designs than are kept: the others' models were deleted
    folders = sorted(p.name for p in (output / "params").iterdir())
    assert folders == sorted(order[:2])  # exactly the top 2, no staging folder left

    # Each rung trained in the run: the loss its history line recorded (a verification's rung or the first one).
    recorded = {}
    for e in events(output):
        if e["type"] in ("design", "verify") and e["outcome"] == "ok" and not e.get("seed"):
            design = e["id"] if e["type"] == "design" else e["design_id"]
            for name, r in e["rungs"].items():
                if r.get("cache_hit") is None:
                    recorded[(design, name)] = r["final_eval_loss"]
    kept = [(d, p.name) for d in folders for p in (output / "params" / d).iterdir()]
    assert kept and all(key in recorded for key in kept)
    design, rung = kept[0]
    model = load_params(output / "params" / design / rung)
    settings = load_run_config(config).genesys.evaluator
    data = load_data(DataConfig.from_dict(settings.data), model.vocab_size)
    train = model.train
    batches = data.eval_batches(train.batch_size, train.seq_len, train.eval_tokens)
    loss = nnx.jit(lambda m, b: lm_loss(m, b, train=train, key=None))
    measured = float(np.mean([loss(model.model, jnp.asarray(b)) for b in batches]))
    assert measured == pytest.approx(recorded[(design, rung)], abs=1e-5)
    assert model.final_eval_loss == recorded[(design, rung)]
