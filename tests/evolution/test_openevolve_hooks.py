"""The Genesys selection through OpenEvolve's Python hooks (openevolve_genesys/openevolve_hooks.py).

Programs carry metrics in the names the evaluator writes (ScalingLawEvaluator._score builds them here, so a
renamed metric fails these tests); the population hooks run inside OpenEvolve's real ProgramDatabase, which
checks every decision as it does in a run; the end-to-end test runs ``openevolve.run_evolution`` for two
iterations against the loopback LLM server of the stock test."""

import dataclasses
import json
import logging
import random
import signal
from collections import Counter
from types import MappingProxyType

import pytest
from openevolve.config import DatabaseConfig
from openevolve.database import Program, ProgramDatabase
from openevolve.population import PopulationSnapshot, PopulationStrategy, ProgramState
from openevolve.selection import IslandSelectionContext, IslandState

from fault_server import FaultServer, answer
from openevolve_genesys.evaluation.evaluator import INVALID_SCORE, ScalingLawEvaluator
from openevolve_genesys.training.profiles import get_profile
from openevolve_genesys.evaluation.settings import EvaluatorSettings
from openevolve_genesys.openevolve_hooks import (archive_target, design_record, genesys_island_selector,
                                                 genesys_population_strategy)
from openevolve_genesys.selection.selector import SelectorSettings
from openevolve_genesys.training.rung_result import rungs_from_dict
from test_stock_run import DIFF, EVALUATOR, REPO, SEARCH, run_config

BASELINE = {"r0": (20_000, 5.0), "r1": (60_000, 4.6), "r2": (180_000, 4.3)}


def metrics(ratio: float, rungs: int = 3, **extra) -> dict:
    """The evaluator's metrics for a design whose loss is ``ratio`` times the baseline's on its first rungs."""
    evaluator = object.__new__(ScalingLawEvaluator)  # _score reads only the settings and the profile
    evaluator.settings = EvaluatorSettings()
    evaluator.profile = get_profile("smoke")  # BASELINE's rungs are named as smoke's
    as_rungs = lambda scale, n: {name: {"rung": name, "n_params": size, "final_eval_loss": scale * loss}
                                 for name, (size, loss) in list(BASELINE.items())[:n]}
    return {"outcome": "ok", **evaluator._score(rungs_from_dict(as_rungs(ratio, rungs)),
                                                rungs_from_dict(as_rungs(1.0, 3))), **extra}


def state(pid: str, values: dict, parent: str | None = "p0") -> ProgramState:
    return ProgramState(pid, f"# {pid}", MappingProxyType(values), 1, parent, MappingProxyType({}))


def snapshot(programs: list[ProgramState], archive=(), archive_limit: int = 3, last_iteration: int = 0):
    return PopulationSnapshot(
        programs=MappingProxyType({p.id: p for p in programs}), islands=(frozenset(p.id for p in programs),),
        feature_maps=(MappingProxyType({}),), archive=frozenset(archive), best_program_id=None,
        population_limit=100, archive_limit=archive_limit, feature_dimensions=("cell",), generations=(0,),
        last_migration_generation=0, migration_interval=10, migration_rate=0.1, last_iteration=last_iteration)


def quadrant_population() -> dict[str, dict]:
    """Two confident high designs (a, b), one unconfident high (c), two confident low (d, e), an unconfident
    low one (f) and an invalid one (g); "high" is against the median of the valid designs' utilities."""
    def with_value(ratio, confidence):
        return {**metrics(ratio), "confidence": confidence}
    return {"a": with_value(0.96, 0.9), "b": with_value(0.98, 0.8), "c": with_value(0.97, 0.1),
            "d": with_value(1.02, 0.9), "e": with_value(1.04, 0.7), "f": with_value(1.06, 0.1),
            "g": {"outcome": "invalid", "check": "causality", "combined_score": INVALID_SCORE}}


def test_a_program_is_read_as_the_selector_reads_a_design_and_bad_metrics_make_it_unvalued():
    good = design_record(state("x", metrics(0.97)))
    assert good.valid and good.utility > 0 and set(good.rungs) == {"r0", "r1", "r2"}
    assert 0 < good.confidence <= 1 and good.forecast["low"] < good.utility < 1
    assert design_record(state("x", metrics(1.03))).utility < 0
    for bad in ({"error": 0.0}, {"timeout": True}, {}, quadrant_population()["g"],
                {**metrics(0.97), "forecast_gap": float("nan")}, {**metrics(0.97), "forecast_gap": "0.1"},
                {**metrics(0.97), "forecast_gap": None}, {"outcome": "ok", "forecast_gap": 0.1, "loss_r0": 5.0}):
        record = design_record(state("x", bad))
        assert not (record.valid and record.utility is not None), bad
    odd = design_record(state("x", {**metrics(0.97), "confidence": 7.0, "p_better": "high", "outcome": 1}))
    assert odd.confidence == 1.0 and odd.forecast is None and not odd.valid


