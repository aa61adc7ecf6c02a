import pytest

from openevolve_genesys.engine.devices import core_groups, device_env, slot_envs


def test_device_names_become_the_environment_jax_reads_at_import():
    assert device_env("1") == {"CUDA_VISIBLE_DEVICES": "1"}
    assert device_env("cuda:2") == {"CUDA_VISIBLE_DEVICES": "2"}
    assert device_env("cpu") == {"JAX_PLATFORMS": "cpu", "CUDA_VISIBLE_DEVICES": ""}
    with pytest.raises(ValueError, match="'tpu7'.*CUDA index"):
        device_env("tpu7")


def test_slots_follow_the_devices_or_the_worker_count():
    assert slot_envs(["0", "1"], workers=1) == [{"CUDA_VISIBLE_DEVICES": "0"}, {"CUDA_VISIBLE_DEVICES": "1"}]
    assert slot_envs([], workers=3) == [{}, {}, {}]


def test_cores_are_shared_out_between_runs():
    assert core_groups(2, [0, 1, 2, 3]) == [[0, 1], [2, 3]]
    assert core_groups(3, [0, 1, 2, 3]) == [[0], [1], [2, 3]]
    assert core_groups(3, [0, 1]) == [[0], [1], [0]]  # more runs than cores: round-robin
