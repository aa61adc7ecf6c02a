"""One YAML per run: OpenEvolve's own sections plus a ``genesys:`` section, validated strictly at every level.

OpenEvolve 0.4.0 drops unknown keys silently (dacite, non-strict); here a misspelt key anywhere is an
error naming it and the nearest valid key, before anything runs. The OpenEvolve sections are then built
by OpenEvolve itself, so their defaults and semantics stay OpenEvolve's.
"""

from __future__ import annotations

import dataclasses
import logging
import os
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Mapping

import yaml
from openevolve import config as oe

from openevolve_genesys.controller.breaker import BREAKER_KEYS, BreakerSettings
from openevolve_genesys.controller.cost import CostSettings
from openevolve_genesys.engine.base import EngineSettings
from openevolve_genesys.evaluation.settings import EvaluatorSettings
from openevolve_genesys.llm import endpoint
from openevolve_genesys.llm.stall import StallPolicy
from openevolve_genesys.resources import shipped_config, shipped_configs
from openevolve_genesys.openevolve_keys import LOG_LEVELS, check_openevolve_keys
from openevolve_genesys.selection.annealing import SCHEDULES
from openevolve_genesys.selection.selector import SelectorSettings
from openevolve_genesys.stages.settings import StageSettings, parse_stages
from openevolve_genesys.training.profiles import PROFILES
from openevolve_genesys.strict import ConfigError, build, check_choice, field_names, reject_unknown

log = logging.getLogger(__name__)

OPENEVOLVE_SECTIONS = {
    "llm": oe.LLMConfig,
    "prompt": oe.PromptConfig,
    "database": oe.DatabaseConfig,
    "evaluator": oe.EvaluatorConfig,
    "evolution_trace": oe.EvolutionTraceConfig,
}


@dataclass(frozen=True)
class RunSettings:
    """How the run itself behaves (the ``genesys:`` keys that are neither evaluator nor selector keys)."""

    # Evaluations in flight at once (each in its own sandboxed process); 0: one per engine slot (each listed
    # device's engine.slots_per_device slots, or 1 without devices). Set, it is the number of slots (with devices
    # listed, at most their slots; further jobs wait for one with their LLM calls done).
    workers: int = 0
    mutator: str = "auto"  # auto: the LLM when a key or endpoint is configured, else the offline library
    templates_dir: str = ""  # a folder with system.txt and/or design.txt overriding the prompt templates
    reference_library: str = ""  # a YAML of key -> {frameworks, text}; "" = the built-in library
    requeue_limit: int = 2  # a stalled or infra job runs again this many times before it is quarantined
    # Pin evaluations: engine.slots_per_device slots per entry (one by default), e.g. ["0"] (a CUDA id) or ["cpu"]
    devices: tuple[str, ...] = ()
    accounting: str = "genesys"  # "stock": charge every submission and use OpenEvolve's own LLM client (A/B only)
    # Each OpenEvolve checkpoint holds every program, so keeping all of them grows as attempts squared;
    # a resume needs none of them (it replays history.jsonl). 0 keeps all.
    keep_checkpoints: int = 3
    # The trained parameters of this many best designs (by the run's ranking, baseline excluded) are kept as orbax
    # checkpoints in <run folder>/params/<design id>/<rung>/, loadable with training.checkpoint.load_params;
    # 0: none are saved. Rungs answered from the fitness cache were not trained in this run and have none.
    keep_params: int = 3
    # A child failing a check of the program (syntax, import, shape, causality...) goes back to the model that
    # wrote it with the check's message, for up to this many repair replies; the attempt is charged once. 0: off
    repair_rounds: int = 2
    # Tests and benchmarks of repair rounds: the share of the offline mutator's answers broken on purpose (a
    # syntax slip or a wrong name); asked to repair one, it answers with the unbroken text
    offline_break_rate: float = 0.0
    # The baseline trains at this many seeds (the run's training seed and the next ones) on every rung: their
    # spread measures the noise of one training run, which bounds the valuation's pair noise. 1: one seed.
    baseline_seeds: int = 3

    def __post_init__(self) -> None:
        check_choice(self.mutator, ("auto", "offline", "llm"), "mutator")
        if isinstance(self.workers, bool) or not isinstance(self.workers, int) or self.workers < 0:
            raise ValueError(f"workers must be a whole number >= 0 (0: one per engine slot), got {self.workers!r}")
        check_choice(self.accounting, ("genesys", "stock"), "accounting")
        if self.requeue_limit < 0:
            raise ValueError(f"requeue_limit must be >= 0, got {self.requeue_limit}")
        if isinstance(self.keep_params, bool) or not isinstance(self.keep_params, int) or self.keep_params < 0:
            raise ValueError(f"keep_params must be a whole number >= 0 (designs whose trained parameters are kept; "
                             f"0: none), got {self.keep_params!r}")
        if self.keep_checkpoints < 0:
            raise ValueError(f"keep_checkpoints must be >= 0 (0 keeps all), got {self.keep_checkpoints}")
        if isinstance(self.repair_rounds, bool) or not isinstance(self.repair_rounds, int) or self.repair_rounds < 0:
            raise ValueError(f"repair_rounds must be a whole number >= 0 (0 turns repairs off), got {self.repair_rounds!r}")
        rate = self.offline_break_rate
        if isinstance(rate, bool) or not isinstance(rate, (int, float)) or not 0 <= rate <= 1:
            raise ValueError(f"offline_break_rate must be a probability in [0, 1], got {rate!r}")
        if isinstance(self.baseline_seeds, bool) or not isinstance(self.baseline_seeds, int) or self.baseline_seeds < 1:
            raise ValueError(f"baseline_seeds must be a whole number >= 1 (1 trains the baseline at one seed), got "
                             f"{self.baseline_seeds!r}")
        object.__setattr__(self, "devices", tuple(str(d) for d in self.devices))


