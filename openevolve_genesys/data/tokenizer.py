"""A byte-level BPE tokenizer trained on the training documents, and document encoding.

Byte level means every string is encodable (no unknown token) and decoding gives the exact text
back, which matters for source code, where whitespace carries meaning.
"""

from __future__ import annotations

import logging
from typing import Sequence

import numpy as np
from tokenizers import Tokenizer, decoders, models, pre_tokenizers, trainers

from openevolve_genesys.data.corpus import EOT_TEXT

logger = logging.getLogger("openevolve_genesys.data")

# The end-of-text token plus the 256 byte symbols come before any merge.
MIN_VOCAB_SIZE = 258
_ENCODE_BATCH = 256  # documents per encode call: bounds the memory of intermediate encodings


def train_bpe(documents: Sequence[str], vocab_size: int) -> Tokenizer:
    """Train byte-level BPE with exactly ``vocab_size`` entries (fewer only if the text runs out of pairs)."""
    if vocab_size < MIN_VOCAB_SIZE:
        raise ValueError(f"vocab_size {vocab_size} is too small for a byte-level BPE tokenizer: it needs "
                         f"at least {MIN_VOCAB_SIZE} (256 bytes + end-of-text + merges)")
    tokenizer = Tokenizer(models.BPE())
    tokenizer.pre_tokenizer = pre_tokenizers.ByteLevel(add_prefix_space=False)
    tokenizer.decoder = decoders.ByteLevel()
    trainer = trainers.BpeTrainer(
        vocab_size=vocab_size,
        special_tokens=[EOT_TEXT],
        initial_alphabet=pre_tokenizers.ByteLevel.alphabet(),
        show_progress=False,
    )
    tokenizer.train_from_iterator(documents, trainer=trainer, length=len(documents))
    trained = tokenizer.get_vocab_size()
    if trained < vocab_size:
        logger.warning("the training text supports only %d BPE tokens, fewer than vocab_size %d; "
                       "the model keeps %d embedding rows, the rest unused", trained, vocab_size, vocab_size)
    return tokenizer


def eot_id(tokenizer: Tokenizer) -> int:
    token_id = tokenizer.token_to_id(EOT_TEXT)
    if token_id is None:
        raise ValueError(f"tokenizer has no {EOT_TEXT!r} token; it was not trained by this package")
    return token_id


def stream_dtype(vocab_size: int) -> np.dtype:
    """uint16 while every id fits (halves memory and disk), else uint32."""
    return np.dtype(np.uint16) if vocab_size <= 1 << 16 else np.dtype(np.uint32)


def encode_documents(tokenizer: Tokenizer, documents: Sequence[str], dtype: np.dtype) -> np.ndarray:
    """One token stream: each document's ids followed by the end-of-text id."""
    end = np.array([eot_id(tokenizer)], dtype=dtype)
    pieces: list[np.ndarray] = []
    for start in range(0, len(documents), _ENCODE_BATCH):
        batch = list(documents[start:start + _ENCODE_BATCH])
        for encoding in tokenizer.encode_batch_fast(batch, add_special_tokens=False):
            pieces.append(np.asarray(encoding.ids, dtype=dtype))
            pieces.append(end)
    if not pieces:
        return np.zeros(0, dtype=dtype)
    return np.concatenate(pieces)
