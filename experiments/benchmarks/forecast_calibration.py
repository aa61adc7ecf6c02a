"""How well the project's scaling forecast predicts a real rung it has not seen.

    python experiments/benchmarks/forecast_calibration.py --per-framework 5 --seed 0

For each framework the baseline and ``--per-framework`` offline mutations (single-unit swaps of the
catalogue, picked by ``--seed``, round-robin over units so the first picks touch different units) are
trained on every rung of the ladder profile through the real evaluator (sandboxed, cached by functional
hash: a rerun trains nothing it has seen). A mutation that fails the evaluator's checks, or computes the
same function as a design already taken in any framework, is skipped and the next one tried.

Then every predictor sees only the rungs below the largest (the baseline's law too is fitted on the
baseline's smaller rungs) and forecasts the largest rung: the gap model the selector values designs with
(``scaling.value_design``, with the framework's other mutations as its population), a free power law per design, the seed's log-linear line and the third rung's loss as a
ranking predictor (``calibration_metrics``). Loss metrics run over all designs (pooled: the three baselines,
one function, count once); gap metrics (baseline minus design at the largest rung) over the mutations only,
since the baseline's gap is zero by construction.
Writes ``results/forecast_calibration.json`` and ``.png``. ``--from-results JSON`` re-forecasts the ladders a
previous run measured, so a change of the forecast is scored on the same measurements without training.
"""

from __future__ import annotations

import argparse
import itertools
import dataclasses
import json
import logging
import math
import random
import sys
import time
from pathlib import Path
from typing import Any, Iterator

HERE = Path(__file__).resolve().parent
sys.path.insert(0, str(HERE))

from calibration_metrics import (LEVELS, METHODS, Ladder, Prediction, as_gap, baseline_law,  # noqa: E402
                                 gap_predictions, holdout_split, log_linear_prediction, measured_gap,
                                 paired_residual_sd, power_law_prediction, summarise, third_rung_gap,
                                 third_rung_prediction)
from calibration_plot import plot  # noqa: E402

from openevolve_genesys.evaluation.evaluator import ScalingLawEvaluator  # noqa: E402
from openevolve_genesys.evaluation.program import replace_class  # noqa: E402
from openevolve_genesys.evaluation.settings import EvaluatorSettings  # noqa: E402
from openevolve_genesys.mutations import identify  # noqa: E402
from openevolve_genesys.mutations.catalogue import catalogue  # noqa: E402
from openevolve_genesys.scaling.fit import NOISE_FLOOR  # noqa: E402
from openevolve_genesys.training.profiles import get_profile  # noqa: E402
from openevolve_genesys.training.rung_result import RungResult, rungs_from_dict  # noqa: E402

FRAMEWORKS = ("coefficient_dynamics", "test_time_regression", "matrix_mixer")
# Two ladders are one function when every rung agrees to this many nats: a cached twin agrees exactly, a
# retrained one to float noise (the three baselines, trained apart, differ by ~1e-6); distinct designs here
# differ by over 1e-3 at some rung.
SAME_FUNCTION_NATS = 1e-4
RESULTS = HERE / "results"
log = logging.getLogger("forecast_calibration")


@dataclasses.dataclass
class Design:
    framework: str
    name: str  # "baseline" or "<unit>:<alternative>"
    ladder: Ladder
    rungs: dict[str, dict[str, float]]
    seconds: float


def swaps(framework: str, template: str, seed: int) -> Iterator[tuple[str, str]]:
    """(name, source) of every single-unit swap of the template, in a seeded round-robin over units."""
    units = catalogue(framework)
    current = identify(template, framework)
    rng = random.Random(f"{seed}:{framework}")  # a str seed is hashed deterministically (not PYTHONHASHSEED)
    order = list(units)
    rng.shuffle(order)
    queues = {u: rng.sample([a for a in units[u] if a.name != current[u]], len(units[u]) - 1) for u in order}
    for i in range(max(len(q) for q in queues.values())):
        for unit in order:
            if i < len(queues[unit]):
                alternative = queues[unit][i]
                yield f"{unit}:{alternative.name}", replace_class(template, unit, alternative.text)


def as_design(framework: str, name: str, rungs: dict[str, RungResult], seconds: float) -> Design:
    kept = {r: {"n_params": float(v.n_params), "loss": float(v.final_eval_loss)} for r, v in rungs.items()}
    ladder = Ladder.of([v["n_params"] for v in kept.values()], [v["loss"] for v in kept.values()])
    return Design(framework, name, ladder, kept, seconds)


def twin(losses: tuple[float, ...], taken: dict[tuple[float, ...], str]) -> str | None:
    """The name of a taken ladder that is the same function as ``losses``, if any."""
    for other, name in taken.items():
        if len(other) == len(losses) and max(abs(a - b) for a, b in zip(other, losses)) <= SAME_FUNCTION_NATS:
            return name
    return None


