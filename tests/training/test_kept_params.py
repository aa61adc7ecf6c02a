"""A trained rung's model saved with save_params comes back from load_params with the same numbers."""

import dataclasses
import sys
from pathlib import Path

import jax.numpy as jnp
import numpy as np
import pytest

from openevolve_genesys.evaluation.program import framework_path, load_program
from openevolve_genesys.training.checkpoint import MODEL_FILE, load_params, save_params
from openevolve_genesys.training.loop import lm_loss, train_rung
from openevolve_genesys.training.model import build_model
from openevolve_genesys.training.profiles import Rung

sys.path.insert(0, str(Path(__file__).parent))  # --import-mode=importlib: the toy data lives in test_loop
from test_loop import TINY, CountingData  # noqa: E402

RUNG = Rung("t", 16, 2, 2)


def eval_loss(model, data, train):
    batches = data.eval_batches(train.batch_size, train.seq_len, train.eval_tokens)
    return float(np.mean([lm_loss(model, jnp.asarray(b), train=train, key=None) for b in batches]))


def test_a_kept_model_loads_with_the_trained_logits_and_eval_loss(tmp_path):
    framework = "coefficient_dynamics"
    source = framework_path(framework).read_text()
    program = load_program(source, framework=framework)
    train = dataclasses.replace(TINY, steps=32, eval_interval=32, dropout=0.1)
    data, kept = CountingData(32), {}
    result = train_rung(RUNG, data, train, vocab_size=32, mixer=program.build_mixer,
                        on_trained=lambda model, r: kept.update(model=model, result=r))
    assert kept["result"] is result
    folder = tmp_path / "params" / "design" / "t"
    save_params(folder, kept["model"], RUNG, train, 32, result.final_eval_loss, program.source)
    loaded = load_params(folder)
    assert (loaded.rung, loaded.train, loaded.vocab_size, loaded.source) == (RUNG, train, 32, program.source)
    tokens = jnp.asarray(data.stream[:2 * 16].reshape(2, 16))
    np.testing.assert_allclose(np.asarray(loaded.model(tokens)), np.asarray(kept["model"](tokens)), rtol=0, atol=0)
    assert eval_loss(loaded.model, data, train) == pytest.approx(result.final_eval_loss, abs=1e-5)
    assert loaded.final_eval_loss == result.final_eval_loss
    # The state is the trained one, not the initialisation the loader builds first.
    fresh = build_model(32, RUNG.d_model, RUNG.n_layers, RUNG.n_heads, mixer=program.build_mixer, seed=train.seed)
    assert not np.allclose(np.asarray(fresh(tokens)), np.asarray(loaded.model(tokens)), atol=1e-3)


def test_a_folder_without_a_kept_model_is_refused_with_the_fix(tmp_path):
    with pytest.raises(FileNotFoundError, match=f"{MODEL_FILE} is missing.*<run folder>/params/<design id>/<rung>"):
        load_params(tmp_path)
