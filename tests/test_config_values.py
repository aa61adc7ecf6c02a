"""Bad values stop the run at load with one line naming the key, the value, the allowed ones and the nearest."""

import subprocess
import sys

import pytest
import yaml

from openevolve_genesys.cli import main
from openevolve_genesys.config import load_run_config
from openevolve_genesys.strict import ConfigError

SHIPPED = "configs/matrix_mixer.yaml"


def write(tmp_path, change):
    raw = yaml.safe_load(open(SHIPPED))
    change(raw)
    path = tmp_path / "run.yaml"
    path.write_text(yaml.safe_dump(raw))
    return path


def _set(section, **values):
    def change(raw):
        target = raw["genesys"]
        for key in section:
            target = target.setdefault(key, {})
        target.update(values)
    return change


@pytest.mark.parametrize("change, message", [
    (_set((), profile="smoek"), "genesys.profile is 'smoek', which is not one of genesys, seed, smoke; "
                                "did you mean 'smoke'?"),
    (_set((), framework="matrix_mixr"), "genesys.framework is 'matrix_mixr', which is not one of "
                                        "coefficient_dynamics, test_time_regression, matrix_mixer; "
                                        "did you mean 'matrix_mixer'?"),
    (_set((), framework="/nowhere/f.py"), "genesys.framework file /nowhere/f.py does not exist"),
    (_set((), fitness="neg_slop"), "genesys.fitness is 'neg_slop'.*did you mean 'neg_slope'"),
    (_set((), outside_edits="revrt"), "genesys.outside_edits is 'revrt'.*did you mean 'revert'"),
    (_set(("tune",), rung="r7"), r"genesys.tune.rung \(profile smoke\) is 'r7', which is not one of r0, r1, r2, r3"),
    (_set(("selector",), schedule="cosin"), "genesys.selector.schedule is 'cosin'.*did you mean 'cosine'"),
    (_set((), stages=[{"name": "s", "selector": {"schedule": "lin"}}]), r"genesys.stages\[0\].selector.schedule"),
    (_set(("engine",), kind="rey"), "genesys.engine: kind is 'rey'.*did you mean 'ray'"),
    (_set(("engine",), gpus_per_rung={"r5": 1}), "a rung of genesys.engine.gpus_per_rung .* is 'r5'"),
    (_set(("profile_overrides", "train"), schedule="cosne"),
     "genesys.profile_overrides.train.schedule is 'cosne'.*did you mean 'cosine'"),
    (_set(("profile_overrides", "train"), compute_dtype="bf16"), "train.compute_dtype is 'bf16'"),
    (_set((), mutator="ofline"), "genesys: mutator is 'ofline'.*did you mean 'offline'"),
    (_set((), accounting="stok"), "genesys: accounting is 'stok'.*did you mean 'stock'"),
])
def test_a_bad_value_names_key_value_and_the_allowed_ones(tmp_path, change, message):
    with pytest.raises(ConfigError, match=message):
        load_run_config(write(tmp_path, change))


def test_rung_names_follow_the_profile_overrides(tmp_path):
    rungs = [{"name": "tiny", "d_model": 32, "n_layers": 1, "n_heads": 2}]
    config = load_run_config(write(tmp_path, _set((), profile_overrides={"rungs": rungs}, tune={"rung": "tiny"})))
    assert config.genesys.evaluator.tune.rung == "tiny"


def test_the_cli_prints_one_line_and_fails_on_a_misspelt_profile(tmp_path, capsys):
    # On a CPU the config's profile used to be replaced by smoke before anyone looked at it.
    assert main([str(write(tmp_path, _set((), profile="smoek"))), "--output", str(tmp_path / "out")]) == 2
    err = capsys.readouterr().err.strip()
    assert err.count("\n") == 0 and "genesys.profile is 'smoek'" in err
    assert not (tmp_path / "out").exists()


def test_the_cli_refuses_a_misspelt_profile_flag(tmp_path):
    result = subprocess.run([sys.executable, "-m", "openevolve_genesys.cli", SHIPPED, "--profile", "smoek",
                             "--output", str(tmp_path / "out")], capture_output=True, text=True, timeout=300)
    assert result.returncode == 2
    assert "Traceback" not in result.stderr and "smoek" in result.stderr
