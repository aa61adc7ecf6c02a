import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest
from tokenizers import Tokenizer

from openevolve_genesys.data import DataConfig, load_data, load as load_module
from openevolve_genesys.data.cache import new_entry_dir, publish_entry

SMALL = 300_000
VOCAB = 512


@pytest.fixture(scope="module")
def stdlib_cache(tmp_path_factory):
    """One cold build of the small stdlib corpus, shared by the tests that only read it."""
    cache = tmp_path_factory.mktemp("cache")
    return cache, load_data(DataConfig(max_corpus_bytes=SMALL, cache_dir=str(cache)), VOCAB)


def test_stdlib_tokens_are_in_range_and_described(stdlib_cache):
    _, data = stdlib_cache
    assert data.vocab_size == VOCAB and len(data.fingerprint) == 16
    assert data.train.dtype == np.uint16 and int(data.train.max()) < VOCAB and int(data.val.max()) < VOCAB
    assert len(data.train) > 10 * len(data.val) > 0
    assert data.description.startswith(f"stdlib (Python {sys.version.split()[0]}): ")
    assert "train tokens" in data.description and f"vocab {VOCAB}" in data.description
    batch = data.sample_batches(np.random.default_rng(0), 2, 4, 32)
    assert batch.shape == (2, 4, 33) and batch.dtype == np.int32
    assert data.eval_batches(4, 32, 4 * 32 * 3).shape == (3, 4, 33)


def test_val_stream_is_the_held_out_tail_and_decodes_back_to_text(stdlib_cache):
    _, data = stdlib_cache
    tokenizer = Tokenizer.from_file(str(data.tokenizer_path))
    assert tokenizer.get_vocab_size() == VOCAB
    text = tokenizer.decode(np.asarray(data.val).tolist(), skip_special_tokens=False)
    assert text.endswith("<|endoftext|>") and len(text) > 5_000


def test_same_fingerprint_cold_warm_and_in_another_process(stdlib_cache, tmp_path, monkeypatch):
    cache, first = stdlib_cache
    config = DataConfig(max_corpus_bytes=SMALL, cache_dir=str(tmp_path))
    assert load_data(config, VOCAB).fingerprint == first.fingerprint  # a second cold build

    script = ("from openevolve_genesys.data import DataConfig, load_data; "
              f"print(load_data(DataConfig(max_corpus_bytes={SMALL}, cache_dir={str(tmp_path / 'p')!r}), "
              f"{VOCAB}).fingerprint)")
    out = subprocess.run([sys.executable, "-c", script], capture_output=True, text=True, check=True,
                         cwd=Path(__file__).parents[2])
    assert out.stdout.strip() == first.fingerprint

    def no_training(*_args):
        raise AssertionError("a warm cache must not retrain the tokenizer")

    monkeypatch.setattr(load_module, "train_bpe", no_training)
    warm = load_data(DataConfig(max_corpus_bytes=SMALL, cache_dir=str(cache)), VOCAB)
    assert warm.fingerprint == first.fingerprint and isinstance(warm.train, np.memmap)


def test_fingerprint_follows_vocab_and_split(stdlib_cache, tmp_path):
    _, first = stdlib_cache
    other_split = load_data(DataConfig(max_corpus_bytes=SMALL, val_fraction=0.1, cache_dir=str(tmp_path)), VOCAB)
    assert other_split.fingerprint != first.fingerprint
    assert len(other_split.val) > len(first.val)
    other_vocab = load_data(DataConfig(max_corpus_bytes=SMALL, cache_dir=str(tmp_path)), VOCAB + 64)
    assert other_vocab.fingerprint != first.fingerprint and other_vocab.vocab_size == VOCAB + 64


def test_broken_cache_entry_is_rebuilt(tmp_path):
    config = DataConfig(max_corpus_bytes=50_000, cache_dir=str(tmp_path))
    first = load_data(config, 300)
    (entry,) = (tmp_path / "bpe").iterdir()
    (entry / "train.npy").write_bytes(b"garbage")
    assert load_data(config, 300).fingerprint == first.fingerprint


