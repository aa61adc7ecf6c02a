import logging

import numpy as np
import pytest

from openevolve_genesys.data.corpus import EOT_TEXT, stdlib_corpus
from openevolve_genesys.data.tokenizer import encode_documents, eot_id, stream_dtype, train_bpe


@pytest.fixture(scope="module")
def documents():
    return list(stdlib_corpus(150_000).documents)


def test_bpe_has_exactly_the_vocab_size_and_round_trips_code(documents):
    tokenizer = train_bpe(documents, 400)
    assert tokenizer.get_vocab_size() == 400 and eot_id(tokenizer) == 0
    ids = encode_documents(tokenizer, documents[:3], np.dtype(np.uint16))
    assert ids.dtype == np.uint16 and ids.max() < 400
    assert np.count_nonzero(ids == 0) == 3 and ids[-1] == 0  # one end-of-text after each document
    assert tokenizer.decode(ids.tolist(), skip_special_tokens=False) == "".join(d + EOT_TEXT for d in documents[:3])


def test_bpe_training_is_deterministic(documents):
    assert train_bpe(documents, 300).to_str() == train_bpe(documents, 300).to_str()


def test_short_text_gives_a_smaller_vocab_with_a_warning(caplog):
    with caplog.at_level(logging.WARNING, logger="openevolve_genesys.data"):
        tokenizer = train_bpe(["ab ab ab"], 1000)
    assert tokenizer.get_vocab_size() < 1000 and "fewer than vocab_size 1000" in caplog.text


def test_vocab_too_small_for_bytes_is_an_error():
    with pytest.raises(ValueError, match="at least 258"):
        train_bpe(["text"], 100)


def test_stream_dtype_fits_every_id():
    assert stream_dtype(65_536) == np.uint16 and stream_dtype(65_537) == np.uint32
