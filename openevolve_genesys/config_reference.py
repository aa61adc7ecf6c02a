"""docs/configuration.md, generated from the settings classes: every key of a run YAML, its default and meaning.

    python -m openevolve_genesys.config_reference          # rewrite docs/configuration.md
    python -m openevolve_genesys.config_reference --check  # exit 1 when the page is out of date

A key's meaning is the comment on its field (the line itself, or the comment lines just above it); the
few fields without one get theirs from ``MEANINGS`` here, so the page never has an empty cell.
"""

from __future__ import annotations

import argparse
import dataclasses
import inspect
import json
import re
import sys
from pathlib import Path
from typing import Any, Iterable

from openevolve_genesys import openevolve_keys as keys
from openevolve_genesys.config import RunSettings
from openevolve_genesys.controller.cost import CostSettings, Price
from openevolve_genesys.data.config import DataConfig
from openevolve_genesys.engine.base import EngineSettings
from openevolve_genesys.evaluation.checks import CheckSettings
from openevolve_genesys.evaluation.sandbox import SandboxLimits
from openevolve_genesys.evaluation.settings import EvaluatorSettings
from openevolve_genesys.evaluation.tuning import TuneSettings
from openevolve_genesys.scaling.settings import ValueSettings
from openevolve_genesys.llm.stall import StallPolicy
from openevolve_genesys.selection.selector import SelectorSettings
from openevolve_genesys.stages.settings import StageSettings
from openevolve_genesys.training.profiles import PROFILES, Rung, TrainConfig

PAGE = Path("docs") / "configuration.md"
NESTED = {"checks", "sandbox", "tune", "data", "profile_overrides"}  # EvaluatorSettings fields with own tables

# Meanings of fields whose class carries no comment on them, keyed "Class.field".
MEANINGS = {
    "EvaluatorSettings.framework": "coefficient_dynamics, test_time_regression, matrix_mixer, or the path of a "
                                   "generated framework .py file",
    "EvaluatorSettings.profile": "ladder profile: smoke (CPU, minutes), seed (the PyTorch prototype's ladder) or "
                                 "genesys (14M-350M); on a machine without an accelerator the command line uses "
                                 "smoke unless --profile says otherwise",
    "EvaluatorSettings.profile_overrides": "changes to the profile: vocab_size, rungs, train (tables below)",
    "EvaluatorSettings.data": "where the training tokens come from (genesys.data below)",
    "EvaluatorSettings.outside_edits": "an edit outside the EVOLVE-BLOCK is reverted (revert) or fails the design "
                                       "(reject)",
    "DataConfig.source": "stdlib (the running Python's standard library), a text file or folder, a .bin/.npy "
                         "token file or a folder with train.bin + val.bin, or hf:<dataset>",
    "DataConfig.val_fraction": "share of the tokens held out for evaluation",
    "DataConfig.hf_split": "split of a Hugging Face dataset",
    "CheckSettings.d_model": "width of the model the static checks build",
    "CheckSettings.n_heads": "heads of the model the static checks build",
    "CheckSettings.seq_len": "sequence length of the static checks' input",
    "CheckSettings.batch": "batch size of the static checks' input",
    "CheckSettings.causal_atol": "largest change of an earlier output the causality check tolerates",
    "SelectorSettings.explore_start": "exploration probability at the start of the run",
    "SelectorSettings.explore_end": "exploration probability at the end of the run",
    "SelectorSettings.confidence_threshold": "a design counts as confidently valued (and can be the best) from "
                                             "this confidence on",
    "SelectorSettings.min_per_rung": "designs every rung verifies at least",
    "SelectorSettings.credit_window": "recent attempts operator credit averages over",
    "SelectorSettings.credit_exploration": "share of units drawn uniformly while credit is on",
    "SelectorSettings.credit_change_threshold": "relative change of credit that resets its window",
    "SelectorSettings.credit_change_tolerance": "noise allowed before a change of credit counts",
    "SelectorSettings.credit_invalid_reward": "reward an invalid child earns its operator",
    "TuneSettings.enabled": "tune mode on: a short learning-rate sweep per design before its first rung",
    "EngineSettings.cpus_per_job": "CPUs a Ray task asks for",
    "EngineSettings.gpus_per_job": "GPUs a Ray task asks for",
    "EngineSettings.gpus_per_rung": "per-rung override of gpus_per_job, e.g. {r3: 2}",
    "EngineSettings.max_retries": "Ray re-submits a task whose worker or node died this many times",
    "StageSettings.name": "the stage's folder, RUN_DIR/stages/<name>/",
    "StageSettings.pool_size": "the top designs by utility among the confidently valued ones",
    "StageSettings.max_iterations": "the stage's own attempt budget",
    "Rung.name": "the rung's name (used by tune.rung and the engine's per-rung keys)",
    "Rung.d_model": "model width",
    "Rung.n_layers": "layers",
    "Rung.n_heads": "attention heads of the baseline's layers",
    "TrainConfig.seq_len": "tokens per sequence",
    "TrainConfig.batch_size": "sequences per step",
    "TrainConfig.steps": "optimizer steps per rung at fixed steps (tokens_per_param 0); ignored otherwise",
    "TrainConfig.learning_rate": "peak learning rate (tune mode multiplies it by the grid)",
    "TrainConfig.warmup_steps": "linear warm-up steps",
    "TrainConfig.weight_decay": "AdamW weight decay (PyTorch's AdamW defaults, as the PyTorch prototype used)",
    "TrainConfig.beta1": "AdamW beta1",
    "TrainConfig.beta2": "AdamW beta2",
    "TrainConfig.grad_clip": "global gradient-norm clip",
    "TrainConfig.dropout": "dropout rate",
    "TrainConfig.eval_interval": "steps between evaluations of the held-out loss",
    "TrainConfig.eval_tokens": "held-out tokens per evaluation",
    "TrainConfig.seed": "seed of initialisation and batch order",
    "SandboxLimits.allow_network": "whether the evaluated program may open network connections",
    "StallPolicy.first_token_seconds": "from sending the request to the first text",
}
# Defaults the dataclass cannot state (filled in by the YAML reader).
DEFAULTS = {"Rung.name": "`r<position>`"}
_FIELD = re.compile(r"^\s+(\w+)\s*:[^#]*?(?:#\s*(.*))?$")