def test_a_writer_that_loses_the_race_keeps_the_published_entry(tmp_path):
    final = tmp_path / "entry"
    for content in ("winner", "loser"):
        tmp = new_entry_dir(tmp_path, "entry")
        (tmp / "file").write_text(content)
        publish_entry(tmp, final)
    assert (final / "file").read_text() == "winner" and sorted(p.name for p in tmp_path.iterdir()) == ["entry"]


def test_text_file_and_folder_sources(tmp_path):
    stories = "".join(f"Story {i}: the cat sat on mat number {i}.\n<|endoftext|>\n" for i in range(200))
    (tmp_path / "stories.txt").write_text(stories)
    data = load_data(DataConfig(source=str(tmp_path / "stories.txt"), cache_dir=str(tmp_path / "c")), 300)
    assert data.description.startswith(f"text {tmp_path / 'stories.txt'} (1 file): ")
    assert int(data.train.max()) < 300 and np.count_nonzero(np.asarray(data.val) == 0) == 10  # 10 held-out stories

    folder = tmp_path / "notes"
    folder.mkdir()
    for i in range(5):
        (folder / f"n{i}.md").write_text(f"# Note {i}\n" + "Some words about scaling laws.\n" * 20)
    data = load_data(DataConfig(source=str(folder), cache_dir=str(tmp_path / "c")), 300)
    assert "(5 files)" in data.description and len(data.val) > 0


@pytest.mark.parametrize("source, error, match", [
    ("no/such/dir", FileNotFoundError, "accepted forms"),
    ("stdib", FileNotFoundError, "did you mean 'stdlib'"),
])
def test_missing_sources_name_the_path_and_the_accepted_forms(tmp_path, monkeypatch, source, error, match):
    monkeypatch.chdir(tmp_path)
    with pytest.raises(error, match=match) as err:
        load_data(DataConfig(source=source, cache_dir=str(tmp_path)), 512)
    assert repr(source) in str(err.value)


def test_empty_sources_say_so(tmp_path):
    (tmp_path / "blank.txt").write_text("  \n\n")
    with pytest.raises(ValueError, match="empty"):
        load_data(DataConfig(source=str(tmp_path / "blank.txt"), cache_dir=str(tmp_path)), 512)
    (tmp_path / "nothing").mkdir()
    (tmp_path / "nothing" / "data.csv").write_text("a,b\n")
    with pytest.raises(ValueError, match=r"holds no \*\.txt/\*\.md/\*\.py files"):
        load_data(DataConfig(source=str(tmp_path / "nothing"), cache_dir=str(tmp_path)), 512)


def test_vocab_too_small_for_text(tmp_path):
    with pytest.raises(ValueError, match="too small"):
        load_data(DataConfig(max_corpus_bytes=10_000, cache_dir=str(tmp_path)), 100)


def test_hf_source_without_datasets_tells_how_to_install(tmp_path, monkeypatch):
    monkeypatch.setitem(sys.modules, "datasets", None)  # as if the extra were not installed
    with pytest.raises(ImportError, match=r"pip install 'openevolve-genesys\[datasets\]'"):
        load_data(DataConfig(source="hf:roneneldan/TinyStories", cache_dir=str(tmp_path)), 512)


def test_config_from_dict_is_strict():
    config = DataConfig.from_dict({"source": "x.bin", "val_fraction": 0.1})
    assert config.source == "x.bin" and config.val_fraction == 0.1 and config.hf_split == "train"
    with pytest.raises(ValueError, match=r"unknown key 'val_fracton' in data; did you mean 'val_fraction'\?"):
        DataConfig.from_dict({"val_fracton": 0.1})
    with pytest.raises(ValueError, match="between 0 and 1"):
        DataConfig.from_dict({"val_fraction": 1.0})
    with pytest.raises(ValueError, match="max_corpus_bytes"):
        DataConfig(max_corpus_bytes=0)


def test_cache_dir_defaults(monkeypatch, tmp_path):
    assert DataConfig(cache_dir=str(tmp_path)).resolved_cache_dir() == tmp_path
    monkeypatch.setenv("GENESYS_CACHE_DIR", str(tmp_path / "env"))
    assert DataConfig().resolved_cache_dir() == tmp_path / "env"
    monkeypatch.delenv("GENESYS_CACHE_DIR")
    assert DataConfig().resolved_cache_dir() == Path.home() / ".cache" / "openevolve-genesys"
