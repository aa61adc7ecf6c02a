"""OpenEvolve's config keys as the ``openevolve`` command reads them: each is used, sets a ``genesys`` key, is
read only by stock ``openevolve-run``, or is refused at load with why it means nothing here and what to set.

OpenEvolve's keys configure its own controller (MAP-Elites database, prompt sampler, process pool). This
command replaces those parts, so a key that configures them would be validated and then silently ignored;
refusing it keeps the promise that a correctly spelt key does what it says.
"""

from __future__ import annotations

import logging
from typing import Any, Iterator, Mapping

from openevolve_genesys.strict import ConfigError, check_choice

log = logging.getLogger(__name__)

# Keys this command uses as OpenEvolve does (dotted; ``llm.models[]`` stands for every entry of the list).
USED: dict[str, str] = {
    "max_iterations": "design attempts of the run (--iterations wins)",
    "checkpoint_interval": "an OpenEvolve checkpoint in the run folder every this many attempts",
    "log_level": "the logging level: DEBUG, INFO, WARNING or ERROR (--log-level wins)",
    "random_seed": "seeds the controller's choices (seed designs, units, models) and the offline mutator",
    "language": "must be python (the frameworks are Python programs)",
    "diff_based_evolution": "true: the design agent answers with SEARCH/REPLACE diffs; false: whole programs",
    "max_code_length": "a child longer than this many characters is rejected before it is evaluated",
    "llm": "the design agent's endpoint and models (OpenEvolve's LLM section)",
    "prompt": "see its keys", "database": "see its keys", "evaluator": "see its keys",
    "evolution_trace": "see its keys",
    **{f"llm.{key}": "as in OpenEvolve" for key in (
        "api_base", "api_key", "temperature", "top_p", "max_tokens", "timeout", "retries",
        "retry_delay", "random_seed", "reasoning_effort", "models", "primary_model", "primary_model_weight",
        "secondary_model", "secondary_model_weight")},
    # This project's keys in OpenEvolve's llm section (kept out of what OpenEvolve is given): the circuit breaker.
    "llm.max_consecutive_failures": "stalled or infra LLM calls in a row before the run saves and stops; 0: never",
    "llm.max_uncharged_share": "stalled and infra jobs' share of the worker time (wall time x workers) above "
                               "which the run saves and stops (default 0.5); 0: never",
    "llm.uncharged_min_seconds": "wall time of the run, or of its resume, before max_uncharged_share can stop it "
                                 "(default 600)",
    **{f"llm.models[].{key}": "as in OpenEvolve" for key in (
        "api_base", "api_key", "name", "weight", "temperature", "top_p", "max_tokens", "timeout", "retries",
        "retry_delay", "random_seed", "reasoning_effort")},
}

# OpenEvolve keys that set the genesys key doing the same job (path under ``genesys:``); setting both
# to different values is refused, since one of them would be ignored.
ALIASES: dict[str, tuple[str, ...]] = {
    "prompt.num_top_programs": ("selector", "num_references"),
    "prompt.template_dir": ("templates_dir",),
    "evaluator.timeout": ("sandbox", "wall_seconds"),
    "evaluator.parallel_evaluations": ("workers",),
}

# Read by stock `openevolve-run` with this same YAML (evolution/evaluator.py); the `openevolve` command
# verifies designs by the selector instead, and says so once at load.
STOCK_ONLY: dict[str, str] = {
    "evaluator.cascade_evaluation": "openevolve-run scores stage 1 (genesys.stage1_rungs) before the other rungs",
    "evaluator.cascade_thresholds": "openevolve-run trains the other rungs only when stage 1's combined_score "
                                    "(the fitness, in nats) reaches the threshold",
}

_AGENT = "this command calls an OpenAI-compatible endpoint or the offline mutator; remove it"
_PROMPT = ("this command builds its prompts from genesys.templates_dir (system.txt, design.txt) and "
           "genesys.selector (num_references, num_library_refs, instruction); remove it")
_DATABASE = ("this command keeps every design (none is evicted, there is one island) and chooses seeds and "
             "references with genesys.selector; remove it")
_TRACE = "the run folder's history.jsonl records every attempt (code, prompt, outcome, rungs); remove it"

