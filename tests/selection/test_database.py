import json

from openevolve.config import DatabaseConfig
from openevolve.database import Program, ProgramDatabase

from openevolve_genesys.selection.database import RECORDS_FILE, GenesysDatabase
from hand_records import baseline, record


def filled(tmp_path):
    db = GenesysDatabase(DatabaseConfig(random_seed=1))
    db.add_design(Program(id="baseline", code="# baseline"), baseline())
    db.add_design(Program(id="good", code="# good", parent_id="baseline", iteration_found=1), record("good", 0.97, 4))
    db.add_design(Program(id="bad", code="# bad", parent_id="baseline", iteration_found=2),
                  record("bad", outcome="invalid"))
    return db


def test_designs_are_valued_and_the_best_is_tracked(tmp_path):
    db = filled(tmp_path)
    assert db.best_design().id == "good" and db.best_program_id == "good"
    assert db.get("good").metrics["combined_score"] == db.records["good"].utility > 0
    assert db.records["bad"].utility is None


def test_a_verification_updates_the_value(tmp_path):
    db = filled(tmp_path)
    db.update_record(record("good", 0.97, 2))
    before = db.records["good"].confidence
    more = record("good", 0.97, 4)
    db.update_record(more)
    assert db.records["good"].confidence > before


def test_save_writes_an_openevolve_checkpoint_and_our_records(tmp_path):
    db = filled(tmp_path)
    db.save(str(tmp_path / "ckpt"), iteration=2)
    assert json.loads((tmp_path / "ckpt" / "metadata.json").read_text())["best_program_id"] == "good"
    plain = ProgramDatabase(DatabaseConfig())  # OpenEvolve's own database reads the checkpoint
    plain.load(str(tmp_path / "ckpt"))
    assert set(plain.programs) == {"baseline", "good", "bad"}
    assert (tmp_path / "ckpt" / RECORDS_FILE).exists()


def test_load_restores_records_and_values(tmp_path):
    db = filled(tmp_path)
    db.save(str(tmp_path / "ckpt"), iteration=2)
    again = GenesysDatabase(DatabaseConfig(db_path=str(tmp_path / "ckpt")))
    assert set(again.records) == {"baseline", "good", "bad"}
    assert again.records["good"].utility == db.records["good"].utility
    assert again.best_design().id == "good"


def test_an_unverified_design_is_not_crowned_best_over_confident_ones(tmp_path):
    db = filled(tmp_path)
    db.add_design(Program(id="lucky", code="# lucky", parent_id="baseline", iteration_found=3), record("lucky", 0.9, 1))
    assert db.records["lucky"].utility > db.records["good"].utility
    assert db.records["lucky"].confidence < 0.5 <= db.records["good"].confidence
    assert db.best_design().id == "good"


def test_the_ladders_data_policy_reaches_every_forecast_and_the_summary(tmp_path):
    from openevolve_genesys.scaling import DataPolicy

    db = GenesysDatabase(DatabaseConfig(random_seed=1), policy=DataPolicy(tokens_per_param=20))
    db.add_design(Program(id="baseline", code="# baseline"), baseline())
    db.add_design(Program(id="good", code="# good", parent_id="baseline", iteration_found=1), record("good", 0.97, 4))
    assert "compute-scaled at 20 tokens per parameter" in db.records["good"].forecast["forecasts"]
    assert "compute-scaled at 20 tokens per parameter" in db.valuation_summary()["forecasts"]
    assert "fixed data" in filled(tmp_path).valuation_summary()["forecasts"]  # no policy stated: fixed steps
