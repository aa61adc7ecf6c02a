"""What stock ``openevolve-run`` scores with: the run YAML its ``-c`` names, read by evolution/evaluator.py.

OpenEvolve 0.4 hands its evaluation file nothing but a program path: not the config object, not the
``-c`` path. Its process pool starts every worker with the parent's command line (fork and spawn both
copy ``sys.argv``) and with a copy of the parent's environment taken when the pool starts, after the
parent has imported the evaluation file. So the parent reads ``-c`` from its own command line and
exports it as ``$GENESYS_CONFIG``; a worker reads that, whatever its start method (a forkserver worker
sees neither command line nor path otherwise). Without an ``openevolve-run`` command line (OpenEvolve's
Python API, another launcher) only ``$GENESYS_CONFIG`` can name the file.

Of the file's ``genesys:`` section the evaluator uses its own keys; the rest (selector, workers, engine,
...) configure the ``openevolve`` command only and are checked, then ignored with one log line.
"""

from __future__ import annotations

import logging
import os
from pathlib import Path
from typing import Any, Mapping, Sequence

import yaml

from openevolve_genesys.config import GenesysConfig
from openevolve_genesys.evaluation.settings import EvaluatorSettings
from openevolve_genesys.openevolve_keys import check_openevolve_keys
from openevolve_genesys.resources import shipped_config
from openevolve_genesys.strict import ConfigError, field_names

log = logging.getLogger(__name__)

CONFIG_VARIABLE = "GENESYS_CONFIG"


def config_option(argv: Sequence[str], evaluation_file: str | os.PathLike) -> Path | None:
    """The ``-c``/``--config`` file of an ``openevolve-run`` command line whose evaluation file is
    ``evaluation_file``, made absolute; None when ``argv`` is another command or names no config.

    Read by hand rather than by argparse: openevolve-run's other options differ between releases, and an
    unknown option's value would be taken for a positional argument."""
    target = Path(evaluation_file).resolve()
    args = list(argv[1:])
    if not any(not a.startswith("-") and Path(a).resolve() == target for a in args):
        return None
    value = None
    for i, arg in enumerate(args):
        if arg in ("-c", "--config") and i + 1 < len(args):
            value = args[i + 1]
        elif arg.startswith("--config="):
            value = arg.partition("=")[2]
        elif arg.startswith("-c") and not arg.startswith("--") and len(arg) > 2:
            value = arg[2:]
    return Path(value).resolve() if value else None


def export_config_option(argv: Sequence[str], evaluation_file: str | os.PathLike) -> Path | None:
    """Export the ``-c`` file of an ``openevolve-run`` command line as $GENESYS_CONFIG, for OpenEvolve's
    workers, which inherit the environment but maybe not the command line; it wins over an exported value."""
    path = config_option(argv, evaluation_file)
    if path is None:
        return None
    if not path.is_file():
        raise ConfigError(f"openevolve-run -c {path}: no such file (OpenEvolve would run on its defaults); "
                          "pass an existing run YAML, e.g. configs/coefficient_dynamics.yaml")
    previous = os.environ.get(CONFIG_VARIABLE)
    if previous and Path(previous).resolve() != path:
        log.warning("openevolve-run -c %s wins over $%s=%s", path, CONFIG_VARIABLE, previous)
    os.environ[CONFIG_VARIABLE] = str(path)
    return path


def stock_config_path(framework: str) -> Path:
    """The run YAML the evaluation file reads: $GENESYS_CONFIG (the ``-c`` file under openevolve-run), else
    the shipped config of ``framework``."""
    named = os.environ.get(CONFIG_VARIABLE)
    if not named:
        return shipped_config(framework)
    path = Path(named).expanduser()
    if not path.is_file():
        raise ConfigError(f"${CONFIG_VARIABLE} names {path}, which does not exist; point it at a run YAML "
                          "(see configs/) or unset it to use the shipped config")
    return path


def stock_settings(path: str | os.PathLike, *, framework: str, profile: str | None = None) -> EvaluatorSettings:
    """The evaluator settings of a run YAML for ``framework`` (the program's), with an optional profile.

    The whole ``genesys`` section is checked as the ``openevolve`` command checks it, so a misspelt key is
    still an error; OpenEvolve keys that set a genesys key (``evaluator.timeout``) apply. A file without a
    ``genesys`` section (an OpenEvolve-only config) gets the shipped config's for the framework."""
    path = Path(path)
    raw = _read(path)
    if not raw.get("genesys"):
        shipped = shipped_config(framework)
        log.info("%s has no genesys section: scoring with the one of the shipped %s", path, shipped.name)
        raw = {**raw, "genesys": _read(shipped)["genesys"]}
    try:
        ignored = sorted(set(raw["genesys"]) - field_names(EvaluatorSettings))
        section = check_openevolve_keys(raw, refuse=False)
        section["framework"] = framework
        if profile is not None:
            section["profile"] = profile
        settings = GenesysConfig.from_dict(section).evaluator
    except (TypeError, ValueError) as err:
        raise ConfigError(f"{path}: {err}") from None
    if ignored:
        log.info("%s: genesys.%s: used by the openevolve command only, ignored by openevolve-run",
                 path, ", genesys.".join(ignored))
    return settings


def _read(path: Path) -> Mapping[str, Any]:
    if not path.is_file():
        raise ConfigError(f"config file {path} does not exist; pass an existing run YAML (see configs/)")
    try:
        raw = yaml.safe_load(path.read_text()) or {}
    except yaml.YAMLError as err:
        raise ConfigError(f"{path} is not valid YAML: {err}") from None
    if not isinstance(raw, Mapping):
        raise ConfigError(f"{path}: the top level must be a mapping of sections, got {type(raw).__name__}")
    return raw
