"""Every OpenEvolve key either changes what the openevolve command does (asserted) or is refused naming it."""

import dataclasses
import logging

import pytest
import yaml
from openevolve import config as oe

from openevolve_genesys import cli
from openevolve_genesys.config import load_run_config
from openevolve_genesys.openevolve_keys import ALIASES, STOCK_ONLY, USED
from openevolve_genesys.strict import ConfigError

SHIPPED = "configs/matrix_mixer.yaml"
SECTIONS = {"llm": oe.LLMConfig, "prompt": oe.PromptConfig, "database": oe.DatabaseConfig,
            "evaluator": oe.EvaluatorConfig, "evolution_trace": oe.EvolutionTraceConfig}


def _model(config):
    return config.openevolve.llm.models[0]


# key -> (a non-default value, what the run then reads differently)
HONOURED = {
    "max_iterations": (7, lambda c: c.openevolve.max_iterations == 7),
    "checkpoint_interval": (3, lambda c: c.openevolve.checkpoint_interval == 3),
    "random_seed": (5, lambda c: c.openevolve.random_seed == 5),
    "language": ("python", lambda c: c.openevolve.language == "python"),
    "llm.api_base": ("http://127.0.0.1:9/v1", lambda c: _model(c).api_base == "http://127.0.0.1:9/v1"),
    "llm.api_key": ("sk-x", lambda c: _model(c).api_key == "sk-x"),
    "llm.temperature": (0.25, lambda c: _model(c).temperature == 0.25),
    "llm.top_p": (0.5, lambda c: _model(c).top_p == 0.5),
    "llm.max_tokens": (99, lambda c: _model(c).max_tokens == 99),
    "llm.timeout": (7, lambda c: _model(c).timeout == 7),
    "llm.retries": (4, lambda c: _model(c).retries == 4),
    "llm.retry_delay": (9, lambda c: _model(c).retry_delay == 9),
    "llm.random_seed": (11, lambda c: _model(c).random_seed == 11),
    "llm.reasoning_effort": ("low", lambda c: _model(c).reasoning_effort == "low"),
    "llm.primary_model": ("m1", lambda c: _model(c).name == "m1"),
    "llm.primary_model_weight": (0.25, lambda c: _model(c).weight == 0.25),
    "llm.secondary_model": ("m2", lambda c: [m.name for m in c.openevolve.llm.models][-1] == "m2"),
    "llm.secondary_model_weight": (0.3, lambda c: len(c.openevolve.llm.models) == 1 or
                                   c.openevolve.llm.models[1].weight == 0.3),
    "llm.models": ([{"name": "a"}, {"name": "b"}], lambda c: [m.name for m in c.openevolve.llm.models] == ["a", "b"]),
    "prompt.num_top_programs": (4, lambda c: c.genesys.selector.num_references == 4),
    "prompt.template_dir": ("/tmp/templates", lambda c: c.genesys.run.templates_dir == "/tmp/templates"),
    "evaluator.timeout": (123, lambda c: c.genesys.evaluator.sandbox.wall_seconds == 123),
    "evaluator.parallel_evaluations": (3, lambda c: c.genesys.run.workers == 3),
    # Read by stock openevolve-run from the same YAML (its own tests); here they are accepted.
    "evaluator.cascade_evaluation": (False, lambda c: c.openevolve.evaluator.cascade_evaluation is False),
    "evaluator.cascade_thresholds": ([0.2], lambda c: c.openevolve.evaluator.cascade_thresholds == [0.2]),
    # Wired by the answer-parsing code (their own tests); here they must stay accepted.
    "diff_based_evolution": (False, lambda c: c.openevolve.diff_based_evolution is False),
    "max_code_length": (50, lambda c: c.openevolve.max_code_length == 50),
    "log_level": ("WARNING", lambda c: c.openevolve.log_level == "WARNING"),  # and see the CLI test below
    # This project's key in the llm section: the circuit breaker reads it, OpenEvolve is never given it.
    "llm.max_consecutive_failures": (2, lambda c: c.breaker.max_consecutive_failures == 2
                                     and not hasattr(c.openevolve.llm, "max_consecutive_failures")),
    "llm.max_uncharged_share": (0.25, lambda c: c.breaker.max_uncharged_share == 0.25
                                and not hasattr(c.openevolve.llm, "max_uncharged_share")),
    "llm.uncharged_min_seconds": (30, lambda c: c.breaker.uncharged_min_seconds == 30
                                  and not hasattr(c.openevolve.llm, "uncharged_min_seconds")),
}
MODEL_KEYS = {key.replace("llm.", "llm.models[].", 1): (value, check) for key, (value, check) in HONOURED.items()
              if key.startswith("llm.") and key[4:] in {f.name for f in dataclasses.fields(oe.LLMModelConfig)}}
MODEL_KEYS["llm.models[].name"] = ("m9", lambda c: _model(c).name == "m9")
MODEL_KEYS["llm.models[].weight"] = (0.5, lambda c: _model(c).weight == 0.5)
HONOURED.update(MODEL_KEYS)


