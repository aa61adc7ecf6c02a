"""load_data: from a DataConfig to TokenData, training and caching a tokenizer for text sources.

A text source is tokenised once per (documents, split, vocab size): the tokenizer and both token
streams go into one cache entry keyed by a hash of exactly those inputs, so a second load, in this
process or any other, only hashes the text and memory-maps two .npy files.
"""

from __future__ import annotations

import difflib
import hashlib
import json
import logging
import shutil
import time
from pathlib import Path

import numpy as np
import tokenizers

from openevolve_genesys.data.cache import discard_entry, new_entry_dir, publish_entry
from openevolve_genesys.data.config import HF_PREFIX, SOURCE_FORMS, STDLIB, DataConfig
from openevolve_genesys.data.corpus import Corpus, digest_documents, split_documents, stdlib_corpus, text_corpus
from openevolve_genesys.data.hf import hf_corpus
from openevolve_genesys.data.token_files import is_token_source, load_token_source
from openevolve_genesys.data.tokenizer import MIN_VOCAB_SIZE, encode_documents, stream_dtype, train_bpe
from openevolve_genesys.data.tokens import TokenData, combine_fingerprint, describe, hash_stream

logger = logging.getLogger("openevolve_genesys.data")

# Bump when the tokenizer recipe or the stream layout changes, so old cache entries are not reused.
_FORMAT_VERSION = 1


def load_data(config: DataConfig, vocab_size: int) -> TokenData:
    """Token streams for ``config.source`` with ids below ``vocab_size`` (see DataConfig for the forms)."""
    source = config.source.strip()
    cache_root = config.resolved_cache_dir()
    if source == STDLIB:
        return _from_corpus(stdlib_corpus(config.max_corpus_bytes), vocab_size, config.val_fraction, cache_root)
    if source.startswith(HF_PREFIX):
        corpus = hf_corpus(source[len(HF_PREFIX):].strip(), config.text_field, config.hf_split,
                           config.max_corpus_bytes)
        return _from_corpus(corpus, vocab_size, config.val_fraction, cache_root)
    path = Path(source).expanduser()
    if not path.exists():
        hint = " (did you mean 'stdlib'?)" if difflib.get_close_matches(source, [STDLIB], n=1) else ""
        raise FileNotFoundError(f"data.source {source!r}: no such file or folder ({path.absolute()}){hint}; "
                                f"accepted forms: {SOURCE_FORMS}")
    if is_token_source(path):
        return load_token_source(path, vocab_size, config.val_fraction, cache_root)
    return _from_corpus(text_corpus(path, config.max_corpus_bytes), vocab_size, config.val_fraction, cache_root)


def _from_corpus(corpus: Corpus, vocab_size: int, val_fraction: float, cache_root: Path) -> TokenData:
    if vocab_size < MIN_VOCAB_SIZE:
        raise ValueError(f"vocab_size {vocab_size} is too small for a byte-level BPE tokenizer: it needs "
                         f"at least {MIN_VOCAB_SIZE} (256 bytes + end-of-text + merges)")
    train_docs, val_docs = split_documents(corpus.documents, val_fraction)
    key_parts = [f"format={_FORMAT_VERSION}", f"tokenizers={tokenizers.__version__}", f"vocab={vocab_size}",
                 f"train={digest_documents(train_docs)}", f"val={digest_documents(val_docs)}"]
    entry = cache_root / "bpe" / hashlib.sha256("\n".join(key_parts).encode()).hexdigest()[:32]
    cached = _read_entry(entry)
    if cached is None:
        _build_entry(entry, train_docs, val_docs, vocab_size, corpus.label)
        cached = _read_entry(entry)
        if cached is None:
            raise RuntimeError(f"the tokenizer cache entry {entry} could not be read back after writing it; "
                               "check that the cache folder is writable (data.cache_dir or $GENESYS_CACHE_DIR)")
    train, val, tokenizer_json = cached
    fingerprint = combine_fingerprint([
        "bpe", f"tokenizer={hashlib.sha256(tokenizer_json.encode()).hexdigest()}",
        f"train={hash_stream(train)[0]}", f"val={hash_stream(val)[0]}",
    ])
    return TokenData(train=train, val=val, vocab_size=vocab_size, fingerprint=fingerprint,
                     description=describe(corpus.label, train, val, vocab_size),
                     tokenizer_path=entry / "tokenizer.json")


def _read_entry(entry: Path) -> tuple[np.ndarray, np.ndarray, str] | None:
    if not entry.is_dir():
        return None
    try:
        tokenizer_json = (entry / "tokenizer.json").read_text(encoding="utf-8")
        train = np.load(entry / "train.npy", mmap_mode="r", allow_pickle=False)
        val = np.load(entry / "val.npy", mmap_mode="r", allow_pickle=False)
    except (OSError, ValueError, EOFError) as err:
        # Entries are published whole, so this is outside damage (a disk error, a manual edit).
        logger.warning("discarding the broken data cache entry %s (%s); rebuilding it", entry, err)
        discard_entry(entry)
        return None
    return train, val, tokenizer_json


def _build_entry(entry: Path, train_docs: list[str], val_docs: list[str], vocab_size: int, label: str) -> None:
    start = time.perf_counter()
    tmp = new_entry_dir(entry.parent, entry.name)
    try:
        # The tokenizer sees only the training documents: validation text stays unseen by every
        # part of the pipeline, merges included.
        tokenizer = train_bpe(train_docs, vocab_size)
        dtype = stream_dtype(vocab_size)
        train = encode_documents(tokenizer, train_docs, dtype)
        val = encode_documents(tokenizer, val_docs, dtype)
        (tmp / "tokenizer.json").write_text(tokenizer.to_str(), encoding="utf-8")
        np.save(tmp / "train.npy", train)
        np.save(tmp / "val.npy", val)
        seconds = time.perf_counter() - start
        meta = {"source": label, "vocab_size": vocab_size, "train_documents": len(train_docs),
                "val_documents": len(val_docs), "train_tokens": int(len(train)), "val_tokens": int(len(val)),
                "build_seconds": round(seconds, 3)}
        (tmp / "meta.json").write_text(json.dumps(meta, indent=1), encoding="utf-8")
        publish_entry(tmp, entry)
    except BaseException:
        shutil.rmtree(tmp, ignore_errors=True)
        raise
    logger.info("tokenised %s with a %d-token BPE in %.1f s: %d train + %d val tokens (cached in %s)",
                label, vocab_size, seconds, len(train), len(val), entry)
