"""Run a combination stage: freeze the pool, write the template and the stage's config, run a GenesysRun on it.

``openevolve CONFIG --stage NAME --from BASE_RUN_DIR`` (or ``run_stage``) works in ``BASE_RUN_DIR/stages/NAME/``:

    pool/          the frozen members (<key>.py) and pool.json (id, utility, confidence of each)
    template.py    the generated framework file (the pool outside the EVOLVE-BLOCK, the combining units inside)
    config.yaml    the base run's own YAML with framework = template.py, the stage's budget and selector
    stage.json     what the stage was built from (base run, profile, target, depths, initial member)
    history.jsonl, state.json, checkpoints/, best_program.py, ...   the stage's own run

The stage reads the base run and never writes to it; its attempts, verifications and tune trials are
counted by its own GenesysRun, so the two budgets never mix. Utility in the stage is relative to the
stage's baseline (its template: the best pool member alone), at the base run's target scale.
"""

from __future__ import annotations

import json
import logging
import math
from pathlib import Path
from typing import Any

import yaml
from openevolve import config as oe
from openevolve.llm.ensemble import LLMEnsemble

from openevolve_genesys.config import RunConfig, llm_endpoint_configured, load_run_config
from openevolve_genesys.controller.history import write_json_atomic
from openevolve_genesys.controller.run import GenesysRun
from openevolve_genesys.selection.records import DesignRecord
from openevolve_genesys.stages.operators import MODEL_NAME, init_combination_client
from openevolve_genesys.stages.pool import BaseRun, curate, freeze, load_frozen
from openevolve_genesys.stages.settings import StageSettings, find_stage
from openevolve_genesys.stages.template import render
from openevolve_genesys.strict import ConfigError

log = logging.getLogger(__name__)
STAGE_FILE = "stage.json"


class CombinationRun(GenesysRun):
    """A GenesysRun over a stage's template; without an LLM endpoint its design agent is the offline
    combination operators instead of the base stage's unit catalogue (which knows no combination units)."""

    def _design_agent(self, config: RunConfig) -> tuple[Any, str]:
        mode = config.genesys.run.mutator
        if mode == "offline" or (mode == "auto" and not llm_endpoint_configured(config.openevolve)):
            model = oe.LLMModelConfig(name=MODEL_NAME, init_client=init_combination_client,
                                      random_seed=config.openevolve.random_seed)
            description = "design agent: the offline combination operators (stages/operators.py)"
            log.info("combination stage: %s", description)
            return LLMEnsemble([model]), description
        return super()._design_agent(config)


def stage_folder(base_dir: str | Path, name: str) -> Path:
    return Path(base_dir) / "stages" / name


def prepare_stage(stage: StageSettings, base_dir: str | Path, *, profile: str | None = None) -> Path:
    """The stage folder, created on first use (pool, template, config); later calls reuse the frozen files."""
    folder = stage_folder(base_dir, stage.name)
    if (folder / STAGE_FILE).is_file():
        recorded = json.loads((folder / STAGE_FILE).read_text())
        if profile and profile != recorded["profile"]:
            raise ConfigError(f"stage {stage.name!r} in {folder} was built for the {recorded['profile']!r} ladder, "
                              f"not {profile!r}; drop --profile, or delete the folder to start the stage afresh")
        return folder
    base = curate(base_dir, size=stage.pool_size, min_confidence=stage.min_confidence)
    ladder = _ladder(base, profile)
    depths = sorted({rung.n_layers for rung in ladder.rungs})
    baseline_n = max(r.n_params for r in base.baseline_rungs.values())
    evaluator = base.config.genesys.evaluator
    # the base run's target scale (its default: target_efolds e-folds above its largest rung)
    target = evaluator.target_n or math.exp(evaluator.valuation.target_efolds) * baseline_n
    first = max(base.members, key=lambda m: -float("inf") if m.utility is None else m.utility).key
    freeze(base.members, folder / "pool")
    template = (folder / "template.py").resolve()
    template.write_text(render(stage.name, str(base.path), base.members, depths, first))
    raw = yaml.safe_load((base.path / "config.yaml").read_text()) or {}
    genesys = dict(raw.get("genesys") or {})
    genesys.pop("stages", None)
    genesys.update(framework=str(template), profile=ladder.name, target_n=float(target),
                   selector={**(genesys.get("selector") or {}), **stage.selector})
    raw.update(max_iterations=stage.max_iterations, genesys=genesys)
    (folder / "config.yaml").write_text(yaml.safe_dump(raw, sort_keys=False))
    write_json_atomic(folder / STAGE_FILE, {
        "name": stage.name, "base_run": str(base.path.resolve()), "profile": ladder.name, "target_n": target,
        "depths": depths, "initial": first, "pool": [m.to_dict() for m in base.members]})
    log.info("stage %s: pool %s frozen in %s; starts from %s alone", stage.name,
             ", ".join(f"{m.key}={m.design_id[:8]}" for m in base.members), folder / "pool", first)
    return folder


def _ladder(base: BaseRun, profile: str | None) -> Any:
    """The base run's ladder (the requested profile, else the base config's as the CLI resolves it), checked
    against the base baseline's recorded rungs so that the stage is scored on the same ladder."""
    from openevolve_genesys.profile_choice import resolve_profile
    from openevolve_genesys.evaluation.checks import check_parameter_budget
    from openevolve_genesys.training.model import CausalSelfAttention
    from openevolve_genesys.training.profiles import get_profile

    settings = resolve_profile(base.config, profile).genesys.evaluator
    ladder = get_profile(settings.profile, settings.profile_overrides)
    expected = {name: counts[1] for name, counts in check_parameter_budget(CausalSelfAttention, ladder).items()}
    recorded = {name: r.n_params for name, r in base.baseline_rungs.items()}
    if expected != recorded:
        raise ConfigError(f"the base run {base.path} was trained on another ladder than {ladder.name!r} (baseline N "
                          f"by rung: {recorded} vs {expected}); pass the base run's --profile")
    return ladder


def run_stage(config_path: str | Path, name: str, *, base_dir: str | Path | None = None,
              iterations: int | None = None, resume: bool = False, profile: str | None = None) -> DesignRecord | None:
    """Run (or resume) stage ``name`` of ``config_path``'s ``genesys.stages`` over a base run folder
    (``base_dir``, else the stage's ``from``, else runs/<config name>); returns the stage's best design."""
    stage = find_stage(load_run_config(config_path).genesys.stages, name, str(config_path))
    base = Path(base_dir or stage.from_run or Path("runs") / Path(config_path).stem)
    if not (base / "history.jsonl").is_file():
        raise ConfigError(f"the base run folder {base} holds no run (no history.jsonl); run the base stage first "
                          f"(`openevolve {config_path} --output {base}`) or pass --from BASE_RUN_DIR")
    folder = prepare_stage(stage, base, profile=profile)
    if (folder / "history.jsonl").exists() and not resume:
        raise ConfigError(f"{folder} already holds stage {name!r}; pass --resume to continue it, or delete the folder "
                          "to start it afresh")
    config = load_run_config(folder / "config.yaml", run_folder_copy=True)
    runner = CombinationRun(config, folder, iterations=iterations)
    log.info("stage %s over %s (pool: %s); output in %s", name, base,
             ", ".join(m.key for m in load_frozen(folder / "pool")), folder)
    return runner.run(resume=resume)