def all_keys():
    keys = [f.name for f in dataclasses.fields(oe.Config) if f.name not in SECTIONS]
    for section, cls in SECTIONS.items():
        keys += [f"{section}.{f.name}" for f in dataclasses.fields(cls) if not f.name.startswith("_")]
    keys += [f"llm.models[].{f.name}" for f in dataclasses.fields(oe.LLMModelConfig) if not f.name.startswith("_")]
    return keys


def _guess(default):
    """A non-default value of the default's type (refusal happens before any value is read)."""
    if isinstance(default, bool):
        return not default
    if isinstance(default, (int, float)):
        return default + 3
    if isinstance(default, list):
        return [{"name": "x"}]
    if isinstance(default, dict):
        return {"x": 1}
    return "x"


def _with(key, value):
    raw = yaml.safe_load(open(SHIPPED))
    raw.pop("prompt", None)  # its keys are aliases; the test sets them one at a time
    if key.startswith("llm.models[]."):
        raw["llm"] = {"models": [{"name": "a", key.rpartition(".")[2]: value}]}
        return raw
    if key.startswith("llm."):
        raw["llm"] = {}
    section, _, name = key.rpartition(".")
    target = raw.setdefault(section, {}) if section else raw
    target[name] = value
    if section == "llm" and name in ("secondary_model", "secondary_model_weight"):
        target.setdefault("secondary_model", "m2")
    return raw


def _load(tmp_path, raw):
    path = tmp_path / "run.yaml"
    path.write_text(yaml.safe_dump(raw))
    return load_run_config(path)


@pytest.mark.parametrize("key", all_keys())
def test_each_openevolve_key_changes_behaviour_or_is_refused_by_name(tmp_path, key):
    if key in HONOURED:
        value, check = HONOURED[key]
        config = _load(tmp_path, _with(key, value))
        assert check(config), key
        return
    fields = {f"{s}.{f.name}": f for s, cls in SECTIONS.items() for f in dataclasses.fields(cls)}
    field = fields.get(key)
    default = 0
    if field is not None:
        default = field.default if field.default is not dataclasses.MISSING else field.default_factory()
    with pytest.raises(ConfigError) as err:
        _load(tmp_path, _with(key, _guess(default)))
    shown = key.replace("[]", "[i]")
    message = str(err.value)
    assert f"{shown} has no effect with the openevolve command: " in message
    assert "\n" not in message


def test_every_key_accepted_here_is_asserted_above():
    accepted = {k for k in USED if "." in k or k not in SECTIONS} | set(ALIASES) | set(STOCK_ONLY)
    assert accepted - set(SECTIONS) <= set(HONOURED), accepted - set(SECTIONS) - set(HONOURED)


def test_an_alias_and_its_genesys_key_must_agree(tmp_path):
    raw = _with("evaluator.timeout", 100)
    raw["genesys"]["sandbox"]["wall_seconds"] = 200
    with pytest.raises(ConfigError, match="evaluator.timeout is 100 but genesys.sandbox.wall_seconds is 200"):
        _load(tmp_path, raw)
    raw["genesys"]["sandbox"]["wall_seconds"] = 100
    assert _load(tmp_path, raw).genesys.evaluator.sandbox.wall_seconds == 100


def test_a_run_folder_copy_with_keys_refused_since_still_reads(tmp_path):
    raw = _with("database.population_size", 200)
    raw["evaluator"]["parallel_evaluations"] = 1
    raw["genesys"]["workers"] = 2
    path = tmp_path / "config.yaml"
    path.write_text(yaml.safe_dump(raw))
    with pytest.raises(ConfigError, match="database.population_size has no effect"):
        load_run_config(path)
    assert load_run_config(path, run_folder_copy=True).genesys.run.workers == 2


def test_a_misspelt_log_level_is_refused(tmp_path):
    with pytest.raises(ConfigError, match="log_level is 'LOUD'"):
        _load(tmp_path, _with("log_level", "loud"))


def test_stock_only_keys_are_said_once_at_load(tmp_path, caplog):
    with caplog.at_level(logging.INFO, logger="openevolve_genesys.openevolve_keys"):
        load_run_config(SHIPPED)
    lines = [r.getMessage() for r in caplog.records if "openevolve-run only" in r.getMessage()]
    assert lines == ["evaluator.cascade_evaluation, evaluator.cascade_thresholds: read by stock openevolve-run "
                     "only; this command verifies designs by genesys.selector"]


@pytest.mark.parametrize("level, flag, expected", [("WARNING", None, logging.WARNING),
                                                   ("DEBUG", None, logging.DEBUG),
                                                   ("WARNING", "ERROR", logging.ERROR)])
def test_log_level_sets_the_logging_unless_the_flag_is_given(tmp_path, level, flag, expected):
    path = tmp_path / "run.yaml"
    path.write_text(yaml.safe_dump(_with("log_level", level)))
    (tmp_path / "out").mkdir()
    (tmp_path / "out" / "history.jsonl").write_text("")  # the CLI stops before running: the folder holds a run
    root = logging.getLogger()
    before = root.level
    try:
        args = [str(path), "--output", str(tmp_path / "out")] + (["--log-level", flag] if flag else [])
        assert cli.main(args) == 2
        assert root.level == expected
    finally:
        root.setLevel(before)
