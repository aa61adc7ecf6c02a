import os

import numpy as np
import pytest

from openevolve_genesys.data import DataConfig, load_data
from openevolve_genesys.data import token_files


def _load(source, cache, vocab_size=1000, **kwargs):
    return load_data(DataConfig(source=str(source), cache_dir=str(cache), **kwargs), vocab_size)


@pytest.fixture
def stream():
    return (np.arange(5_000) * 7919 % 997).astype(np.int64)


def test_npy_file_is_memory_mapped_and_split_by_val_fraction(tmp_path, stream):
    np.save(tmp_path / "tokens.npy", stream)
    data = _load(tmp_path / "tokens.npy", tmp_path / "cache", val_fraction=0.1)
    assert isinstance(data.train, np.memmap) and data.vocab_size == 1000
    assert (len(data.train), len(data.val)) == (4_500, 500)
    np.testing.assert_array_equal(np.concatenate([data.train, data.val]), stream)
    assert "tokens" in data.description and "vocab 1000" in data.description and data.tokenizer_path is None
    batch = data.sample_batches(np.random.default_rng(0), 2, 3, 8)
    assert batch.shape == (2, 3, 9) and batch.dtype == np.int32 and batch.max() < 1000


def test_bin_file_gives_the_same_tokens_and_fingerprint_as_npy(tmp_path, stream):
    np.save(tmp_path / "tokens.npy", stream)
    stream.astype(np.uint16).tofile(tmp_path / "tokens.bin")
    from_npy = _load(tmp_path / "tokens.npy", tmp_path / "cache")
    from_bin = _load(tmp_path / "tokens.bin", tmp_path / "cache")
    np.testing.assert_array_equal(from_bin.train, from_npy.train)
    assert from_bin.fingerprint == from_npy.fingerprint
    assert _load(tmp_path / "tokens.bin", tmp_path / "cache", val_fraction=0.2).fingerprint != from_bin.fingerprint
    assert _load(tmp_path / "tokens.bin", tmp_path / "cache", vocab_size=2000).fingerprint != from_bin.fingerprint


def test_nanogpt_folder_uses_train_and_val_files(tmp_path, stream):
    stream[:4000].astype(np.uint16).tofile(tmp_path / "train.bin")
    stream[4000:].astype(np.uint16).tofile(tmp_path / "val.bin")
    data = _load(tmp_path, tmp_path / "cache")
    assert (len(data.train), len(data.val)) == (4000, 1000)
    np.testing.assert_array_equal(data.val, stream[4000:])


def test_scan_is_cached_and_redone_when_the_file_changes(tmp_path, stream, monkeypatch):
    path = tmp_path / "tokens.npy"
    np.save(path, stream)
    first = _load(path, tmp_path / "cache")

    def no_rescan(_stream):
        raise AssertionError("the cached scan should have been used")

    monkeypatch.setattr(token_files, "hash_stream", no_rescan)
    assert _load(path, tmp_path / "cache").fingerprint == first.fingerprint
    monkeypatch.undo()
    np.save(path, stream[::-1].copy())
    later = path.stat().st_mtime_ns + 10**9  # same size: only the modification time tells them apart
    os.utime(path, ns=(later, later))
    assert _load(path, tmp_path / "cache").fingerprint != first.fingerprint


def test_token_id_out_of_range_names_the_file_and_the_max_id(tmp_path, stream):
    path = tmp_path / "tokens.bin"
    stream.astype(np.uint16).tofile(path)
    with pytest.raises(ValueError) as err:
        _load(path, tmp_path / "cache", vocab_size=500)
    assert str(path) in str(err.value) and "996" in str(err.value)


@pytest.mark.parametrize("name, payload, match", [
    ("odd.bin", b"\x01\x00\x02", "not a whole number of tokens"),
    ("empty.bin", b"", "empty"),
    ("broken.npy", b"not numpy", "not a readable .npy"),
])
def test_bad_token_files(tmp_path, name, payload, match):
    (tmp_path / name).write_bytes(payload)
    with pytest.raises(ValueError, match=match):
        _load(tmp_path / name, tmp_path / "cache")


@pytest.mark.parametrize("array, match", [
    (np.zeros((4, 4), np.int32), "1-D integer"),
    (np.zeros(8, np.float32), "1-D integer"),
    (np.zeros(0, np.int32), "empty"),
    (np.array([1, -2, 3], np.int32), "negative"),
])
def test_bad_npy_contents(tmp_path, array, match):
    np.save(tmp_path / "t.npy", array)
    with pytest.raises(ValueError, match=match):
        _load(tmp_path / "t.npy", tmp_path / "cache")


def test_token_folder_missing_its_val_file(tmp_path, stream):
    stream.astype(np.uint16).tofile(tmp_path / "train.bin")
    with pytest.raises(ValueError, match="no val.bin or val.npy"):
        _load(tmp_path, tmp_path / "cache")