def test_the_archive_target_holds_the_design_quadrants_with_an_annealed_explore_share():
    records = [design_record(state(pid, m)) for pid, m in quadrant_population().items()]
    settings = SelectorSettings()  # explore probability 0.5 at the start, 0.1 at the end
    assert archive_target(records, 2, settings, progress=0.0) == ["a", "d"]  # one explore slot of two
    assert archive_target(records, 2, settings, progress=1.0) == ["a", "b"]  # round(0.1 * 2) = 0
    assert archive_target(records, 4, settings, progress=0.0) == ["a", "b", "d", "e"]
    assert archive_target(records, 10, settings, progress=1.0) == ["a", "b", "d", "e"]  # c, f unconfident; g invalid
    assert archive_target(records, 0, settings, progress=0.0) == []
    unconfident = [r for r in records if r.id in ("c", "f", "g")]
    assert archive_target(unconfident, 3, settings, progress=0.0) == ["c"]  # the selector's fallback seed
    assert archive_target([r for r in records if r.id == "g"], 3, settings, progress=0.0) == []
    by_lower = dataclasses.replace(settings, rank_by="lower")
    assert archive_target(records, 1, by_lower, progress=1.0) == ["a"]


def _database(strategy: PopulationStrategy, archive_size: int = 2, population_size: int = 100) -> ProgramDatabase:
    # One feature dimension read from the metrics, spread so that each program owns its own cell.
    config = DatabaseConfig(archive_size=archive_size, population_size=population_size, num_islands=2,
                            feature_dimensions=["cell"], feature_bins=10, random_seed=0)
    return ProgramDatabase(config, population_strategy=strategy)


def test_inside_openevolves_database_a_new_program_is_archived_as_the_target_says_and_moves_the_archive_to_it():
    db = _database(genesys_population_strategy(iterations=10))
    target = lambda: archive_target([design_record(db._program_state(p)) for p in db.programs.values()], 2,
                                    SelectorSettings(), db.last_iteration / 10)
    db.add(Program(id="p0", code="# p0", metrics={**metrics(1.0), "cell": 0.0}), iteration=0)
    population = quadrant_population()
    for i, (pid, m) in enumerate(population.items()):
        cell = 1000.0 if i == 0 else 100.0 * i  # after the first two, every program lands in its own bin
        db.add(Program(id=pid, code=f"# {pid}", metrics={**m, "cell": cell}, parent_id="p0"), iteration=1)
        assert pid not in db.programs or (pid in db.archive) == (pid in target()), pid
        assert len(db.archive) <= 2
    assert "g" not in db.programs and set(db.programs) == {"p0", *"abcdef"}
    # f's arrival moved the median onto p0, now high utility, so d takes the explore slot; but the hook acts only
    # when a program arrives (it may add the newcomer and evict one), so the next arrival moves the archive.
    assert db.archive == {"a", "p0"} and target() == ["a", "d"]
    db.add(Program(id="h", code="# h", metrics={**metrics(0.95), "confidence": 0.9, "cell": 700.0}), iteration=2)
    assert db.archive == set(target()) and "h" in db.archive and "a" not in db.archive
    # The exploitation branch (0.7 of OpenEvolve's parent draws) seeds only from the archive.
    db.config.exploration_ratio, db.config.exploitation_ratio = 0.0, 1.0
    parents = Counter(db.sample_from_island(0, num_inspirations=0)[0].id for _ in range(50))
    assert set(parents) <= db.archive


def test_a_cell_keeps_the_higher_ranked_design_and_the_initial_program_is_always_admitted():
    db = _database(genesys_population_strategy(iterations=10), archive_size=5)
    db.add(Program(id="p0", code="# p0", metrics={"error": 0.0, "cell": 0.0}), iteration=0)  # unvalued, admitted
    db.add(Program(id="far", code="# far", metrics={**metrics(1.0), "cell": 1000.0}), iteration=1)
    db.add(Program(id="weak", code="# weak", metrics={**metrics(1.02), "cell": 500.0}), iteration=1)
    cell = next(key for key, pid in db.island_feature_maps[0].items() if pid == "weak")
    db.add(Program(id="strong", code="# strong", metrics={**metrics(0.97), "cell": 500.0}), iteration=2)
    assert db.island_feature_maps[0][cell] == "strong"
    db.add(Program(id="weaker", code="# weaker", metrics={**metrics(1.05), "cell": 500.0}), iteration=3)
    assert db.island_feature_maps[0][cell] == "strong"


def test_eviction_takes_programs_outside_the_archive_lowest_ranked_first_and_never_protected_ones():
    evict = genesys_population_strategy(iterations=10).evict
    programs = [state(pid, m) for pid, m in quadrant_population().items()]
    view = snapshot(programs, archive={"f", "a"})
    assert evict(view, 2, frozenset()) == ["g", "e"]  # g invalid; e the lowest valued outside the archive
    chosen = evict(view, 5, frozenset({"g"}))
    assert chosen == ["e", "d", "b", "c", "f"] and "g" not in chosen  # archived f only after every other
    assert evict(view, 0, frozenset()) == []


