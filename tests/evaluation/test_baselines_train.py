"""Every framework's baseline passes every check and trains on the smoke profile's smallest rung."""

import math

import pytest

from openevolve_genesys.data import DataConfig, load_data
from openevolve_genesys.evaluation.checks import check_learning, check_mixer, check_parameter_budget
from openevolve_genesys.evaluation.program import FRAMEWORKS, framework_path, load_program
from openevolve_genesys.training.loop import train_rung
from openevolve_genesys.training.profiles import get_profile


@pytest.mark.slow
@pytest.mark.parametrize("framework", FRAMEWORKS)
def test_baseline_passes_the_checks_and_trains_on_smoke(framework):
    profile = get_profile("smoke")
    program = load_program(framework_path(framework).read_text(), framework=framework)
    check_mixer(program.build_mixer)
    counts = check_parameter_budget(program.build_mixer, profile)
    assert all(design == baseline for design, baseline in counts.values())
    data = load_data(DataConfig(), profile.vocab_size)
    result = train_rung(profile.rungs[0], data, profile.train, vocab_size=profile.vocab_size,
                        mixer=program.build_mixer)
    check_learning(result, profile.vocab_size)
    assert result.final_eval_loss < math.log(profile.vocab_size) - 1.0