@dataclass(frozen=True)
class GenesysConfig:
    evaluator: EvaluatorSettings = field(default_factory=EvaluatorSettings)
    selector: SelectorSettings = field(default_factory=SelectorSettings)
    run: RunSettings = field(default_factory=RunSettings)
    engine: EngineSettings = field(default_factory=EngineSettings)
    stall: StallPolicy = field(default_factory=StallPolicy)
    cost: CostSettings = field(default_factory=CostSettings)  # prices and spending caps (controller/cost.py)
    stages: tuple[StageSettings, ...] = ()  # combination stages run after this run (openevolve_genesys.stages)

    @classmethod
    def from_dict(cls, raw: Mapping[str, Any]) -> "GenesysConfig":
        evaluator_keys, run_keys = field_names(EvaluatorSettings), field_names(RunSettings)
        reject_unknown(raw, evaluator_keys | run_keys | {"selector", "engine", "stall", "cost", "stages"},
                      "genesys")
        evaluator = EvaluatorSettings.from_dict({k: v for k, v in raw.items() if k in evaluator_keys})
        selectors = [("genesys.selector", raw.get("selector") or {})] + [
            (f"genesys.stages[{i}].selector", stage.get("selector") or {})
            for i, stage in enumerate(raw.get("stages") or []) if isinstance(stage, Mapping)]
        for where, section in selectors:
            if isinstance(section, Mapping) and "schedule" in section:
                check_choice(section["schedule"], SCHEDULES, f"{where}.schedule")
        selector = SelectorSettings.from_dict(raw.get("selector") or {})
        engine = EngineSettings.from_dict(raw.get("engine") or {})
        _check_rung_names(engine, evaluator)
        run = build(RunSettings, {k: v for k, v in raw.items() if k in run_keys}, "genesys")
        stall = build(StallPolicy, raw.get("stall") or {}, "genesys.stall")
        cost = CostSettings.from_dict(raw.get("cost") or {})
        return cls(evaluator, selector, run, engine, stall, cost, parse_stages(raw.get("stages")))


def _check_rung_names(engine: EngineSettings, evaluator: EvaluatorSettings) -> None:
    """The per-rung engine keys name rungs of the configured profile (a misspelt one would never apply)."""
    profile = PROFILES[evaluator.profile].override(evaluator.profile_overrides or {})
    rungs = [r.name for r in profile.rungs]
    for key in ("cpus_per_rung", "gpus_per_rung"):
        for rung in getattr(engine, key):
            check_choice(rung, rungs, f"a rung of genesys.engine.{key} (profile {evaluator.profile})")


@dataclass
class RunConfig:
    path: Path
    openevolve: oe.Config
    genesys: GenesysConfig
    breaker: BreakerSettings = field(default_factory=BreakerSettings)  # llm.max_consecutive_failures


