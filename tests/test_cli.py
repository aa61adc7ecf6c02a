import logging

import pytest

from openevolve_genesys import cli


def test_a_config_error_exits_2_with_the_message(tmp_path, capsys):
    path = tmp_path / "bad.yaml"
    path.write_text("max_iteratons: 3\n")
    assert cli.main([str(path)]) == 2
    assert "did you mean 'max_iterations'" in capsys.readouterr().err


def test_an_existing_run_is_not_overwritten_without_resume(tmp_path, capsys):
    output = tmp_path / "run"
    output.mkdir()
    (output / "history.jsonl").write_text("{}\n")
    assert cli.main(["configs/matrix_mixer.yaml", "--output", str(output)]) == 2
    assert "--resume" in capsys.readouterr().err


def test_several_configs_need_one_device_each(capsys):
    code = cli.main(["configs/matrix_mixer.yaml", "configs/test_time_regression.yaml", "--devices", "0"])
    assert code == 2 and "one per config" in capsys.readouterr().err


@pytest.mark.parametrize("argv", [["--help"]])
def test_help_names_the_options(argv, capsys):
    with pytest.raises(SystemExit):
        cli.main(argv)
    out = capsys.readouterr().out
    for option in ("--iterations", "--output", "--resume", "--profile", "--log-level", "--devices"):
        assert option in out