def train_framework(framework: str, per_framework: int, seed: int, profile: str, skipped: list[dict[str, str]],
                    taken: dict[tuple[float, ...], str], overrides: dict[str, Any] | None = None) -> list[Design]:
    """The baseline and ``per_framework`` valid mutations, each trained on every rung. ``taken`` maps the loss
    ladders of mutations already taken (any framework) to their names: the frameworks share alternatives
    (input maps, readouts, Mamba-2 decay), and a function counted twice would weigh twice in pooled metrics."""
    evaluator = ScalingLawEvaluator(EvaluatorSettings(framework=framework, profile=profile,
                                                      profile_overrides=overrides or {}))
    rung_names = [r.name for r in evaluator.profile.rungs]
    start = time.perf_counter()
    base = evaluator.baseline()
    designs = [as_design(framework, "baseline", base.rungs, time.perf_counter() - start)]
    log.info("%s baseline: %s (%.0f s)", framework, _losses(designs[0]), designs[0].seconds)
    if twin(designs[0].ladder.loss, taken) is None:
        taken[designs[0].ladder.loss] = f"{framework}/baseline"
    for tried, (name, source) in enumerate(swaps(framework, evaluator.template, seed), 1):
        if len(designs) > per_framework:
            break
        start = time.perf_counter()
        evaluation = evaluator.evaluate(source, rung_names)
        seconds = time.perf_counter() - start
        if evaluation.outcome != "ok" or set(evaluation.rungs) != set(rung_names):
            message = (evaluation.artifacts.get("message") or "").strip().splitlines()[-1:] or ["no message"]
            reason = f"{evaluation.outcome} ({evaluation.metrics.get('check')}): {message[0]}"
            skipped.append({"framework": framework, "name": name, "reason": reason[:300]})
            log.info("%s candidate %d %s skipped (%s, %.0f s)", framework, tried, name, reason[:120], seconds)
            continue
        design = as_design(framework, name, evaluation.rungs, seconds)
        same = twin(design.ladder.loss, taken)
        if same is not None:
            skipped.append({"framework": framework, "name": name, "reason": f"same losses as {same}"})
            log.info("%s candidate %d %s skipped (same function as %s)", framework, tried, name, same)
            continue
        taken[design.ladder.loss] = f"{framework}/{name}"
        designs.append(design)
        log.info("%s design %d/%d %s: %s (%.0f s%s)", framework, len(designs) - 1, per_framework, name,
                 _losses(design), seconds, ", cached" if evaluation.metrics.get("cache_hit") else "")
    if len(designs) <= per_framework:
        raise RuntimeError(f"{framework}: only {len(designs) - 1} valid mutations among all single-unit swaps; "
                           f"ask for fewer with --per-framework")
    return designs


def _losses(design: Design) -> str:
    return " ".join(f"{r} {v['loss']:.4f}" for r, v in design.rungs.items())


def forecast_all(designs: list[Design], depths: list[int]) -> tuple[list[dict[str, Any]],
                                                                     dict[str, dict[str, Prediction]],
                                                                     dict[str, dict[str, Prediction]]]:
    """Per design: a JSON row, its loss predictions and its gap predictions by method (``depths``: the layers of
    each rung by position, the held-out rung's last; the valuation regresses on depth beside N, and ``gap_n_only``
    is the same valuation without it)."""
    rows, loss_preds, gap_preds = [], {}, {}
    for fw in dict.fromkeys(d.framework for d in designs):
        base = next(d for d in designs if d.framework == fw and d.name == "baseline")
        law = baseline_law(base.ladder)
        mutations = [d for d in designs if d.framework == fw and d.name != "baseline"]
        for d in (d for d in designs if d.framework == fw):
            key = f"{fw}/{d.name}"
            # The other mutations of the framework are the population a run would value this design among.
            population = [m.ladder for m in mutations if m is not d]
            gap_loss, gap_gap = gap_predictions(d.ladder, base.ladder, population=population, depths=depths)
            n_only_loss, n_only_gap = gap_predictions(d.ladder, base.ladder, population=population)
            anchor = float(law.predict(d.ladder.n[-1]))
            power, line = power_law_prediction(d.ladder), log_linear_prediction(d.ladder)
            loss_preds[key] = {"gap": gap_loss, "gap_n_only": n_only_loss, "power_law": power, "log_linear": line,
                               "third_rung": third_rung_prediction(d.ladder)}
            gap_preds[key] = {"gap": gap_gap, "gap_n_only": n_only_gap, "power_law": as_gap(power, anchor), "log_linear": as_gap(line, anchor),
                              "third_rung": third_rung_gap(d.ladder, base.ladder, law)}
            rows.append({"framework": fw, "name": d.name, "key": key, "rungs": d.rungs, "train_seconds": d.seconds,
                         "held_out_n": d.ladder.n[-1], "measured_loss": holdout_split(d.ladder)[2],
                         "measured_gap": measured_gap(d.ladder, base.ladder, law), "baseline_law_at_n": anchor,
                         "baseline_law": {"E": law.E, "A": law.A, "alpha": law.alpha},
                         "loss_forecasts": {m: _pred_json(p) for m, p in loss_preds[key].items()},
                         "gap_forecasts": {m: _pred_json(p) for m, p in gap_preds[key].items()}})
    return rows, loss_preds, gap_preds