def test_the_island_selector_exploits_the_best_islands_explores_the_others_and_always_returns_an_island():
    def context(*islands, iteration=0):
        states = tuple(IslandState(size, score, score, 0.0, 0) for size, score in islands)
        return IslandSelectionContext(iteration, tuple(0 for _ in states), states)

    islands = ((3, 0.02), (2, 0.05), (0, 0.0), (4, -0.01))  # island 2 is empty: its 0.0 means nothing
    exploit = genesys_island_selector(10, SelectorSettings(explore_start=0.0, explore_end=0.0), random.Random(1))
    picks = Counter(exploit(context(*islands)) for _ in range(300))
    assert set(picks) == {0, 1} and picks[1] > picks[0]  # the high half, the best likelier (weights 1/rank)
    explore = genesys_island_selector(10, SelectorSettings(explore_start=1.0, explore_end=1.0), random.Random(1))
    assert set(Counter(explore(context(*islands)) for _ in range(300))) == {2, 3}
    annealed = genesys_island_selector(10, SelectorSettings(explore_start=1.0, explore_end=0.0), random.Random(1))
    assert {annealed(context(*islands, iteration=0)) for _ in range(50)} == {2, 3}
    assert {annealed(context(*islands, iteration=10)) for _ in range(50)} <= {0, 1}
    selector = genesys_island_selector(10, rng=random.Random(2))
    for odd in (((0, 0.0),), ((0, 0.0), (0, 0.0)), ((2, float("nan")), (1, float("inf")), (1, INVALID_SCORE))):
        assert all(0 <= selector(context(*odd)) < len(odd) for _ in range(20))
    with pytest.raises(ValueError, match="no islands"):
        selector(IslandSelectionContext(0, (), ()))
    for bad in (0, -3, 2.5, True, None):
        with pytest.raises(ValueError, match="positive integer"):
            genesys_island_selector(bad)
        with pytest.raises(ValueError, match="positive integer"):
            genesys_population_strategy(bad)


def _counted(calls: Counter, name: str, hook):
    def counted(*args):
        calls[name] += 1
        return hook(*args)
    return counted


@pytest.mark.slow
def test_run_evolution_with_the_hooks_scores_an_evolved_program_and_asks_every_hook(tmp_path, monkeypatch):
    """OpenEvolve's Python API with the hooks, the project's evaluation file and the stock test's one-rung config."""
    from openevolve import run_evolution

    initial = tmp_path / "matrix_mixer.py"
    initial.write_text((REPO / "frameworks" / "matrix_mixer.py").read_text())
    assert SEARCH in initial.read_text()
    calls: Counter = Counter()
    strategy = genesys_population_strategy(iterations=2)
    counted = PopulationStrategy(**{f.name: _counted(calls, f.name, getattr(strategy, f.name))
                                    for f in dataclasses.fields(strategy) if getattr(strategy, f.name)})
    selector = _counted(calls, "island_selector", genesys_island_selector(iterations=2))
    # The controller adds log handlers and signal handlers to this process; give them back afterwards.
    root = logging.getLogger()
    handlers, level = list(root.handlers), root.level
    signals = {s: signal.getsignal(s) for s in (signal.SIGINT, signal.SIGTERM)}
    try:
        with FaultServer(answer(DIFF)) as server:
            config = run_config(tmp_path, server.url)
            monkeypatch.setenv("GENESYS_CONFIG", str(config))  # the evaluation file's settings, in every worker
            result = run_evolution(str(initial), str(EVALUATOR), config=str(config), iterations=2,
                                   output_dir=str(tmp_path / "out"), cleanup=False,
                                   island_selector=selector, population_strategy=counted)
            asked = server.total
    finally:
        for handler in set(root.handlers) - set(handlers):
            root.removeHandler(handler)
            handler.close()
        root.setLevel(level)
        for number, handler in signals.items():
            signal.signal(number, handler)
    assert asked >= 1 and result.best_program is not None
    checkpoints = sorted((tmp_path / "out" / "checkpoints").glob("checkpoint_*"), key=lambda p: int(p.name[11:]))
    programs = [json.loads(p.read_text()) for p in (checkpoints[-1] / "programs").glob("*.json")]
    evolved = [p for p in programs if p["parent_id"] and "0.5 / math.sqrt" in p["code"]]
    assert evolved, f"no evolved program among {[p['id'] for p in programs]}"
    assert all(p["metrics"]["outcome"] == "ok" and "forecast_gap" in p["metrics"] for p in evolved)
    assert calls["island_selector"] == 2 and calls["admit"] >= 2 and calls["archive"] >= 2, calls
    # The saved archive is the hooks' target over the saved population: on one rung nothing is confident, so
    # the best-valued design alone (equal children tie: the first to arrive stays).
    saved = json.loads((checkpoints[-1] / "metadata.json").read_text())
    utility = {p["id"]: design_record(state(p["id"], p["metrics"], p["parent_id"])).utility for p in programs}
    assert len(saved["archive"]) == 1 and utility[saved["archive"][0]] == max(utility.values())
    assert len(archive_target([design_record(state(p["id"], p["metrics"])) for p in programs], 100,
                              SelectorSettings(), 1.0)) == 1