# Why a key is refused and what to set instead; a key of a section not listed gets the section's reason.
REFUSED: dict[str, str] = {
    "checkpoint_on_improvement": "checkpoints follow checkpoint_interval and the end of the run; remove it",
    "log_dir": "logs go to the terminal; redirect them, the run folder holds history.jsonl; remove it",
    "logger_prefix": "logs go to the terminal with the module name; remove it",
    "file_suffix": "the frameworks are .py programs; remove it",
    "full_rewrite_probability": "set diff_based_evolution: false for whole-program answers",
    "enforce_evolve_blocks": "the EVOLVE-BLOCK is always enforced; genesys.outside_edits chooses revert or reject",
    "diff_pattern": "answers are read as SEARCH/REPLACE blocks; remove it",
    "early_stopping_patience": "the run ends after max_iterations attempts; remove it",
    "convergence_threshold": "the run ends after max_iterations attempts; remove it",
    "early_stopping_metric": "the run ends after max_iterations attempts; remove it",
    "max_tasks_per_child": "each evaluation runs in a fresh sandboxed process; remove it",
    "llm.name": "OpenEvolve copies it to no model; set llm.primary_model or llm.models[i].name",
    "llm.weight": "OpenEvolve copies it to no model; set llm.primary_model_weight or llm.models[i].weight",
    "llm.evaluator_models": "designs are scored by training, not by an LLM; remove it",
    "llm.system_message": "the system prompt is system.txt of genesys.templates_dir; remove it",
    "llm.models[].system_message": "the system prompt is system.txt of genesys.templates_dir; remove it",
    "llm": _AGENT, "llm.models[]": _AGENT,
    "prompt": _PROMPT,
    "prompt.num_diverse_programs": "reference-library entries are genesys.selector.num_library_refs; "
                                   "other designs are prompt.num_top_programs",
    "database": _DATABASE,
    "database.random_seed": "set the top-level random_seed",
    "database.db_path": "checkpoints go to the run folder (--output); remove it",
    "evaluator": "this command evaluates in its own sandbox (genesys.sandbox, genesys.engine); remove it",
    "evaluator.max_retries": "set genesys.requeue_limit (stalled or infra jobs run again)",
    "evaluator.memory_limit_mb": "set genesys.sandbox.memory_bytes",
    "evaluator.distributed": "set genesys.engine.kind: ray",
    "evaluator.use_llm_feedback": "designs are scored by training, not by an LLM; remove it",
    "evaluator.llm_feedback_weight": "designs are scored by training, not by an LLM; remove it",
    "evaluator.evaluator_args": "evolution/evaluator.py takes no arguments; settings come from genesys:",
    "evolution_trace": _TRACE,
}

LOG_LEVELS = ("DEBUG", "INFO", "WARNING", "ERROR", "CRITICAL")


def present_keys(raw: Mapping[str, Any]) -> Iterator[str]:
    """Every OpenEvolve key written in a run YAML, dotted (the ``genesys`` section excluded)."""
    for key, value in raw.items():
        if key == "genesys":
            continue
        yield key
        if isinstance(value, Mapping):
            for sub, inner in value.items():
                yield f"{key}.{sub}"
                if (key, sub) == ("llm", "models") and isinstance(inner, list):
                    for model in inner:
                        if isinstance(model, Mapping):
                            yield from (f"llm.models[].{k}" for k in model)


def refusal(key: str) -> str | None:
    """Why ``key`` is refused and what to set instead, or None when this command honours it."""
    if key in USED or key in ALIASES or key in STOCK_ONLY:
        return None
    section = key.rpartition(".")[0]
    return REFUSED.get(key) or REFUSED.get(section) or "it configures a part of OpenEvolve this command " \
                                                        "replaces; remove it"


def check_openevolve_keys(raw: Mapping[str, Any], *, refuse: bool = True) -> dict[str, Any]:
    """Refuse OpenEvolve keys that mean nothing here; return ``raw['genesys']`` with the aliases applied.

    ``refuse=False`` reads the copy in a finished run folder, written before a key was refused: such keys
    are skipped and, where an alias and its genesys key disagree, the genesys key (the one the run used) wins.
    """
    for key in present_keys(raw):
        why = refusal(key)
        if why is not None and refuse:
            shown = key.replace("[]", "[i]")
            raise ConfigError(f"{shown} has no effect with the openevolve command: {why}")
    if isinstance(raw.get("log_level"), str):
        check_choice(raw["log_level"].upper(), LOG_LEVELS, "log_level")
    if raw.get("language") not in (None, "python"):
        check_choice(raw["language"], ("python",), "language")
    genesys = dict(raw.get("genesys") or {})
    for key, path in ALIASES.items():
        section, _, name = key.partition(".")
        if not isinstance(raw.get(section), Mapping) or name not in raw[section]:
            continue
        genesys = _set_alias(genesys, path, raw[section][name], key, overwrite_check=refuse)
    stock = sorted(k for k in present_keys(raw) if k in STOCK_ONLY)
    if stock and refuse:
        log.info("%s: read by stock openevolve-run only; this command verifies designs by genesys.selector",
                 ", ".join(stock))
    return genesys


def _set_alias(genesys: dict[str, Any], path: tuple[str, ...], value: Any, key: str, *,
               overwrite_check: bool = True) -> dict[str, Any]:
    """``genesys`` with ``path`` set to ``value``; a different value already there is a ConfigError
    (without ``overwrite_check``, that value is kept)."""
    target = genesys
    for part in path[:-1]:
        inner = target.get(part)
        inner = dict(inner) if isinstance(inner, Mapping) else {}
        target[part] = inner
        target = inner
    name = path[-1]
    dotted = "genesys." + ".".join(path)
    if name in target and target[name] != value:
        if not overwrite_check:
            return genesys
        raise ConfigError(f"{key} is {value!r} but {dotted} is {target[name]!r}; they are the same setting, "
                          f"keep one of them")
    target[name] = value
    return genesys