def _comments(cls: type) -> dict[str, str]:
    """Each field's comment: the one on its line, else the comment lines directly above it."""
    found: dict[str, str] = {}
    above: list[str] = []
    for line in inspect.getsource(cls).splitlines():
        stripped = line.strip()
        if stripped.startswith("#"):
            above.append(stripped.lstrip("#").strip())
            continue
        match = _FIELD.match(line)
        if match and not stripped.startswith(("def ", "return", "raise", "if ")):
            comment = match.group(2) or " ".join(above)
            if comment:
                found[match.group(1)] = comment
        above = []
    return found


def _default(f: dataclasses.Field) -> Any:
    if f.default is not dataclasses.MISSING:
        return f.default
    if f.default_factory is not dataclasses.MISSING:
        return f.default_factory()
    return None


def _required(f: dataclasses.Field) -> bool:
    return f.default is dataclasses.MISSING and f.default_factory is dataclasses.MISSING


def _show(value: Any) -> str:
    if dataclasses.is_dataclass(value):
        return "(below)"
    if isinstance(value, tuple):
        value = list(value)
    if isinstance(value, str):
        return f'`"{value}"`' if value == "" else f"`{value}`"
    return f"`{json.dumps(value, default=str)}`"


def _rows(cls: type, skip: Iterable[str] = (), rename: dict[str, str] | None = None) -> list[str]:
    comments, rows = _comments(cls), []
    for f in dataclasses.fields(cls):
        if f.name in skip or f.name.startswith("_"):
            continue
        meaning = MEANINGS.get(f"{cls.__name__}.{f.name}") or comments.get(f.name)
        if not meaning:
            raise ValueError(f"{cls.__name__}.{f.name} has no meaning: comment the field or add it to MEANINGS")
        name = (rename or {}).get(f.name, f.name)
        default = DEFAULTS.get(f"{cls.__name__}.{f.name}") or ("(required)" if _required(f) else _show(_default(f)))
        rows.append(f"| `{name}` | {default} | {meaning.replace('|', chr(92) + '|')} |")
    return rows


def _table(title: str, intro: str, rows: list[str]) -> list[str]:
    return [f"### {title}", "", intro, "", "| key | default | meaning |", "|---|---|---|", *rows, ""]


def _openevolve_part() -> list[str]:
    used = [k for k in keys.USED if keys.USED[k] != "see its keys"]
    lines = ["## OpenEvolve's keys", "",
             "The top level and the sections `llm`, `prompt`, `database`, `evaluator` and `evolution_trace` are "
             "OpenEvolve's own (its defaults apply). The `openevolve` command replaces OpenEvolve's database, "
             "prompt sampler and process pool, so each of their keys is used, sets the `genesys` key that does "
             "the same job, is read only by stock `openevolve-run`, or stops the run at load with the reason "
             "and what to set instead.", "",
             "### Used", "", "| key | what it does here |", "|---|---|"]
    lines += [f"| `{k}` | {keys.USED[k]} |" for k in used]
    lines += ["", "### Setting a genesys key", "",
              "Setting both to different values is refused.", "", "| key | sets |", "|---|---|"]
    lines += [f"| `{k}` | `genesys.{'.'.join(path)}` |" for k, path in keys.ALIASES.items()]
    lines += ["", "### Read only by openevolve-run", "", "| key | what openevolve-run does with it |", "|---|---|"]
    lines += [f"| `{k}` | {why} |" for k, why in keys.STOCK_ONLY.items()]
    lines += ["", "### Refused", "",
              "A key of a section that is listed but not named falls under its section's reason.", "",
              "| key | why, and what to set instead |", "|---|---|"]
    for key, why in keys.REFUSED.items():
        shown = f"every other `{key}.*` key" if key in keys.USED or key.endswith("[]") else f"`{key}`"
        lines.append(f"| {shown} | {why} |")
    return lines + ["", "Any other top-level OpenEvolve key is refused as configuring a part of OpenEvolve this "
                        "command replaces.", ""]


