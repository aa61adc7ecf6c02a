"""Strict reading of YAML mappings: an unknown key is an error that names it and the nearest valid key.

OpenEvolve 0.4.0 builds its config with dacite in non-strict mode and drops unknown keys silently, so a
misspelt ``max_iteratons`` runs with the default. Every section this project reads goes through here.
"""

from __future__ import annotations

import dataclasses
import difflib
import math
from typing import Any, Iterable, Mapping


class ConfigError(ValueError):
    """A configuration mistake; the message names the key, where it is and the fix."""


def reject_unknown(mapping: Mapping[str, Any], allowed: Iterable[str], where: str) -> None:
    allowed = sorted(allowed)
    if not isinstance(mapping, Mapping):
        raise ConfigError(f"{where} must be a mapping of keys to values, got {type(mapping).__name__}")
    for key in mapping:
        if key not in allowed:
            near = difflib.get_close_matches(str(key), allowed, n=1, cutoff=0.5)
            hint = f"; did you mean {near[0]!r}?" if near else f"; valid keys: {', '.join(allowed)}"
            raise ConfigError(f"unknown key {key!r} in {where}{hint}")


def check_choice(value: Any, allowed: Iterable[Any], key: str) -> None:
    """A ConfigError naming ``key``, the bad value, the allowed values and the nearest one, unless allowed."""
    allowed = list(allowed)
    if value in allowed:
        return
    near = difflib.get_close_matches(str(value), [str(a) for a in allowed], n=1, cutoff=0.5)
    hint = f"; did you mean {near[0]!r}?" if near else ""
    raise ConfigError(f"{key} is {value!r}, which is not one of {', '.join(map(str, allowed))}{hint}")


def finite_number(value: Any) -> bool:
    """A YAML value that is a finite int or float (YAML's true/false are bools, which Python counts as ints)."""
    return isinstance(value, (int, float)) and not isinstance(value, bool) and math.isfinite(value)


def field_names(cls: type) -> set[str]:
    return {f.name for f in dataclasses.fields(cls) if not f.name.startswith("_")}


def build(cls: type, mapping: Mapping[str, Any], where: str) -> Any:
    """``cls(**mapping)`` after rejecting unknown keys; a bad value's error names ``where``."""
    reject_unknown(mapping, field_names(cls), where)
    try:
        return cls(**mapping)
    except (TypeError, ValueError) as err:
        raise ConfigError(f"{where}: {err}") from None
