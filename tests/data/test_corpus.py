import sysconfig
from pathlib import Path

import pytest

from openevolve_genesys.data.corpus import (
    EOT_TEXT, digest_documents, read_documents, split_documents, split_on_eot, stdlib_corpus, text_corpus,
)
from openevolve_genesys.data.corpus import _stdlib_files


def test_stdlib_files_are_sorted_sources_without_tests_or_installed_packages():
    root = Path(sysconfig.get_paths()["stdlib"])
    files = _stdlib_files(root)
    rel = [f.relative_to(root).as_posix() for f in files]
    assert rel == sorted(rel) and "__future__.py" in rel
    assert "os.py" in rel and "pydoc_data/topics.py" in rel
    parts = {p for r in rel for p in r.split("/")[:-1]}
    assert not parts & {"test", "tests", "idle_test", "site-packages", "__pycache__"}
    assert all(r.endswith((".py", ".txt", ".rst")) for r in rel)


def test_stdlib_corpus_is_a_deterministic_capped_prefix():
    small = stdlib_corpus(200_000)
    assert small.label.startswith("stdlib (Python ")
    assert small == stdlib_corpus(200_000)
    size = sum(len(d.encode()) for d in small.documents)
    assert 150_000 < size <= 200_000
    bigger = stdlib_corpus(400_000)
    assert bigger.documents[: len(small.documents) - 1] == small.documents[:-1]


def test_cap_cuts_the_last_file_at_a_line_end(tmp_path):
    (tmp_path / "a.txt").write_text("one\ntwo\nthree\n")
    (tmp_path / "b.txt").write_text("never read\n")
    assert read_documents([tmp_path / "a.txt", tmp_path / "b.txt"], max_bytes=10) == ["one\ntwo\n"]


def test_text_folder_reads_text_files_in_sorted_order(tmp_path):
    (tmp_path / "b.md").write_text("bee")
    (tmp_path / "a.txt").write_text("ay")
    (tmp_path / "sub").mkdir()
    (tmp_path / "sub" / "c.py").write_text("print('c')")
    (tmp_path / "skip.csv").write_text("x,y")
    (tmp_path / ".hidden").mkdir()
    (tmp_path / ".hidden" / "h.txt").write_text("hidden")
    corpus = text_corpus(tmp_path, max_bytes=10_000)
    assert corpus.documents == ("ay", "bee", "print('c')")
    assert "(3 files)" in corpus.label


def test_end_of_text_markers_separate_documents():
    assert split_on_eot(f"Once.\n{EOT_TEXT}\nTwice.\n{EOT_TEXT}\n") == ["Once.", "Twice."]
    assert split_on_eot("plain text\n") == ["plain text\n"]
    assert split_on_eot("  \n") == []


def test_split_holds_out_whole_trailing_documents():
    docs = [f"doc{i}\n" * 10 for i in range(40)]
    train, val = split_documents(docs, 0.1)
    assert train + val == docs and len(val) == 4


def test_split_cuts_a_single_or_oversized_last_document_at_a_line_end():
    text = "".join(f"line {i}\n" for i in range(100))
    train, val = split_documents([text], 0.1)
    assert train[0] + val[0] == text and train[0].endswith("\n")
    assert 0.05 < len(val[0]) / len(text) < 0.15
    train, val = split_documents(["small\n", text], 0.1)
    assert train[0] == "small\n" and train[1] + val[0] == text and len(val) == 1


def test_split_of_untokenisable_text_is_an_error():
    with pytest.raises(ValueError, match="too short"):
        split_documents(["x"], 0.1)
    with pytest.raises(ValueError, match="no documents"):
        split_documents([], 0.1)


def test_digest_sees_document_boundaries():
    assert digest_documents(["ab", "c"]) != digest_documents(["a", "bc"])
    assert digest_documents(["ab", "c"]) == digest_documents(("ab", "c"))
