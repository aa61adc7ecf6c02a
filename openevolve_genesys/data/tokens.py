"""Token streams ready for training: batch sampling, evaluation windows, epochs, and fingerprints."""

from __future__ import annotations

import hashlib
import logging
from dataclasses import dataclass
from pathlib import Path
from typing import Iterable

import numpy as np

logger = logging.getLogger("openevolve_genesys.data")

_HASH_CHUNK = 1 << 22  # tokens per step when hashing or scanning a (possibly memory-mapped) stream


@dataclass
class TokenData:
    train: np.ndarray  # 1-D integer token ids, possibly a read-only memmap
    val: np.ndarray
    vocab_size: int
    fingerprint: str  # identifies the exact token streams (and tokenizer); recorded with every result
    description: str
    tokenizer_path: Path | None = None  # tokenizer.json of a text source, for decoding samples

    def __post_init__(self) -> None:
        for name in ("train", "val"):
            stream = getattr(self, name)
            if stream.ndim != 1 or not np.issubdtype(stream.dtype, np.integer):
                raise ValueError(f"TokenData.{name} must be a 1-D integer array, got {stream.dtype} "
                                 f"of shape {stream.shape}")

    def sample_batches(self, rng: np.random.Generator, n_steps: int, batch_size: int,
                       seq_len: int) -> np.ndarray:
        """int32 [n_steps, batch_size, seq_len + 1]: random windows of the train stream.

        Inputs are ``[..., :-1]`` and targets ``[..., 1:]``. Windows may cross document boundaries;
        the end-of-text token between documents tells the model where a new one begins.
        """
        window = seq_len + 1
        if len(self.train) < window:
            raise ValueError(f"the train stream has {len(self.train)} tokens, fewer than one window of "
                             f"seq_len + 1 = {window}; use a larger source or a shorter seq_len")
        starts = rng.integers(0, len(self.train) - window + 1, size=(n_steps, batch_size))
        return self._windows(self.train, starts, window)

    def eval_batches(self, batch_size: int, seq_len: int, max_tokens: int) -> np.ndarray:
        """int32 [n_batches, batch_size, seq_len + 1]: fixed windows of the val stream.

        Windows sit on a grid of stride seq_len, so consecutive windows share only their boundary
        token and every target is predicted at most once; the chosen grid cells are spread evenly
        over the whole stream, so a small max_tokens still samples all of the held-out text. As many
        whole batches as fit in max_tokens (counted as predicted tokens), at least one.
        """
        window = seq_len + 1
        if len(self.val) < window:
            raise ValueError(f"the validation stream has {len(self.val)} tokens, fewer than one window "
                             f"of seq_len + 1 = {window}; raise data.val_fraction, use a larger source "
                             "or a shorter seq_len")
        cells = (len(self.val) - 1) // seq_len
        wanted = max(1, max_tokens // (batch_size * seq_len))
        n_batches = max(1, min(wanted, cells // batch_size))
        n = n_batches * batch_size
        if cells >= n:
            starts = (np.arange(n, dtype=np.int64) * cells // n) * seq_len
        else:
            # Fewer whole windows than one batch: the only way to fill it is to let windows overlap.
            logger.warning("the validation stream (%d tokens) holds only %d windows of %d tokens, fewer "
                           "than one batch of %d; evaluation windows overlap", len(self.val), cells,
                           window, batch_size)
            starts = np.linspace(0, len(self.val) - window, n).round().astype(np.int64)
        return self._windows(self.val, starts.reshape(n_batches, batch_size), window)

    @staticmethod
    def _windows(stream: np.ndarray, starts: np.ndarray, window: int) -> np.ndarray:
        index = starts[..., None] + np.arange(window, dtype=np.int64)
        return np.asarray(stream[index], dtype=np.int32)

    def epochs(self, tokens: int) -> float:
        """How many passes over the train stream ``tokens`` training tokens amount to."""
        return tokens / len(self.train)


def warn_if_repeated(data: TokenData, tokens_needed: int, max_epochs: float = 4.0) -> str | None:
    """Warn (and return the text) when training would repeat the train stream more than max_epochs times.

    Beyond a few epochs a small model starts to memorise, so losses stop measuring how a design
    scales; the default standard-library corpus holds only a few million tokens.
    """
    epochs = data.epochs(tokens_needed)
    if epochs <= max_epochs:
        return None
    message = (f"training needs {tokens_needed:,} tokens, {epochs:.1f} epochs of {data.description} "
               f"(more than {max_epochs:g}): the data repeats and losses drift toward memorisation. "
               "The standard-library corpus holds only a few million tokens; for long runs set "
               "data.source to a larger text folder, a token file or 'hf:<dataset>'")
    logger.warning(message)
    return message


def hash_stream(stream: np.ndarray) -> tuple[str, int, int]:
    """(sha256 hex, min id, max id) of a token stream, read in chunks so memmaps stay cheap.

    Ids are hashed as little-endian uint32, so the same tokens give the same hash whatever the
    container's dtype (.bin uint16, .npy int64, ...).
    """
    h = hashlib.sha256()
    lo, hi = np.iinfo(np.int64).max, np.iinfo(np.int64).min
    for start in range(0, len(stream), _HASH_CHUNK):
        chunk = np.asarray(stream[start:start + _HASH_CHUNK])
        lo, hi = min(lo, int(chunk.min())), max(hi, int(chunk.max()))
        # Negative or huge ids would wrap here; the callers reject them by the min/max returned.
        h.update(chunk.astype("<u4", copy=False).tobytes())
    return h.hexdigest(), lo, hi


def combine_fingerprint(parts: Iterable[str]) -> str:
    """The 16-hex-digit fingerprint of several labelled digests."""
    return hashlib.sha256("\n".join(parts).encode()).hexdigest()[:16]


def format_tokens(n: int) -> str:
    """5123456 -> '5.1M', 270000 -> '0.27M', small counts as plain numbers."""
    if n >= 1_000_000:
        return f"{n / 1e6:.1f}M"
    if n >= 10_000:
        return f"{n / 1e6:.2f}M"
    return str(n)


def describe(label: str, train: np.ndarray, val: np.ndarray, vocab_size: int) -> str:
    return (f"{label}: {format_tokens(len(train))} train tokens, {format_tokens(len(val))} val tokens, "
            f"vocab {vocab_size}")
