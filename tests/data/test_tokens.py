import logging

import numpy as np
import pytest

from openevolve_genesys.data import TokenData, warn_if_repeated
from openevolve_genesys.data.tokens import format_tokens, hash_stream


def _data(n_train: int = 10_000, n_val: int = 2_000) -> TokenData:
    # Consecutive ids make every window checkable: a true window of the stream is a run of +1 steps.
    train = np.arange(n_train, dtype=np.int64) % 50_000
    val = np.arange(n_val, dtype=np.int64) + 100_000
    return TokenData(train=train, val=val, vocab_size=200_000, fingerprint="f", description="test data")


def test_sample_batches_are_int32_windows_of_the_train_stream():
    data = _data()
    batches = data.sample_batches(np.random.default_rng(0), n_steps=3, batch_size=4, seq_len=16)
    assert batches.shape == (3, 4, 17) and batches.dtype == np.int32
    assert np.all(np.diff(batches, axis=-1) == 1)
    assert batches.min() >= 0 and batches.max() < len(data.train)
    again = data.sample_batches(np.random.default_rng(0), n_steps=3, batch_size=4, seq_len=16)
    np.testing.assert_array_equal(batches, again)
    other = data.sample_batches(np.random.default_rng(1), n_steps=3, batch_size=4, seq_len=16)
    assert not np.array_equal(batches, other)


def test_sample_batches_reach_both_ends_and_reject_a_too_short_stream():
    data = _data(n_train=20)
    batches = data.sample_batches(np.random.default_rng(0), n_steps=200, batch_size=8, seq_len=9)
    assert batches[..., 0].min() == 0 and batches[..., -1].max() == 19
    with pytest.raises(ValueError, match="fewer than one window"):
        data.sample_batches(np.random.default_rng(0), 1, 1, seq_len=20)


def test_eval_batches_are_fixed_disjoint_windows_spread_over_val():
    data = _data(n_val=2_000)
    batches = data.eval_batches(batch_size=4, seq_len=16, max_tokens=8 * 16)
    assert batches.shape == (2, 4, 17) and batches.dtype == np.int32
    np.testing.assert_array_equal(batches, data.eval_batches(4, 16, 8 * 16))
    assert np.all(np.diff(batches, axis=-1) == 1)
    targets = batches[..., 1:].reshape(-1)
    assert len(np.unique(targets)) == targets.size  # no target predicted twice
    assert batches.max() > 100_000 + 1_500  # spread to the end, not just a prefix


def test_eval_batches_count_whole_batches_within_the_budget_and_the_stream():
    data = _data(n_val=2_000)
    assert data.eval_batches(4, 16, max_tokens=5 * 4 * 16 + 10).shape[0] == 5
    assert data.eval_batches(4, 16, max_tokens=1).shape[0] == 1  # at least one batch
    assert data.eval_batches(4, 16, max_tokens=10**9).shape[0] == (1_999 // 16) // 4  # capped by val


def test_eval_batches_of_a_short_val_stream(caplog):
    data = _data(n_val=40)
    with caplog.at_level(logging.WARNING, logger="openevolve_genesys.data"):
        batches = data.eval_batches(batch_size=8, seq_len=16, max_tokens=1_000)
    assert batches.shape == (1, 8, 17) and "overlap" in caplog.text
    assert batches[0, 0, 0] == 100_000 and batches[0, -1, -1] == 100_039
    with pytest.raises(ValueError, match="validation stream has 40 tokens"):
        data.eval_batches(batch_size=8, seq_len=40, max_tokens=1_000)


def test_epochs_and_repetition_warning(caplog):
    data = _data(n_train=1_000)
    assert data.epochs(2_500) == 2.5
    assert warn_if_repeated(data, tokens_needed=4_000) is None
    with caplog.at_level(logging.WARNING, logger="openevolve_genesys.data"):
        message = warn_if_repeated(data, tokens_needed=10_000)
    assert message is not None and "10.0 epochs" in message and "test data" in message
    assert message in caplog.text
    assert warn_if_repeated(data, tokens_needed=10_000, max_epochs=20) is None


def test_token_data_rejects_non_token_arrays():
    with pytest.raises(ValueError, match="1-D integer"):
        TokenData(train=np.zeros((2, 3), np.int32), val=np.zeros(3, np.int32), vocab_size=4,
                  fingerprint="f", description="d")
    with pytest.raises(ValueError, match="1-D integer"):
        TokenData(train=np.zeros(3, np.int32), val=np.zeros(3, np.float32), vocab_size=4,
                  fingerprint="f", description="d")


def test_stream_hash_ignores_the_container_dtype_and_reports_the_id_range():
    ids = np.array([3, 1, 4, 1, 5, 9, 2, 6], dtype=np.int64)
    assert hash_stream(ids) == hash_stream(ids.astype(np.uint16))
    digest, lo, hi = hash_stream(ids)
    assert (lo, hi) == (1, 9) and digest != hash_stream(ids[::-1])[0]


def test_token_counts_read_like_the_description():
    assert [format_tokens(n) for n in (5_123_456, 270_000, 1234)] == ["5.1M", "0.27M", "1234"]
