"""A rung's training state, saved with orbax every ``train.checkpoint_steps`` steps so that a rung whose worker
dies resumes from its last save instead of from step 0, and ends with the losses of a run never interrupted;
and a trained rung's final model, kept for the user (``save_params`` / ``load_params``, further below).

One directory holds one rung's latest save (an orbax CheckpointManager keeping one step): the arrays, i.e. the
parameters, the optimizer state, the model's other state and the dropout key (PRNG keys as their key data), and
the host state as JSON, i.e. the step, each run's data generator state and its learning curve so far. Orbax
writes a save into a temporary directory and renames it once complete, and lists only complete saves, so a save
cut short by a killed worker is never restored; a complete save that cannot be restored (damaged on disk, or
left by another training) is logged and training starts over.
"""

from __future__ import annotations

import dataclasses
import json
import logging
import os
import shutil
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import jax
from flax import nnx

from openevolve_genesys.training.model import LanguageModel, build_model
from openevolve_genesys.training.profiles import Rung, TrainConfig

log = logging.getLogger(__name__)


def _orbax() -> Any:
    # Importing orbax takes about 3 s; a sandboxed child pays it only when one of its rungs checkpoints.
    import orbax.checkpoint as ocp

    return ocp


@dataclass(frozen=True)
class Resumed:
    """The host state of a restored save; the trainer's arrays were restored in place."""

    step: int
    data_states: list[dict[str, Any]]  # each run's numpy bit-generator state, before its next batch is drawn
    logs: list[dict[str, Any]]  # each run's learning curve and seconds so far


def _is_key(leaf: Any) -> bool:
    return jax.dtypes.issubdtype(getattr(leaf, "dtype", None), jax.dtypes.prng_key)


def _key_data(tree: Any) -> Any:
    # Typed PRNG keys have no on-disk dtype; their key data (uint32) does.
    return jax.tree.map(lambda leaf: jax.random.key_data(leaf) if _is_key(leaf) else leaf, tree)


def _typed_keys(tree: Any, like: Any) -> Any:
    return jax.tree.map(lambda leaf, ref: jax.random.wrap_key_data(leaf, impl=jax.random.key_impl(ref))
                        if _is_key(ref) else leaf, tree, like)


def _arrays(trainer: Any) -> dict[str, Any]:
    return {"params": trainer.params, "opt_state": trainer.opt_state, "rest": trainer.rest, "key": trainer.key}


class RungCheckpoints:
    """The latest save of one rung's training in ``directory``. ``identity`` (JSON: the rung and its configs)
    is stored with every save, and a save whose identity differs is not resumed: a directory reused for another
    training starts over instead of continuing someone else's run."""

    def __init__(self, directory: str | Path, identity: dict[str, Any]):
        self.directory = Path(directory).absolute()
        self.identity = json.loads(json.dumps(identity))  # as it reads back: tuples as lists

    def _manager(self) -> Any:
        """A manager per save or restore (opening one takes milliseconds, a save comes every thousands of
        steps), so none is left open when training stops by an exception."""
        ocp = _orbax()
        # Synchronous saves: the next chunk donates the buffers being saved, and a save must be complete on
        # disk before training goes on past it.
        options = ocp.CheckpointManagerOptions(max_to_keep=1, enable_async_checkpointing=False, create=True)
        return ocp.CheckpointManager(self.directory, options=options)

    def save(self, step: int, trainer: Any, data_states: list[dict[str, Any]], logs: list[dict[str, Any]]) -> None:
        """Save ``trainer``'s arrays and the host state after ``step`` steps; the previous save is then dropped.
        A save that fails (a full disk, a directory not writable) is logged and training goes on: the rung's
        result does not depend on it, only how much a lost worker would retrain."""
        ocp = _orbax()
        host = {"identity": self.identity, "step": step, "data_states": data_states, "logs": logs}
        try:
            with self._manager() as manager:
                manager.save(step, args=ocp.args.Composite(
                    state=ocp.args.StandardSave(_key_data(_arrays(trainer))), host=ocp.args.JsonSave(host)))
        except Exception as err:
            log.warning("checkpoint %s: saving step %d failed (%s); training goes on without it", self.directory,
                        step, _first_line(err))

    def restore(self, trainer: Any) -> Resumed | None:
        """Load the latest complete save into ``trainer`` and return its host state; None when there is none
        to resume (the directory is then emptied, so new saves are not shadowed by an unusable one)."""
        ocp = _orbax()
        like = _arrays(trainer)
        abstract = jax.tree.map(ocp.utils.to_shape_dtype_struct, _key_data(like))
        step = None
        try:
            with self._manager() as manager:
                step = manager.latest_step()
                if step is None:
                    return None
                restored = manager.restore(step, args=ocp.args.Composite(
                    state=ocp.args.StandardRestore(abstract), host=ocp.args.JsonRestore()))
            if restored.host.get("identity") != self.identity:
                raise ValueError("it was saved by another training (the rung or its train config differ)")
        except Exception as err:  # damaged files raise anything from tensorstore, orbax or json
            log.warning("checkpoint %s (step %s) cannot be resumed (%s); training starts over", self.directory,
                        step, _first_line(err))
            shutil.rmtree(self.directory, ignore_errors=True)
            return None
        host = restored.host
        arrays = _typed_keys(restored.state, like)
        trainer.params, trainer.opt_state = arrays["params"], arrays["opt_state"]
        trainer.rest, trainer.key = arrays["rest"], arrays["key"]
        log.info("resuming from checkpoint %s at step %d", self.directory, step)
        return Resumed(int(host["step"]), list(host["data_states"]), list(host["logs"]))


