import pytest
import yaml

from openevolve_genesys.config import load_run_config, llm_endpoint_configured
from openevolve_genesys.strict import ConfigError

CONFIGS = ["configs/coefficient_dynamics.yaml", "configs/test_time_regression.yaml", "configs/matrix_mixer.yaml"]


@pytest.mark.parametrize("path", CONFIGS)
def test_the_shipped_configs_load(path):
    config = load_run_config(path)
    assert config.genesys.evaluator.framework in path
    assert config.openevolve.max_iterations > 0


def write(tmp_path, change):
    raw = yaml.safe_load(open(CONFIGS[0]))
    change(raw)
    path = tmp_path / "run.yaml"
    path.write_text(yaml.safe_dump(raw))
    return path


@pytest.mark.parametrize("change, message", [
    (lambda raw: raw.update(max_iteratons=3), "'max_iteratons' in the config's top level; did you mean 'max_iterations'"),
    (lambda raw: raw["genesys"].update(profle="seed"), "'profle' in genesys; did you mean 'profile'"),
    (lambda raw: raw.setdefault("database", {}).update(populaton_size=3), "'populaton_size' in database; did you mean 'population_size'"),
    (lambda raw: raw["genesys"].update(selector={"halving_ration": 2}), "'halving_ration' in genesys.selector"),
    (lambda raw: raw["genesys"]["checks"].update(param_tolerence=0.2), "'param_tolerence' in genesys.checks"),
    (lambda raw: raw["llm"].update(models=[{"name": "x", "wieght": 1}]), r"'wieght' in llm.models\[0\]"),
])
def test_a_misspelt_key_at_any_level_is_named_with_its_fix(tmp_path, change, message):
    with pytest.raises(ConfigError, match=message):
        load_run_config(write(tmp_path, change))


def test_a_bad_value_names_the_section(tmp_path):
    with pytest.raises(ConfigError, match="genesys: mutator is .gpt., which is not one of auto, offline, llm"):
        load_run_config(write(tmp_path, lambda raw: raw["genesys"].update(mutator="gpt")))


def test_missing_and_unparsable_files_are_clear_errors(tmp_path):
    with pytest.raises(ConfigError, match="does not exist; name an existing YAML or a shipped config: coefficient_dynamics"):
        load_run_config(tmp_path / "nope.yaml")
    (tmp_path / "bad.yaml").write_text("genesys: [unclosed")
    with pytest.raises(ConfigError, match="not valid YAML"):
        load_run_config(tmp_path / "bad.yaml")


def test_an_endpoint_counts_as_configured_only_with_a_key_or_a_custom_base(tmp_path, monkeypatch):
    for name in ("OPENAI_API_KEY", "OPENAI_API_BASE", "OPENAI_BASE_URL"):
        monkeypatch.delenv(name, raising=False)
    assert not llm_endpoint_configured(load_run_config(CONFIGS[0]).openevolve)
    local = write(tmp_path, lambda raw: raw["llm"].update(api_base="http://localhost:8000/v1"))
    assert llm_endpoint_configured(load_run_config(local).openevolve)


@pytest.mark.parametrize("variable, value", [("OPENAI_API_KEY", "sk-test"),
                                             ("OPENAI_BASE_URL", "http://127.0.0.1:8000/v1"),
                                             ("OPENAI_API_BASE", "http://127.0.0.1:8000/v1")])
def test_a_key_or_an_endpoint_set_only_in_the_environment_counts(monkeypatch, variable, value):
    for name in ("OPENAI_API_KEY", "OPENAI_API_BASE", "OPENAI_BASE_URL"):
        monkeypatch.delenv(name, raising=False)
    monkeypatch.setenv(variable, value)
    assert llm_endpoint_configured(load_run_config(CONFIGS[0]).openevolve)
    monkeypatch.setenv(variable, "")  # set but empty is not set
    assert not llm_endpoint_configured(load_run_config(CONFIGS[0]).openevolve)


@pytest.mark.parametrize("value", [0, -1, 2.5, "3", True])
def test_baseline_seeds_must_be_a_whole_number_of_at_least_one(tmp_path, value):
    with pytest.raises(ConfigError, match=r"genesys: baseline_seeds must be a whole number >= 1 .*got") as err:
        load_run_config(write(tmp_path, lambda raw: raw["genesys"].update(baseline_seeds=value)))
    assert "\n" not in str(err.value)


def test_baseline_seeds_defaults_to_three_and_one_is_allowed(tmp_path):
    assert load_run_config(CONFIGS[0]).genesys.run.baseline_seeds == 3
    assert load_run_config(write(tmp_path, lambda raw: raw["genesys"].update(baseline_seeds=1))).genesys.run.baseline_seeds == 1