def validate_openevolve_sections(raw: Mapping[str, Any]) -> None:
    if not isinstance(raw, Mapping):
        raise ConfigError(f"the top level must be a mapping of sections, got {type(raw).__name__}")
    reject_unknown(raw, field_names(oe.Config) | {"genesys"}, "the config's top level")
    for section, cls in OPENEVOLVE_SECTIONS.items():
        value = raw.get(section)
        if value is None:
            continue
        reject_unknown(value, field_names(cls) | (BREAKER_KEYS if section == "llm" else set()), section)
        if section == "llm":
            for key in ("models", "evaluator_models"):
                for i, model in enumerate(value.get(key) or []):
                    reject_unknown(model, field_names(oe.LLMModelConfig), f"llm.{key}[{i}]")


def load_run_config(path: str | os.PathLike, *, run_folder_copy: bool = False) -> RunConfig:
    """Read and validate a run YAML; every mistake is a ConfigError naming the key and the fix.

    ``run_folder_copy``: the config.yaml a run folder keeps, read back by report, validate and stages; it
    may predate a refused OpenEvolve key, which is then skipped rather than refused."""
    path = Path(path)
    if not path.is_file():
        shipped = shipped_config(str(path))
        if shipped is None:
            raise ConfigError(f"config file {path} does not exist; name an existing YAML or a shipped config: "
                              f"{', '.join(shipped_configs())}")
        log.info("%s is not here: using the shipped %s", path, shipped)
        path = shipped
    try:
        raw = yaml.safe_load(path.read_text()) or {}
    except yaml.YAMLError as err:
        raise ConfigError(f"{path} is not valid YAML: {err}") from None
    try:
        validate_openevolve_sections(raw)
        genesys = GenesysConfig.from_dict(check_openevolve_keys(raw, refuse=not run_folder_copy))
        llm_raw = raw.get("llm") or {}
        breaker = build(BreakerSettings, {k: v for k, v in llm_raw.items() if k in BREAKER_KEYS}, "llm")
        openevolve_raw = {k: v for k, v in raw.items() if k != "genesys"}
        # OpenEvolve's llm section without this project's keys, which OpenEvolve would drop or refuse.
        openevolve_raw["llm"] = {k: v for k, v in llm_raw.items() if k not in BREAKER_KEYS}
        openevolve_config = oe.Config.from_dict(_without_default_model(openevolve_raw))
        genesys.cost.check_models(m.name for m in openevolve_config.llm.models)
    except ConfigError as err:
        raise ConfigError(f"{path}: {err}") from None
    except Exception as err:  # dacite's type errors name the field; keep the file in the message
        raise ConfigError(f"{path}: {type(err).__name__}: {err}") from None
    return RunConfig(path, openevolve_config, genesys, breaker)


def configured_log_level(path: str | os.PathLike) -> str:
    """A run YAML's ``log_level`` (checked by load_run_config), read before logging is set up; INFO when the
    file cannot be read or names none, since loading it properly reports that mistake a moment later."""
    try:
        raw = yaml.safe_load(Path(path).read_text()) or {}
    except (OSError, yaml.YAMLError):
        return "INFO"
    level = raw.get("log_level") if isinstance(raw, Mapping) else None
    return level.upper() if isinstance(level, str) and level.upper() in LOG_LEVELS else "INFO"


def _without_default_model(raw: Mapping[str, Any]) -> dict[str, Any]:
    """OpenEvolve refuses an llm section without models; the offline mutator needs none."""
    raw = dict(raw)
    llm = dict(raw.get("llm") or {})
    if not (llm.get("models") or llm.get("primary_model")):
        llm["primary_model"] = "offline-mutator"
    raw["llm"] = llm
    return raw


def llm_endpoint_configured(config: oe.Config) -> bool:
    """True when an API key or an endpoint other than OpenAI's own is configured, in the YAML or in the
    environment ($OPENAI_API_KEY; $OPENAI_API_BASE or $OPENAI_BASE_URL), resolved as the streaming client
    resolves them (llm/endpoint.py: the YAML first)."""
    models = config.llm.models
    has_key = any(endpoint.api_key(m.api_key) for m in models) or bool(endpoint.api_key(config.llm.api_key))
    bases = [endpoint.api_base(m.api_base) for m in models]
    custom_base = any(base and not endpoint.is_openai_default(base) for base in bases)
    return has_key or custom_base


def replace(config: GenesysConfig, **evaluator_changes: Any) -> GenesysConfig:
    return dataclasses.replace(config, evaluator=dataclasses.replace(config.evaluator, **evaluator_changes))