def _pred_json(p: Prediction) -> dict[str, Any]:
    return {"mean": p.mean, "log_sd": p.log_sd, "anchor": p.anchor,
            "intervals": {f"{level:.4f}": [_finite(lo), _finite(hi)] for level, (lo, hi) in p.intervals.items()}}


def _finite(x: float) -> float | None:
    return float(x) if math.isfinite(x) else None


def summaries(rows: list[dict[str, Any]], loss_preds: dict, gap_preds: dict) -> dict[str, dict[str, dict]]:
    """Metrics by quantity (loss, gap), method and group (each framework, pooled)."""
    groups = {fw: [r for r in rows if r["framework"] == fw] for fw in dict.fromkeys(r["framework"] for r in rows)}
    # the three baselines are one function (softmax attention): pooled, every function counts once
    groups["pooled"], seen = [], {}
    for row in rows:
        ladder = tuple(v["loss"] for v in row["rungs"].values())
        if twin(ladder, seen) is None:
            seen[ladder] = row["key"]
            groups["pooled"].append(row)
    # Designs whose held-in losses fall at every step up the ladder: a run can tell the others (unstable designs,
    # whose loss rises with N) from their held-in rungs, and one of them would decide the pooled RMSE alone.
    groups["pooled_stable"] = [r for r in groups["pooled"]
                               if all(b < a for a, b in itertools.pairwise([v["loss"] for v in r["rungs"].values()][:-1]))]
    out: dict[str, dict[str, dict]] = {"loss": {}, "gap": {}}
    for method in METHODS:
        out["loss"][method] = {g: summarise([loss_preds[r["key"]][method] for r in rs],
                                            [r["measured_loss"] for r in rs], ranking_only=method == "third_rung")
                               for g, rs in groups.items()}
        out["gap"][method] = {g: summarise([gap_preds[r["key"]][method] for r in rs if r["name"] != "baseline"],
                                           [r["measured_gap"] for r in rs if r["name"] != "baseline"])
                              for g, rs in groups.items()}
    return out


def noise_diagnostic(designs: list[Design]) -> dict[str, float | None]:
    """Pooled paired residual sd per framework and over all (each mutation has 4 - 2 dof), beside the sd the
    gap model assumes for a paired ln-loss difference."""
    out: dict[str, float | None] = {}
    squares, count = 0.0, 0
    for fw in dict.fromkeys(d.framework for d in designs):
        base = next(d for d in designs if d.framework == fw and d.name == "baseline")
        mutations = [d.ladder for d in designs if d.framework == fw and d.name != "baseline"]
        out[fw] = sd = paired_residual_sd(mutations, base.ladder, baseline_law(base.ladder))
        if sd is not None:
            squares, count = squares + sd * sd * len(mutations), count + len(mutations)
    out["pooled"] = math.sqrt(squares / count) if count else None
    out["assumed"] = math.sqrt(2.0) * NOISE_FLOOR
    return out


def table(summary: dict[str, dict[str, dict]]) -> str:
    """Markdown table: one line per (quantity, method, group)."""
    def cell(v: Any, fmt: str = "{:.3f}") -> str:
        return "-" if v is None else fmt.format(v)

    lines = ["| quantity | method | group | n | Spearman rho (p) | RMSE nats | bias nats | "
             + " | ".join(f"cover {level:.0%}" for level in LEVELS) + " | abs z q68 |",
             "|---|---|---|---|---|---|---|" + "---|" * len(LEVELS) + "---|"]
    for quantity, methods in summary.items():
        for method, groups in methods.items():
            for group, s in groups.items():
                rho = "-" if s["spearman"] is None else f"{s['spearman']:+.2f} ({s['spearman_p']:.2g})"
                covers = " | ".join(cell(s[f"coverage_{level:.2f}"], "{:.0%}") for level in LEVELS)
                lines.append(f"| {quantity} | {method} | {group} | {s['n']} | {rho} | {cell(s['rmse'], '{:.4f}')} | "
                             f"{cell(s['bias'], '{:+.4f}')} | {covers} | {cell(s['abs_z_q68'], '{:.2f}')} |")
    return "\n".join(lines)


