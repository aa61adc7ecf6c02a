"""The ``genesys.stages`` list: each entry is a combination stage run after a base run, read strictly.

    genesys:
      stages:
        - name: hybrids          # the folder RUN_DIR/stages/hybrids/
          from: runs/base        # the base run folder (the command line's --from wins)
          pool_size: 4           # the top designs by utility among the confidently valued ones
          min_confidence: 0.5    # default: the base run's selector.confidence_threshold
          max_iterations: 20     # the stage's own attempt budget, never the base run's
          selector: {explore_start: 0.3}   # overrides of the base run's genesys.selector
"""

from __future__ import annotations

import dataclasses
import difflib
import re
from dataclasses import dataclass, field
from typing import Any, Mapping

from openevolve_genesys.selection.selector import SelectorSettings
from openevolve_genesys.strict import ConfigError, field_names, reject_unknown

_NAME = re.compile(r"^[A-Za-z0-9][A-Za-z0-9_.-]*$")
# YAML spells the base run `from`, a Python keyword; every other key is the field's own name.
_KEYS = {"name", "from", "pool_size", "min_confidence", "max_iterations", "selector"}


@dataclass(frozen=True)
class StageSettings:
    name: str
    from_run: str = ""  # the base run folder; "" = the command line's --from, else runs/<config name>
    pool_size: int = 4
    min_confidence: float | None = None  # None: the base run's selector.confidence_threshold
    max_iterations: int = 20
    selector: Mapping[str, Any] = field(default_factory=dict)  # overrides of the base run's genesys.selector

    def __post_init__(self) -> None:
        if not isinstance(self.name, str) or not _NAME.match(self.name):
            raise ValueError(f"name must be a folder name (letters, digits, '_', '-', '.'), got {self.name!r}")
        if not isinstance(self.pool_size, int) or self.pool_size < 1:
            raise ValueError(f"pool_size must be a positive int, got {self.pool_size!r}")
        if not isinstance(self.max_iterations, int) or self.max_iterations < 1:
            raise ValueError(f"max_iterations must be a positive int, got {self.max_iterations!r}")
        if self.min_confidence is not None and not 0 <= self.min_confidence <= 1:
            raise ValueError(f"min_confidence must be in [0, 1], got {self.min_confidence!r}")

    def selector_settings(self, base: SelectorSettings) -> SelectorSettings:
        """The base run's selector with this stage's overrides."""
        return dataclasses.replace(base, **self.selector)


def parse_stages(raw: Any, where: str = "genesys.stages") -> tuple[StageSettings, ...]:
    """The stages of a YAML list; every mistake is a ConfigError naming the entry and the key."""
    if raw is None:
        return ()
    if not isinstance(raw, list):
        raise ConfigError(f"{where} must be a list of stages (each a mapping with at least `name`), "
                          f"got {type(raw).__name__}")
    stages = []
    for i, entry in enumerate(raw):
        here = f"{where}[{i}]"
        reject_unknown(entry, _KEYS, here)
        if "name" not in entry:
            raise ConfigError(f"{here} has no `name`; each stage needs one (its folder under RUN_DIR/stages/)")
        selector = entry.get("selector") or {}
        reject_unknown(selector, field_names(SelectorSettings), f"{here}.selector")
        values = {k: v for k, v in entry.items() if k not in ("from", "selector")}
        try:
            stage = StageSettings(**values, from_run=str(entry.get("from") or ""), selector=dict(selector))
            stage.selector_settings(SelectorSettings())  # a bad override value fails now, not after the pool
        except (TypeError, ValueError) as err:
            raise ConfigError(f"{here}: {err}") from None
        stages.append(stage)
    names = [s.name for s in stages]
    duplicates = sorted({n for n in names if names.count(n) > 1})
    if duplicates:
        raise ConfigError(f"{where}: stage names must be unique (each is a folder), repeated: {', '.join(duplicates)}")
    return tuple(stages)


def find_stage(stages: tuple[StageSettings, ...], name: str, config_path: str) -> StageSettings:
    """The stage called ``name``, or a ConfigError naming the configured ones."""
    for stage in stages:
        if stage.name == name:
            return stage
    names = [s.name for s in stages]
    near = difflib.get_close_matches(name, names, n=1)
    hint = f"; did you mean {near[0]!r}?" if near else ""
    known = f"configured: {', '.join(names)}" if names else "it configures none"
    raise ConfigError(f"{config_path} has no stage {name!r} in genesys.stages{hint} ({known}); add "
                      f"`genesys: {{stages: [{{name: {name}}}]}}` to the YAML")
