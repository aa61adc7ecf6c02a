"""Text from a Hugging Face dataset (the PyTorch prototype trained on TinyStories).

``datasets`` is an optional extra, imported only here and only when such a source is asked for, so
the core package never needs it. Saved datasets (``save_to_disk``) and folders of data files load
offline; a hub name is streamed, so only the prefix up to max_corpus_bytes is fetched.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any, Iterable

from openevolve_genesys.data.corpus import Corpus, split_on_eot

INSTALL_HINT = "pip install 'openevolve-genesys[datasets]'"


def hf_corpus(name: str, text_field: str, split: str, max_bytes: int) -> Corpus:
    """Documents from the ``text_field`` column of ``split``, in dataset order, up to max_bytes."""
    if not name:
        raise ValueError("data.source 'hf:' names no dataset; write 'hf:<dataset name or local dir>', "
                         "e.g. 'hf:roneneldan/TinyStories'")
    try:
        import datasets
    except ImportError as err:
        raise ImportError(f"data.source 'hf:{name}' needs the Hugging Face 'datasets' package: "
                          f"{INSTALL_HINT}") from err
    rows = _open_rows(datasets, name, split)
    documents: list[str] = []
    used = 0
    for row in rows:
        if text_field not in row:
            raise ValueError(f"dataset {name!r} has no column {text_field!r} (columns: {sorted(row)}); "
                             "set data.text_field to the column holding the text")
        if row[text_field] is None:  # a missing value in a sparse column is no text, not "None"
            continue
        raw = str(row[text_field]).encode("utf-8", errors="replace")
        if used + len(raw) > max_bytes:
            break
        used += len(raw)
        documents.extend(split_on_eot(raw.decode("utf-8")))
    if not documents:
        raise ValueError(f"dataset {name!r} split {split!r} holds no non-blank text in column "
                         f"{text_field!r} (within the first {max_bytes:,} bytes)")
    return Corpus(f"hf:{name}[{split}] ({len(documents)} documents)", tuple(documents))


def _open_rows(datasets: Any, name: str, split: str) -> Iterable[dict[str, Any]]:
    local = Path(name).expanduser()
    if local.is_dir() and any((local / f).is_file() for f in ("dataset_info.json", "dataset_dict.json")):
        loaded = datasets.load_from_disk(str(local))
        if isinstance(loaded, datasets.DatasetDict):
            if split not in loaded:
                raise ValueError(f"saved dataset {local} has no split {split!r} (splits: {sorted(loaded)}); "
                                 "set data.hf_split")
            loaded = loaded[split]
        return loaded
    if local.exists():
        # A folder or file of parquet/json/csv/text data files.
        return datasets.load_dataset(str(local), split=split)
    if name.startswith(("/", ".", "~")):
        raise FileNotFoundError(f"data.source 'hf:{name}': no such local dataset folder ({local})")
    return datasets.load_dataset(name, split=split, streaming=True)
