"""Framework programs and shipped configs are package data: found from any folder, one source of truth."""

from pathlib import Path

import pytest

from openevolve_genesys.config import load_run_config
from openevolve_genesys.evaluation.program import FRAMEWORKS, framework_path
from openevolve_genesys.resources import evaluation_file, framework_file, main, shipped_config, shipped_configs
from openevolve_genesys.strict import ConfigError

ROOT = Path(__file__).resolve().parents[1]


@pytest.mark.parametrize("name", FRAMEWORKS)
def test_the_package_copies_are_the_top_level_files(name):
    # A checkout keeps links, so an edit of frameworks/ or configs/ is what the package ships.
    assert framework_file(name).resolve() == (ROOT / "frameworks" / f"{name}.py").resolve()
    assert framework_path(name) == framework_file(name)
    assert shipped_config(name).resolve() == (ROOT / "configs" / f"{name}.yaml").resolve()
    assert framework_file(name).read_text() == (ROOT / "frameworks" / f"{name}.py").read_text()


def test_every_framework_ships_a_config():
    assert shipped_configs() == sorted(FRAMEWORKS)


@pytest.mark.parametrize("spelling", ["matrix_mixer", "matrix_mixer.yaml", "configs/matrix_mixer.yaml"])
def test_a_shipped_config_loads_by_name_from_any_folder(tmp_path, monkeypatch, spelling):
    monkeypatch.chdir(tmp_path)
    config = load_run_config(spelling)
    assert config.genesys.evaluator.framework == "matrix_mixer"
    assert config.path == shipped_config("matrix_mixer")


def test_a_missing_config_names_the_shipped_ones(tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    with pytest.raises(ConfigError, match="shipped config: coefficient_dynamics, matrix_mixer, test_time_regression"):
        load_run_config("other/matrix_mixer.yaml")
    with pytest.raises(ConfigError, match="does not exist"):
        load_run_config("matrix_mixr")


def test_stock_openevolves_evaluation_file_ships_too_and_every_path_prints(capsys):
    assert evaluation_file().resolve() == (ROOT / "evolution" / "evaluator.py").resolve()
    assert main(["evaluator"]) == 0 and main(["framework", "matrix_mixer"]) == 0 and main(["config", "matrix_mixer"]) == 0
    assert capsys.readouterr().out.split() == [str(evaluation_file()), str(framework_file("matrix_mixer")),
                                               str(shipped_config("matrix_mixer"))]
    with pytest.raises(SystemExit):
        main(["framework", "matrix_mixr"])
    assert "no shipped framework 'matrix_mixr'" in capsys.readouterr().err