def _first_line(err: Exception) -> str:
    text = str(err).strip()
    return f"{type(err).__name__}: {text.splitlines()[0]}" if text else type(err).__name__


def discard(directory: str | Path | None) -> None:
    """Delete a rung's checkpoint directory (nothing will resume it any more); None does nothing."""
    if directory is not None:
        shutil.rmtree(directory, ignore_errors=True)


# -- a trained rung's final model, kept for the user ---------------------------------------------------------
# One folder per rung: the model's state (orbax, ``state/``), what rebuilds the model (``model.json``) and the
# program whose mixer it holds (``program.py``, after EVOLVE-BLOCK enforcement: what was trained).
MODEL_FILE = "model.json"
PROGRAM_FILE = "program.py"
STATE_DIR = "state"


@dataclass(frozen=True)
class KeptModel:
    """A rung's trained model as ``load_params`` rebuilds it."""

    model: LanguageModel  # in evaluation mode by default: call it as model(tokens) -> logits [batch, seq, vocab]
    rung: Rung
    train: TrainConfig  # the rung's training config (its eval batches: batch_size, seq_len, eval_tokens, seed)
    vocab_size: int
    final_eval_loss: float  # as recorded when training ended
    source: str  # the design's program


def save_params(folder: str | os.PathLike, model: LanguageModel, rung: Rung, train: TrainConfig, vocab_size: int,
                final_eval_loss: float, source: str) -> None:
    """Write ``model``'s state and what rebuilds it to ``folder`` (replaced if it exists)."""
    ocp = _orbax()
    folder = Path(folder).absolute()
    shutil.rmtree(folder, ignore_errors=True)
    folder.mkdir(parents=True)
    checkpointer = ocp.StandardCheckpointer()
    checkpointer.save(folder / STATE_DIR, _key_data(nnx.state(model)))
    checkpointer.wait_until_finished()
    checkpointer.close()
    (folder / PROGRAM_FILE).write_text(source)
    meta = {"rung": dataclasses.asdict(rung), "train": dataclasses.asdict(train), "vocab_size": vocab_size,
            "final_eval_loss": final_eval_loss}
    # Written last: a folder with its model.json is complete.
    (folder / MODEL_FILE).write_text(json.dumps(meta, indent=1))


def load_params(folder: str | os.PathLike) -> KeptModel:
    """The model a run kept in ``folder`` (``<run folder>/params/<design id>/<rung>/``), with its trained state.

    This imports the design's ``program.py`` (evolved code runs in this process: load only runs you trust)."""
    from openevolve_genesys.evaluation.program import ProgramError, import_source

    folder = Path(folder)
    if not (folder / MODEL_FILE).is_file():
        raise FileNotFoundError(f"{folder} holds no kept model ({MODEL_FILE} is missing): pass a rung folder, "
                                f"<run folder>/params/<design id>/<rung>")
    meta = json.loads((folder / MODEL_FILE).read_text())
    rung, train = Rung(**meta["rung"]), TrainConfig(**meta["train"])
    source = (folder / PROGRAM_FILE).read_text()
    try:
        build_mixer = import_source(source, filename=str(folder / PROGRAM_FILE)).build_mixer
    except (ProgramError, AttributeError) as err:
        raise ValueError(f"{folder / PROGRAM_FILE} cannot rebuild the model's mixer: {err}") from None
    model = build_model(meta["vocab_size"], rung.d_model, rung.n_layers, rung.n_heads, dropout=train.dropout,
                        mixer=build_mixer, seed=train.seed)
    like = nnx.state(model)
    abstract = jax.tree.map(_orbax().utils.to_shape_dtype_struct, _key_data(like))
    checkpointer = _orbax().StandardCheckpointer()
    try:
        restored = checkpointer.restore((folder / STATE_DIR).absolute(), abstract)
    finally:
        checkpointer.close()
    nnx.update(model, _typed_keys(restored, like))
    return KeptModel(model, rung, train, int(meta["vocab_size"]), float(meta["final_eval_loss"]), source)
