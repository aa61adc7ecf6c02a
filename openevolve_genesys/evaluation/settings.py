"""What the evaluator needs to know, read strictly from the `genesys:` section of a run's YAML."""

from __future__ import annotations

import dataclasses
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Mapping

from openevolve_genesys.data.config import DataConfig
from openevolve_genesys.evaluation.checks import CheckSettings
from openevolve_genesys.evaluation.sandbox import SandboxLimits
from openevolve_genesys.evaluation.tuning import TuneSettings
from openevolve_genesys.strict import reject_unknown
from openevolve_genesys.training.profiles import PROFILES

FITNESS = ("forecast_gap", "neg_slope", "neg_loss")


@dataclass(frozen=True)
class EvaluatorSettings:
    framework: str = "coefficient_dynamics"
    profile: str = "smoke"
    profile_overrides: Mapping[str, Any] = field(default_factory=dict)
    data: Mapping[str, Any] = field(default_factory=dict)  # DataConfig fields
    fitness: str = "forecast_gap"  # baseline's forecast minus the design's at target_n (higher is better)
    target_n: float = 0.0  # 0: ten times the largest rung's N
    outside_edits: str = "revert"  # or "reject"
    cache_path: str = ""  # "": <cache root>/fitness.sqlite
    stage1_rungs: int = 1  # cascade stage 1 trains this many of the smallest rungs
    checks: CheckSettings = field(default_factory=CheckSettings)
    sandbox: SandboxLimits = field(default_factory=SandboxLimits)
    tune: TuneSettings = field(default_factory=TuneSettings)  # learning-rate sweeps (evaluation/tuning.py)

    def __post_init__(self) -> None:
        if self.fitness not in FITNESS:
            raise ValueError(f"genesys.fitness must be one of {FITNESS}, got {self.fitness!r}")
        if self.outside_edits not in ("revert", "reject"):
            raise ValueError(f"genesys.outside_edits must be 'revert' or 'reject', got {self.outside_edits!r}")

    @classmethod
    def from_dict(cls, raw: Mapping[str, Any], where: str = "genesys") -> "EvaluatorSettings":
        raw = dict(raw)
        reject_unknown(raw, {f.name for f in dataclasses.fields(cls)}, where)
        for name, kind in (("checks", CheckSettings), ("sandbox", SandboxLimits)):
            if name in raw:
                reject_unknown(raw[name], {f.name for f in dataclasses.fields(kind)}, f"{where}.{name}")
                raw[name] = kind(**raw[name])
        if "tune" in raw:
            raw["tune"] = TuneSettings.from_dict(raw["tune"], f"{where}.tune")
        # Checked now, so that a misspelt key stops the run before its folder exists, not at the first
        # evaluation; the keys are the same for every profile (--profile may still change which).
        DataConfig.from_dict(raw.get("data") or {}, f"{where}.data")
        PROFILES["smoke"].override(raw.get("profile_overrides") or {}, f"{where}.profile_overrides")
        return cls(**raw)

    def resolved_cache_path(self) -> Path:
        from openevolve_genesys.training.runtime import cache_root

        return Path(self.cache_path) if self.cache_path else cache_root() / "fitness.sqlite"


def load_settings(path: str | Path, *, framework: str | None = None, profile: str | None = None) -> EvaluatorSettings:
    """The evaluator settings of a run YAML's ``genesys:`` section, with optional overrides."""
    import yaml

    path = Path(path)
    if not path.is_file():
        raise FileNotFoundError(f"config file {path} does not exist; pass an existing YAML (see configs/) "
                                "or set $GENESYS_CONFIG")
    raw = yaml.safe_load(path.read_text()) or {}
    if not isinstance(raw, Mapping):
        raise ValueError(f"{path}: the top level must be a mapping of sections, got {type(raw).__name__}")
    section = dict(raw.get("genesys") or {})
    if framework is not None:
        section["framework"] = framework
    if profile is not None:
        section["profile"] = profile
    try:
        return EvaluatorSettings.from_dict(section)
    except (TypeError, ValueError) as err:
        raise ValueError(f"{path}: {err}") from None
