import numpy as np
import pytest

datasets = pytest.importorskip("datasets")

from openevolve_genesys.data import DataConfig, load_data  # noqa: E402


@pytest.fixture
def saved(tmp_path):
    """A tiny TinyStories-like dataset saved to local files: the hf path, fully offline."""
    stories = [f"Once upon a time, cat {i} found a red ball and was happy." for i in range(60)]
    splits = datasets.DatasetDict({
        "train": datasets.Dataset.from_dict({"text": stories, "id": list(range(60))}),
        "validation": datasets.Dataset.from_dict({"text": stories[:5], "id": list(range(5))}),
    })
    splits.save_to_disk(str(tmp_path / "stories"))
    return tmp_path / "stories"


def test_saved_dataset_loads_offline(saved, tmp_path):
    data = load_data(DataConfig(source=f"hf:{saved}", cache_dir=str(tmp_path / "c")), 300)
    assert data.description.startswith(f"hf:{saved}[train] (60 documents): ")
    assert int(data.train.max()) < 300 and np.count_nonzero(np.asarray(data.val) == 0) == 3  # 5% of 60
    again = load_data(DataConfig(source=f"hf:{saved}", cache_dir=str(tmp_path / "c2")), 300)
    assert again.fingerprint == data.fingerprint


def test_split_and_column_choices(saved, tmp_path):
    small = load_data(DataConfig(source=f"hf:{saved}", hf_split="validation", cache_dir=str(tmp_path)), 300)
    assert "[validation] (5 documents)" in small.description
    with pytest.raises(ValueError, match="no split 'test'"):
        load_data(DataConfig(source=f"hf:{saved}", hf_split="test", cache_dir=str(tmp_path)), 300)
    with pytest.raises(ValueError, match=r"no column 'story' \(columns: \['id', 'text'\]\)"):
        load_data(DataConfig(source=f"hf:{saved}", text_field="story", cache_dir=str(tmp_path)), 300)


def test_missing_local_dataset_folder(tmp_path):
    with pytest.raises(FileNotFoundError, match="no such local dataset folder"):
        load_data(DataConfig(source=f"hf:{tmp_path / 'absent'}", cache_dir=str(tmp_path)), 300)
