"""What the evaluator needs to know, read strictly from the `genesys:` section of a run's YAML."""

from __future__ import annotations

import dataclasses
import math
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Mapping

from openevolve_genesys.data.config import DataConfig
from openevolve_genesys.evaluation.checks import CheckSettings
from openevolve_genesys.evaluation.program import FRAMEWORKS
from openevolve_genesys.evaluation.sandbox import SandboxLimits
from openevolve_genesys.evaluation.tuning import TuneSettings
from openevolve_genesys.scaling.settings import ValueSettings
from openevolve_genesys.strict import ConfigError, build, check_choice, reject_unknown
from openevolve_genesys.training.profiles import PROFILES

FITNESS = ("forecast_gap", "neg_slope", "neg_loss")


@dataclass(frozen=True)
class EvaluatorSettings:
    framework: str = "coefficient_dynamics"
    profile: str = "smoke"
    profile_overrides: Mapping[str, Any] = field(default_factory=dict)
    data: Mapping[str, Any] = field(default_factory=dict)  # DataConfig fields
    fitness: str = "forecast_gap"  # baseline's forecast minus the design's at target_n (higher is better)
    target_n: float = 0.0  # 0: one e-fold (valuation.target_efolds) above the largest rung's N
    valuation: ValueSettings = field(default_factory=ValueSettings)  # scaling.value_design's priors
    outside_edits: str = "revert"  # or "reject"
    cache_path: str = ""  # "": <cache root>/fitness.sqlite
    stage1_rungs: int = 1  # cascade stage 1 trains this many of the smallest rungs
    checks: CheckSettings = field(default_factory=CheckSettings)
    sandbox: SandboxLimits = field(default_factory=SandboxLimits)
    tune: TuneSettings = field(default_factory=TuneSettings)  # learning-rate sweeps (evaluation/tuning.py)
    # A design attempt's child whose probe outputs are within this relative RMS distance of its seed's (with the
    # same initial parameters) is classed no_change and never trained (evaluation/noop.py); 0 screens only
    # exact equals. Default from experiments/benchmarks/noop_distances.py: no-op edits measured at most 1.2e-7,
    # real mutations 0.07 or more but for one soft cap that is the identity at initialisation (5.4e-7).
    noop_tolerance: float = 1e-3

    def __post_init__(self) -> None:
        # Checked here, so a misspelt value stops the run at load (and --profile on the command line too),
        # not in a traceback at the first evaluation or, for the profile, silently replaced on a CPU.
        check_choice(self.fitness, FITNESS, "genesys.fitness")
        check_choice(self.outside_edits, ("revert", "reject"), "genesys.outside_edits")
        check_choice(self.profile, sorted(PROFILES), "genesys.profile")
        if not (isinstance(self.framework, str) and self.framework.endswith(".py")):
            check_choice(self.framework, FRAMEWORKS, "genesys.framework")
        elif not Path(self.framework).expanduser().is_file():
            raise ConfigError(f"genesys.framework file {self.framework} does not exist; name one of "
                              f"{', '.join(FRAMEWORKS)} or an existing generated framework file")
        tolerance = self.noop_tolerance
        if isinstance(tolerance, bool) or not isinstance(tolerance, (int, float)) or not 0 <= tolerance < math.inf:
            raise ConfigError(f"genesys.noop_tolerance must be a finite number >= 0 (a relative RMS distance, "
                              f"e.g. 1e-3), got {tolerance!r}")
        rungs = [r.name for r in PROFILES[self.profile].override(self.profile_overrides or {}).rungs]
        if self.tune.rung:
            check_choice(self.tune.rung, rungs, f"genesys.tune.rung (profile {self.profile})")

    @classmethod
    def from_dict(cls, raw: Mapping[str, Any], where: str = "genesys") -> "EvaluatorSettings":
        raw = dict(raw)
        reject_unknown(raw, {f.name for f in dataclasses.fields(cls)}, where)
        for name, kind in (("checks", CheckSettings), ("sandbox", SandboxLimits)):
            if name in raw:
                reject_unknown(raw[name], {f.name for f in dataclasses.fields(kind)}, f"{where}.{name}")
                raw[name] = kind(**raw[name])
        if "valuation" in raw:
            raw["valuation"] = build(ValueSettings, raw["valuation"] or {}, f"{where}.valuation")
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

