"""`genesys.stages` in the run YAML: strictly validated, with errors naming the entry, the key and the fix."""

import pytest
import yaml

from openevolve_genesys.config import load_run_config
from openevolve_genesys.selection.selector import SelectorSettings
from openevolve_genesys.stages.settings import StageSettings, find_stage, parse_stages
from openevolve_genesys.strict import ConfigError
from stage_programs import ROOT


def config_with(tmp_path, stages):
    raw = yaml.safe_load((ROOT / "configs" / "coefficient_dynamics.yaml").read_text())
    raw["genesys"]["stages"] = stages
    path = tmp_path / "run.yaml"
    path.write_text(yaml.safe_dump(raw))
    return path


def test_a_stage_list_is_read_with_its_defaults_and_overrides(tmp_path):
    config = load_run_config(config_with(tmp_path, [
        {"name": "hybrids", "from": "runs/cd", "pool_size": 3, "max_iterations": 12,
         "selector": {"explore_start": 0.2}},
        {"name": "second"},
    ]))
    first, second = config.genesys.stages
    assert (first.name, first.from_run, first.pool_size, first.max_iterations) == ("hybrids", "runs/cd", 3, 12)
    assert first.selector_settings(SelectorSettings(explore_end=0.05)) == SelectorSettings(explore_start=0.2,
                                                                                           explore_end=0.05)
    assert second == StageSettings(name="second")
    assert find_stage(config.genesys.stages, "second", "run.yaml") is second


def test_shipped_configs_have_no_stages_and_still_load():
    assert load_run_config(ROOT / "configs" / "matrix_mixer.yaml").genesys.stages == ()


@pytest.mark.parametrize("stages, message", [
    ({"name": "x"}, "must be a list of stages"),
    ([{"pool_size": 2}], r"genesys.stages\[0\] has no `name`"),
    ([{"name": "x", "pool_sise": 2}], r"unknown key 'pool_sise' in genesys.stages\[0\]; did you mean 'pool_size'"),
    ([{"name": "x", "selector": {"explore_strat": 0.2}}], r"stages\[0\].selector; did you mean 'explore_start'"),
    ([{"name": "x", "selector": {"explore_start": 2.0}}], r"stages\[0\]: explore_start/end must be in \[0, 1\]"),
    ([{"name": "x", "pool_size": 0}], "pool_size must be a positive int"),
    ([{"name": "x", "max_iterations": -1}], "max_iterations must be a positive int"),
    ([{"name": "x", "min_confidence": 1.5}], r"min_confidence must be in \[0, 1\]"),
    ([{"name": "a/b"}], "must be a folder name"),
    ([{"name": "x"}, {"name": "x"}], "stage names must be unique"),
])
def test_mistakes_are_named(tmp_path, stages, message):
    with pytest.raises(ConfigError, match=message):
        load_run_config(config_with(tmp_path, stages))


def test_a_misspelt_stages_key_is_caught_at_the_genesys_level(tmp_path):
    raw = yaml.safe_load((ROOT / "configs" / "coefficient_dynamics.yaml").read_text())
    raw["genesys"]["stage"] = [{"name": "x"}]
    path = tmp_path / "run.yaml"
    path.write_text(yaml.safe_dump(raw))
    with pytest.raises(ConfigError, match="unknown key 'stage' in genesys; did you mean 'stages'"):
        load_run_config(path)


def test_an_unknown_stage_name_lists_the_configured_ones():
    stages = parse_stages([{"name": "hybrids"}, {"name": "gates"}])
    with pytest.raises(ConfigError, match="no stage 'hybrid' .*did you mean 'hybrids'.*configured: hybrids, gates"):
        find_stage(stages, "hybrid", "run.yaml")
    with pytest.raises(ConfigError, match="it configures none"):
        find_stage((), "hybrids", "run.yaml")
