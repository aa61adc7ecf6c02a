"""The evaluator's part of the run YAML is read strictly when the config loads, nested sections included."""

import pytest

from openevolve_genesys.evaluation.settings import EvaluatorSettings
from openevolve_genesys.strict import ConfigError


@pytest.mark.parametrize("raw, message", [
    ({"data": {"sorce": "stdlib"}}, r"'sorce' in genesys.data; did you mean 'source'"),
    ({"profile_overrides": {"trian": {"steps": 5}}}, r"'trian' in genesys.profile_overrides; did you mean 'train'"),
    ({"profile_overrides": {"train": {"stpes": 5}}}, r"'stpes' in genesys.profile_overrides.train"),
    ({"profile_overrides": {"rungs": [{"d_model": 8, "n_layer": 1, "n_heads": 1}]}},
     r"'n_layer' in genesys.profile_overrides.rungs\[0\]"),
])
def test_nested_typos_are_named_at_load_time(raw, message):
    with pytest.raises(ConfigError, match=message):
        EvaluatorSettings.from_dict(raw)


def test_valid_nested_sections_load():
    settings = EvaluatorSettings.from_dict({"data": {"source": "stdlib"},
                                            "profile_overrides": {"train": {"steps": 5}}})
    assert settings.profile_overrides["train"]["steps"] == 5