def _profiles_part() -> list[str]:
    defaults = TrainConfig()
    lines = ["### Ladder profiles", "",
             "`genesys.profile` names one; `genesys.profile_overrides` changes it. Training differs from the "
             "`train` defaults above as listed. Steps by rung are what each rung trains: `steps` at fixed steps, "
             "ceil(tokens_per_param x N / (batch_size x seq_len)) at tokens per parameter (N the baseline's "
             "non-embedding parameters at the rung; warmup capped at a tenth of the rung's steps).", "",
             "| profile | vocab_size | rungs: name (d_model, n_layers, n_heads) | train | steps by rung |",
             "|---|---|---|---|---|"]
    for name, profile in PROFILES.items():
        rungs = ", ".join(f"`{r.name}` ({r.d_model}, {r.n_layers}, {r.n_heads})" for r in profile.rungs)
        changed = ", ".join(f"{f.name}={getattr(profile.train, f.name)}" for f in dataclasses.fields(TrainConfig)
                            if getattr(profile.train, f.name) != getattr(defaults, f.name))
        by_rung = [profile.rung_train(r.name) for r in profile.rungs]
        steps = ", ".join(f"`{r.name}` {t.steps:,}" + (f" (warmup {t.warmup_steps:,})"
                                                        if t.warmup_steps != profile.train.warmup_steps else "")
                          for r, t in zip(profile.rungs, by_rung))
        lines.append(f"| `{name}` | {profile.vocab_size} | {rungs} | {changed or 'the defaults'} | {steps} |")
    return lines + [""]


def render() -> str:
    lines = ["# Configuration reference", "",
             "<!-- generated by `python -m openevolve_genesys.config_reference`; edit the settings classes "
             "instead -->", "",
             "A run is one YAML (the shipped ones are in `configs/`): OpenEvolve's sections and a `genesys:` "
             "section. Every key is read strictly: a misspelt key, at any level, stops the run at load naming "
             "the nearest valid key, and a value outside its allowed set names the allowed values.", ""]
    lines += _openevolve_part()
    lines += ["## The `genesys:` section", ""]
    lines += _table("genesys", "How designs are scored and how the run behaves.",
                    _rows(EvaluatorSettings, skip=NESTED) + _rows(RunSettings))
    lines += _table("genesys.data", "Where the training tokens come from.", _rows(DataConfig))
    lines += _table("genesys.profile_overrides", "Changes to the ladder profile: `vocab_size` (an int), "
                    "`rungs` (a list replacing the profile's, each entry as below) and `train` (as below).",
                    _rows(Rung))
    lines += _table("genesys.profile_overrides.train", "How each rung trains; the profile sets its own values "
                    "(table below), these are the class defaults.", _rows(TrainConfig))
    lines += _profiles_part()
    lines += _table("genesys.checks", "Checks every design passes before and while it trains.", _rows(CheckSettings))
    lines += _table("genesys.sandbox", "Limits of the process each evaluation runs in.", _rows(SandboxLimits))
    lines += _table("genesys.tune", "Tune mode: each design, and the baseline, trains at its own learning rate.",
                    _rows(TuneSettings))
    lines += _table("genesys.valuation", "How a design's gap to the baseline is forecast at the target size "
                    "(scaling.value_design): weak priors, each replaced by the run's measurements as they accumulate; "
                    "docs/science.md says what is forecast and how far it extrapolates.", _rows(ValueSettings))
    lines += _table("genesys.selector", "Which design to mutate, which unit, and which designs to verify at "
                    "larger rungs.", _rows(SelectorSettings))
    lines += _table("genesys.engine", "Where evaluations run.", _rows(EngineSettings))
    lines += _table("genesys.stall", "When a streamed LLM answer counts as stalled.", _rows(StallPolicy))
    lines += _table("genesys.cost", "What the design agent's calls cost, and caps that end the run like a "
                    "finished one (the jobs in flight finish, the run saves, exit code 0; `--resume` with a larger "
                    "cap goes on). Every call counts, stalled and failed ones too.", _rows(CostSettings))
    lines += _table("genesys.cost.prices.<model>", "The price of one model of `llm.models`, by its `name`; a name "
                    "not in `llm.models` stops the run at load. A model without a price costs nothing.",
                    _rows(Price))
    lines += _table("genesys.stages[]", "Combination stages run after a base run (`openevolve CONFIG --stage "
                    "NAME`); each entry of the list takes these keys.",
                    _rows(StageSettings, rename={"from_run": "from"}))
    return "\n".join(lines).rstrip() + "\n"


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--check", action="store_true", help="exit 1 when the page differs from the code")
    parser.add_argument("--output", default=str(PAGE))
    args = parser.parse_args(argv)
    page, text = Path(args.output), render()
    if args.check:
        if not page.is_file() or page.read_text() != text:
            print(f"{page} is out of date: run python -m openevolve_genesys.config_reference", file=sys.stderr)
            return 1
        return 0
    page.write_text(text)
    return 0


if __name__ == "__main__":
    sys.exit(main())
