import logging

import pytest

from openevolve_genesys.config import RunSettings
from openevolve_genesys.engine import make_engine
from openevolve_genesys.engine.base import EngineSettings
from openevolve_genesys.engine.devices import core_groups, device_env, slot_envs
from openevolve_genesys.engine.local import LocalEngine
from openevolve_genesys.engine.ray_engine import shared_gpu_env
from openevolve_genesys.strict import ConfigError, build


def test_device_names_become_the_environment_jax_reads_at_import():
    assert device_env("1") == {"CUDA_VISIBLE_DEVICES": "1"}
    assert device_env("cuda:2") == {"CUDA_VISIBLE_DEVICES": "2"}
    assert device_env("cpu") == {"JAX_PLATFORMS": "cpu", "CUDA_VISIBLE_DEVICES": ""}
    with pytest.raises(ValueError, match="'tpu7'.*CUDA index"):
        device_env("tpu7")


def test_slots_follow_the_devices_or_the_worker_count():
    assert slot_envs(["0", "1"]) == [{"CUDA_VISIBLE_DEVICES": "0"}, {"CUDA_VISIBLE_DEVICES": "1"}]
    assert slot_envs(["0", "1"], workers=1) == [{"CUDA_VISIBLE_DEVICES": "0"}]  # the user's count wins
    assert slot_envs([], workers=3) == [{}, {}, {}]
    assert slot_envs([]) == [{}]


SHARED = {"XLA_PYTHON_CLIENT_PREALLOCATE": "false", "XLA_PYTHON_CLIENT_MEM_FRACTION": "0.3"}


def test_two_gpus_with_three_slots_each_get_six_slots_each_with_a_third_of_the_memory():
    envs = slot_envs(["0", "1"], slots_per_device=3)
    assert len(envs) == 6
    assert [e["CUDA_VISIBLE_DEVICES"] for e in envs] == ["0", "1", "0", "1", "0", "1"]  # in turn across devices
    assert all(e == {"CUDA_VISIBLE_DEVICES": e["CUDA_VISIBLE_DEVICES"], **SHARED} for e in envs)
    # A worker count below the total spreads over both devices; above it, the devices' slots are all there is.
    assert [e["CUDA_VISIBLE_DEVICES"] for e in slot_envs(["0", "1"], workers=4, slots_per_device=3)] == \
        ["0", "1", "0", "1"]
    assert len(slot_envs(["0", "1"], workers=9, slots_per_device=3)) == 6
    fixed = slot_envs(["0"], slots_per_device=2, memory_fraction=0.25)
    assert [e["XLA_PYTHON_CLIENT_MEM_FRACTION"] for e in fixed] == ["0.25", "0.25"]
    # A CPU entry stays one slot; unpinned slots share the GPU JAX picks.
    half = {"XLA_PYTHON_CLIENT_PREALLOCATE": "false", "XLA_PYTHON_CLIENT_MEM_FRACTION": "0.45"}
    gpu = {"CUDA_VISIBLE_DEVICES": "0", **half}
    assert slot_envs(["cpu", "0"], slots_per_device=2) == [device_env("cpu"), gpu, gpu]
    assert slot_envs([], slots_per_device=3) == [SHARED] * 3


def test_the_local_engine_shares_gpus_but_not_a_cpu_only_machine(caplog):
    engine = LocalEngine(None, ["0", "1"], slots_per_device=3, backend=lambda: "gpu")
    assert engine.slots == 6
    envs = [engine._free.get()[0] for _ in range(6)]  # (env, warm slot)
    assert sorted(e["CUDA_VISIBLE_DEVICES"] for e in envs) == ["0", "0", "0", "1", "1", "1"]
    assert all(e["XLA_PYTHON_CLIENT_MEM_FRACTION"] == "0.3" for e in envs)
    with caplog.at_level(logging.INFO, logger="openevolve_genesys.engine.local"):
        cpu = LocalEngine(None, ["0", "1"], slots_per_device=3, backend=lambda: "cpu")
        unpinned = LocalEngine(None, [], workers=2, slots_per_device=3, backend=lambda: "cpu")
    assert cpu.slots == 2 and "XLA_PYTHON_CLIENT_MEM_FRACTION" not in cpu._free.get()[0]
    assert unpinned.slots == 2 and unpinned._free.get()[0] == {}
    notes = [r.getMessage() for r in caplog.records if "no effect" in r.getMessage()]
    assert len(notes) == 2 and "no GPU on this machine" in notes[0]
    # Listed CPUs never ask the backend: nothing to share.
    assert LocalEngine(None, ["cpu"], slots_per_device=2, backend=lambda: pytest.fail("asked")).slots == 1


def test_make_engine_takes_the_slots_per_device_from_the_engine_settings(monkeypatch):
    monkeypatch.setattr("openevolve_genesys.engine.local._backend", lambda: "gpu")
    assert make_engine(EngineSettings(slots_per_device=2), None, 0, ["0", "1"]).slots == 4
    assert make_engine(EngineSettings(slots_per_device=2), None, 3, ["0", "1"]).slots == 3
    assert make_engine(EngineSettings(), None, 0, []).slots == 1


@pytest.mark.parametrize("raw, message", [
    ({"slots_per_device": 0}, "slots_per_device must be a whole number >= 1"),
    ({"slots_per_device": 1.5}, "slots_per_device must be a whole number >= 1"),
    ({"slots_per_device": True}, "slots_per_device must be a whole number >= 1"),
    ({"slots_per_device": 4, "memory_fraction_per_slot": 0.5}, "slots_per_device x it at most 1"),
    ({"memory_fraction_per_slot": -0.1}, "memory_fraction_per_slot"),
    ({"slots_per_device": 2, "gpus_per_job": 0.5}, "keep one"),
])
def test_bad_slot_settings_are_refused_in_one_line(raw, message):
    with pytest.raises(ConfigError, match=message) as err:
        EngineSettings.from_dict(raw)
    assert "\n" not in str(err.value) and "genesys.engine" in str(err.value)


def test_workers_default_to_the_engine_slots_and_refuse_negative_counts():
    assert RunSettings().workers == 0
    with pytest.raises(ConfigError, match="workers must be a whole number >= 0"):
        build(RunSettings, {"workers": -1}, "genesys")


def test_ray_jobs_ask_for_their_share_of_a_gpu_and_cap_its_memory():
    shared = EngineSettings(kind="ray", slots_per_device=4, gpus_per_rung={})
    assert shared.resources(["r0"]) == (1.0, 0.25)
    assert shared_gpu_env(shared, 0.25) == {"XLA_PYTHON_CLIENT_PREALLOCATE": "false",
                                            "XLA_PYTHON_CLIENT_MEM_FRACTION": "0.225"}
    assert EngineSettings(kind="ray").resources(["r0"]) == (1.0, 0.0)
    assert shared_gpu_env(EngineSettings(kind="ray"), 0.0) == {} and shared_gpu_env(EngineSettings(), 1.0) == {}
    half = EngineSettings(kind="ray", gpus_per_job=0.5)
    assert shared_gpu_env(half, 0.5)["XLA_PYTHON_CLIENT_MEM_FRACTION"] == "0.45"


def test_cores_are_shared_out_between_runs():
    assert core_groups(2, [0, 1, 2, 3]) == [[0, 1], [2, 3]]
    assert core_groups(3, [0, 1, 2, 3]) == [[0], [1], [2, 3]]
    assert core_groups(3, [0, 1]) == [[0], [1], [0]]  # more runs than cores: round-robin
