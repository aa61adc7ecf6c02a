"""Old OpenEvolve checkpoints are pruned: each holds every program, so keeping all grows as attempts squared."""

from openevolve_genesys.controller.run import _prune_checkpoints


def _make(folder, *numbers):
    for n in numbers:
        (folder / f"checkpoint_{n}").mkdir(parents=True)
        (folder / f"checkpoint_{n}" / "genesys_records.json").write_text("{}")


def test_the_newest_checkpoints_by_number_are_kept(tmp_path):
    _make(tmp_path, 2, 10, 4, 8, 6)
    (tmp_path / "notes").mkdir()  # not a checkpoint: never touched
    _prune_checkpoints(tmp_path, 2)
    assert sorted(p.name for p in tmp_path.iterdir()) == ["checkpoint_10", "checkpoint_8", "notes"]


def test_zero_keeps_every_checkpoint(tmp_path):
    _make(tmp_path, 1, 2, 3)
    _prune_checkpoints(tmp_path, 0)
    assert len(list(tmp_path.iterdir())) == 3