def skill(summary: dict[str, dict[str, dict]], method: str = "gap") -> dict[str, float | None]:
    """Skill of a gap forecast over persistence, per group: 1 - RMSE(forecast gap) / RMSE(the largest held-in
    rung's measured gap taken as the forecast). Positive: the forecast beats simply carrying the gap up a rung."""
    out: dict[str, float | None] = {}
    for group, s in summary["gap"][method].items():
        persistence = summary["gap"]["third_rung"][group]
        ok = s["rmse"] is not None and persistence.get("rmse")
        out[group] = 1.0 - s["rmse"] / persistence["rmse"] if ok else None
    return out


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--per-framework", type=int, default=5, help="mutations per framework (besides the baseline)")
    parser.add_argument("--seed", type=int, default=0, help="picks the order of the single-unit swaps")
    parser.add_argument("--frameworks", nargs="+", default=list(FRAMEWORKS), choices=FRAMEWORKS)
    parser.add_argument("--profile", default="smoke", help="ladder profile (needs four or more rungs)")
    parser.add_argument("--add-rung", nargs=3, type=int, metavar=("D_MODEL", "N_LAYERS", "N_HEADS"),
                        help="append a rung above the profile's largest (trained with the profile's recipe), so the "
                             "held-out rung is one the profile itself never trains")
    parser.add_argument("--out", default=str(RESULTS / "forecast_calibration.json"))
    parser.add_argument("--from-results", metavar="JSON", help="re-forecast the ladders a previous run of this "
                        "benchmark measured (its 'designs') instead of training them again")
    args = parser.parse_args()
    if args.per_framework < 1:
        parser.error("--per-framework must be at least 1")
    overrides: dict[str, Any] = {}
    if args.from_results:  # the ladder the recorded designs were trained on
        recorded = json.loads(Path(args.from_results).read_text())
        args.profile, args.add_rung = recorded["settings"]["profile"], recorded["settings"].get("added_rung")
    depths = [r.n_layers for r in get_profile(args.profile).rungs] + ([args.add_rung[1]] if args.add_rung else [])
    if args.add_rung:
        rungs = get_profile(args.profile).rungs
        overrides["rungs"] = [dataclasses.asdict(r) for r in rungs] + [
            dict(zip(("d_model", "n_layers", "n_heads"), args.add_rung), name=f"r{len(rungs)}")]
    logging.basicConfig(level=logging.INFO, format="%(asctime)s %(message)s", datefmt="%H:%M:%S")

    skipped: list[dict[str, str]] = []
    taken: dict[tuple[float, ...], str] = {}
    if args.from_results:
        skipped = recorded.get("skipped", [])
        designs = [as_design(r["framework"], r["name"], rungs_from_dict(
                       {k: {"n_params": v["n_params"], "final_eval_loss": v["loss"]} for k, v in r["rungs"].items()}),
                             r["train_seconds"])
                   for r in recorded["designs"] if r["framework"] in args.frameworks]
    else:
        designs = [d for fw in args.frameworks for d in train_framework(fw, args.per_framework, args.seed,
                                                                        args.profile, skipped, taken, overrides)]
    rows, loss_preds, gap_preds = forecast_all(designs, depths)
    summary = summaries(rows, loss_preds, gap_preds)
    print(table(summary))
    skills = skill(summary)
    for method in ("gap", "gap_n_only"):
        print(f"skill of the {method} forecast over persistence (1 - RMSE ratio): "
              + ", ".join(f"{k} {v:+.3f}" for k, v in skill(summary, method).items() if v is not None))
    noise = noise_diagnostic(designs)
    print("paired ln-gap residual sd around a line through all four rungs (diagnostic): "
          + ", ".join(f"{k} {v:.4f}" for k, v in noise.items() if v is not None))
    out = Path(args.out)
    out.parent.mkdir(parents=True, exist_ok=True)
    out.write_text(json.dumps({
        "settings": {"profile": args.profile, "added_rung": args.add_rung, "seed": args.seed, "per_framework": args.per_framework,
                     "frameworks": args.frameworks, "levels": list(LEVELS),
                     "note": "loss metrics over all designs, gap metrics over mutations only; "
                             "abs_z_q68: 68th percentile of |ln measured - ln forecast| / stated sd (1 if calibrated)"},
        "summary": summary, "skill_over_persistence": skills, "paired_residual_sd": noise, "designs": rows, "skipped": skipped}, indent=2))
    png = out.with_suffix(".png")
    plot(rows, png)
    print(f"saved {out} and {png}")


if __name__ == "__main__":
    main()
