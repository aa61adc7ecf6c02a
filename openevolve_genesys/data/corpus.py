"""Text corpora as ordered lists of documents, and their train/validation split.

The default corpus is the running interpreter's own standard library: it is on every machine, needs
no download, and is read in sorted path order so that every run (and every worker) sees the same
text. It is small, though: about 12 MB of source, a few million BPE tokens, so long training runs
repeat it for many epochs (``warn_if_repeated`` says so). Bigger corpora come from the user's own text
files or folders, token files, or a Hugging Face dataset.
"""

from __future__ import annotations

import hashlib
import os
import platform
import sysconfig
from dataclasses import dataclass
from pathlib import Path
from typing import Iterable, Sequence

# Separates documents in the token stream; a literal marker inside a text file (the TinyStories
# .txt format) starts a new document.
EOT_TEXT = "<|endoftext|>"

TEXT_SUFFIXES = (".txt", ".md", ".py")

# Test suites are large, repetitive and full of deliberately broken code; the others are not
# standard-library text at all (third-party packages, build artefacts, compiled caches).
_STDLIB_SKIP_DIRS = frozenset({"site-packages", "dist-packages", "__pycache__", "lib-dynload",
                               "test", "tests", "idle_test"})
_STDLIB_SUFFIXES = (".py", ".txt", ".rst")


@dataclass(frozen=True)
class Corpus:
    label: str  # what the data is, for TokenData.description
    documents: tuple[str, ...]


def stdlib_corpus(max_bytes: int) -> Corpus:
    """The standard library's .py sources and shipped .txt/.rst docs, a sorted prefix of max_bytes."""
    root = Path(sysconfig.get_paths()["stdlib"])
    documents = read_documents(_stdlib_files(root), max_bytes)
    if not documents:
        raise ValueError(f"found no standard-library sources under {root}; this interpreter ships "
                         "without them, so give data.source a text file, folder or token file")
    return Corpus(f"stdlib (Python {platform.python_version()})", tuple(documents))


def _stdlib_files(root: Path) -> list[Path]:
    found = []
    for dirpath, dirnames, filenames in os.walk(root):
        # config-3.x-<platform> and _sysconfigdata describe this particular build (install paths,
        # compiler flags); leaving them out keeps the corpus equal across machines with the same Python.
        dirnames[:] = [d for d in dirnames
                       if d not in _STDLIB_SKIP_DIRS and not d.startswith(("config-", "."))]
        for name in filenames:
            if name.endswith(_STDLIB_SUFFIXES) and not name.startswith("_sysconfigdata"):
                found.append(Path(dirpath, name))
    return sorted(found, key=lambda p: p.relative_to(root).as_posix())


def text_corpus(path: Path, max_bytes: int) -> Corpus:
    """A text file (one document, or several separated by <|endoftext|>) or a folder of text files."""
    if path.is_dir():
        files = _text_files(path)
        if not files:
            raise ValueError(f"text folder {path} holds no {'/'.join('*' + s for s in TEXT_SUFFIXES)} "
                             "files; put the training text there, or point data.source at a file")
        what = f"{len(files)} files"
    else:
        files, what = [path], "1 file"
    documents = read_documents(files, max_bytes)
    if not documents:
        raise ValueError(f"text source {path} is empty (no non-blank text in {what}); "
                         "give it some text to train on")
    return Corpus(f"text {path} ({what})", tuple(documents))


def _text_files(folder: Path) -> list[Path]:
    found = []
    for path in folder.rglob("*"):
        rel = path.relative_to(folder)
        hidden = any(part.startswith(".") or part == "__pycache__" for part in rel.parts)
        if not hidden and path.suffix.lower() in TEXT_SUFFIXES and path.is_file():
            found.append(path)
    return sorted(found, key=lambda p: p.relative_to(folder).as_posix())


def read_documents(files: Iterable[Path], max_bytes: int) -> list[str]:
    """Read files in the given order until max_bytes; the file that crosses the cap is cut at a line end.

    Bytes are counted before decoding, so the cap means the same on every platform, and invalid
    UTF-8 is replaced rather than fatal (a few odd bytes should not stop a run).
    """
    documents: list[str] = []
    used = 0
    for path in files:
        raw = path.read_bytes()
        capped = used + len(raw) > max_bytes
        if capped:
            raw = raw[: max_bytes - used]
            raw = raw[: raw.rfind(b"\n") + 1]
        used += len(raw)
        documents.extend(split_on_eot(raw.decode("utf-8", errors="replace")))
        if capped:
            break
    return documents


def split_on_eot(text: str) -> list[str]:
    """One text -> its documents: split at literal end-of-text markers, blank pieces dropped."""
    if EOT_TEXT not in text:
        return [text] if text.strip() else []
    return [part.strip("\n") for part in text.split(EOT_TEXT) if part.strip()]


def split_documents(documents: Sequence[str], val_fraction: float) -> tuple[list[str], list[str]]:
    """Hold out the last documents, about val_fraction of the characters, as whole documents.

    Whole documents keep the validation text unseen (no half of a file in each split). When that
    would overshoot badly (the last document alone is more than twice the target, as with a single
    file or a cap that ends in a big file), the one document that crosses the target is cut at a line
    end instead, so the held-out text is still the corpus's tail and about the size asked for.
    """
    docs = list(documents)
    if not docs:
        raise ValueError("there are no documents to split into train and validation parts")
    total = sum(len(d) for d in docs)
    target = val_fraction * total
    n_val, held = 0, 0
    while n_val < len(docs) and held < target:
        n_val += 1
        held += len(docs[-n_val])
    if held <= 2 * target and n_val < len(docs):
        return docs[:-n_val], docs[-n_val:]
    crossing = docs[-n_val]
    head, tail = _cut_tail(crossing, held - target)
    return docs[:-n_val] + [head], [tail] + docs[len(docs) - n_val + 1:]


def _cut_tail(text: str, at: float) -> tuple[str, str]:
    """Split text at the line end nearest before ``at``, both halves non-blank."""
    at = int(max(1, min(len(text) - 1, round(at))))
    line_end = text.rfind("\n", 0, at)
    cut = line_end + 1 if line_end > 0 and text[line_end + 1:].strip() else at
    head, tail = text[:cut], text[cut:]
    if not head.strip() or not tail.strip():
        raise ValueError(f"the text is too short to split into train and validation parts: {text[:80]!r}")
    return head, tail


def digest_documents(documents: Iterable[str]) -> str:
    """sha256 of the documents, length-prefixed so document boundaries are part of the hash."""
    h = hashlib.sha256()
    for doc in documents:
        raw = doc.encode("utf-8", errors="replace")
        h.update(len(raw).to_bytes(8, "little"))
        h.update(raw)
    return h.hexdigest()
