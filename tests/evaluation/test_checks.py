import dataclasses
import math

import pytest

from broken_programs import BROKEN, TEMPLATE
from openevolve_genesys.evaluation.checks import (
    CheckSettings, StepTimeGuard, check_learning, check_mixer, check_parameter_budget,
)
from openevolve_genesys.evaluation.evaluator import BaselineSpeeds
from openevolve_genesys.evaluation.program import ProgramError, load_program
from openevolve_genesys.training.loop import ChunkProgress, RungResult
from openevolve_genesys.training.profiles import get_profile

PROFILE = get_profile("smoke")


def run_checks(source):
    program = load_program(source, framework="coefficient_dynamics")
    check_mixer(program.build_mixer)
    return check_parameter_budget(program.build_mixer, PROFILE)


def test_the_baseline_passes_every_check_with_the_baselines_parameter_count():
    counts = run_checks(TEMPLATE)
    assert all(design == baseline for design, baseline in counts.values())
    assert list(counts) == [r.name for r in PROFILE.rungs]


@pytest.mark.parametrize("kind", sorted(BROKEN))
def test_each_broken_program_fails_its_own_check_with_a_useful_message(kind):
    with pytest.raises(ProgramError) as err:
        run_checks(BROKEN[kind])
    assert err.value.kind == kind
    assert len(err.value.message) > 30  # says what is wrong and, where it can, how to fix it


def rung_result(final_loss, diverged=False):
    return RungResult("r0", 32, 2, 2, 1000, 2000, 300, final_loss, final_loss, diverged=diverged)


def test_learning_checks():
    check_learning(rung_result(5.0), vocab_size=2048)
    with pytest.raises(ProgramError, match="loss_exploded"):
        check_learning(rung_result(math.nan, diverged=True), vocab_size=2048)
    with pytest.raises(ProgramError) as err:
        check_learning(rung_result(math.log(2048) - 0.01), vocab_size=2048)
    assert err.value.kind == "loss_not_falling" and "chance" in err.value.message


def test_step_time_guard_stops_a_design_much_slower_than_the_baseline():
    guard = StepTimeGuard(baseline_tokens_per_second=10_000, tokens_per_step=100, max_ratio=3.0, after_steps=10)
    guard(ChunkProgress("r0", 5, 100, 5.0, None, seconds=100.0))  # too early to judge
    guard(ChunkProgress("r0", 20, 100, 5.0, None, seconds=0.5))  # 4,000 tok/s: 2.5x slower, allowed
    with pytest.raises(ProgramError) as err:
        guard(ChunkProgress("r0", 20, 100, 5.0, None, seconds=1.0))  # 2,000 tok/s: 5x slower
    assert err.value.kind == "step_time" and "5.0x" in err.value.message


def test_step_time_guard_compares_cpu_time_when_the_baseline_has_it():
    """On a shared CPU wall time stretches with the load but CPU time does not: a design as fast as the
    baseline in CPU time passes however long its wall time, and a slow one fails however quiet the machine."""
    guard = StepTimeGuard(baseline_tokens_per_second=10_000, tokens_per_step=100, max_ratio=3.0, after_steps=10,
                          baseline_tokens_per_cpu_second=5_000)
    guard(ChunkProgress("r0", 20, 100, 5.0, None, seconds=5.0, cpu_seconds=0.4))  # wall 25x, CPU 1x: passes
    with pytest.raises(ProgramError) as err:
        guard(ChunkProgress("r0", 20, 100, 5.0, None, seconds=0.2, cpu_seconds=2.0))  # CPU 5x slower
    assert err.value.kind == "step_time" and "5.0x" in err.value.message
    # a record without CPU time (a cached baseline from before it was measured) falls back to wall time
    old = StepTimeGuard(baseline_tokens_per_second=10_000, tokens_per_step=100, max_ratio=3.0, after_steps=10)
    with pytest.raises(ProgramError):
        old(ChunkProgress("r0", 20, 100, 5.0, None, seconds=5.0, cpu_seconds=0.4))


def test_baseline_speeds_read_cpu_time_from_records_that_have_it():
    def timed(tokens_per_second, train_seconds, cpu_seconds=0.0):
        return dataclasses.replace(rung_result(5.0), tokens_per_second=tokens_per_second,
                                   train_seconds=train_seconds, cpu_seconds=cpu_seconds)

    speeds = BaselineSpeeds.of({"r0": timed(1000.0, 4.0, 8.0), "r1": timed(500.0, 2.0)})
    assert speeds.wall == {"r0": 1000.0, "r1": 500.0}
    assert speeds.cpu == {"r0": 500.0}  # 4,000 tokens over 8 CPU seconds; r1 has no CPU time recorded


def test_parameter_tolerance_is_configurable():
    program = load_program(BROKEN["param_count"], framework="coefficient_dynamics")
    check_parameter_budget(program.build_mixer, PROFILE, CheckSettings(param_tolerance=10.0))
