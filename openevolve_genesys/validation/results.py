"""The validation's outputs: ``validation.json`` (everything, machine-readable), ``validation.md`` (a table
per design) and a few printed lines, all built from the plan and the journaled results."""

from __future__ import annotations

import statistics as pystats
from pathlib import Path
from typing import Any

from openevolve_genesys.controller.history import write_json_atomic
from openevolve_genesys.validation.journal import TrainingResult
from openevolve_genesys.validation.plan import SEED_CONTROLS, ValidationPlan
from openevolve_genesys.validation.runner import RunOutcome
from openevolve_genesys.validation.statistics import compare_paired

JSON_FILE = "validation.json"
MARKDOWN_FILE = "validation.md"


def summarise(plan: ValidationPlan, outcome: RunOutcome) -> dict[str, Any]:
    """Per design and rung: the paired comparison with the baseline; plus what was trained and how."""
    losses = _losses(outcome.results)
    n_params = {r.rung: r.n_params for r in outcome.results if r.n_params is not None}
    failures = [f"{r.design_id[:8]} seed {r.seed} {r.rung}: {r.message.splitlines()[0] if r.message else r.outcome}"
                for r in outcome.results if r.outcome != "ok"]
    base = plan.run.baseline
    base_losses = losses.get(base.id, {})
    designs = []
    adjusted = 1.0 - (1.0 - plan.level) / len(plan.run.designs)  # Bonferroni over the designs validated
    for candidate in plan.run.designs:
        mine = losses.get(candidate.id, {})
        rungs = {}
        for rung in plan.rungs:
            comparison = compare_paired(mine.get(rung, {}), base_losses.get(rung, {}), level=plan.level)
            rungs[rung] = {"n_params": n_params.get(rung), **comparison.to_dict()}
        largest = rungs[plan.largest_rung]
        strict = compare_paired(mine.get(plan.largest_rung, {}), base_losses.get(plan.largest_rung, {}),
                                level=adjusted)
        designs.append({
            **candidate.to_dict(), "learning_rate": plan.learning_rate(candidate),
            "learning_rate_source": candidate.learning_rate_source,
            "losses": _jsonable(mine), "rungs": rungs,
            "wins_at_largest_rung": None if largest["ci_high"] is None else largest["verdict"] == "wins",
            "wins_after_bonferroni": None if strict.ci_high is None else strict.verdict == "wins",
        })
    notes = [f"seeds {list(plan.seeds)} control {SEED_CONTROLS}; the run trained at seed {plan.run_seed}, on which it "
             "selected these designs, so it is left out (its losses favour the winners)"
             if plan.run_seed not in plan.seeds else f"seeds {list(plan.seeds)} control {SEED_CONTROLS}"]
    if plan.profile.name != plan.run_profile:
        notes.append(f"validated on the {plan.profile.name!r} ladder; the run trained (and tuned its rates) on "
                     f"{plan.run_profile!r}")
    if plan.template_changed:
        notes.append("the framework file changed since the run: the run's recorded baseline code was validated")
    return {
        "run_dir": str(plan.run_dir), "framework": plan.settings.framework, "profile": plan.profile.name,
        "run_profile": plan.run_profile, "seeds": list(plan.seeds), "run_seed": plan.run_seed, "level": plan.level,
        "bonferroni_level": adjusted, "rungs": list(plan.rungs), "largest_rung": plan.largest_rung,
        "setup": plan.setup, "designs_with_verified_rung": plan.run.valid_designs,
        "baseline": {**base.to_dict(), "learning_rate": plan.learning_rate(base),
                     "learning_rate_source": base.learning_rate_source,
                     "losses": _jsonable(base_losses)},
        "designs": designs,
        "trainings": {"planned": len(list(plan.jobs())), "trained_now": outcome.trained, "from_journal": outcome.reused,
                      "failed_by_design": failures, "unfinished": outcome.unfinished},
        "complete": not outcome.unfinished,
        "notes": notes,
    }


def write_outputs(summary: dict[str, Any], out_dir: Path) -> dict[str, Path]:
    out_dir.mkdir(parents=True, exist_ok=True)
    paths = {"json": out_dir / JSON_FILE, "markdown": out_dir / MARKDOWN_FILE}
    write_json_atomic(paths["json"], summary)
    tmp = paths["markdown"].with_name(f".{MARKDOWN_FILE}.tmp")
    tmp.write_text(render_markdown(summary), encoding="utf-8")
    tmp.replace(paths["markdown"])
    return paths


def render_markdown(summary: dict[str, Any]) -> str:
    level = f"{summary['level']:.0%}"
    lines = [f"# Validation of {summary['run_dir']}", "",
             f"Framework {summary['framework']}, ladder {summary['profile']!r} (rungs {', '.join(summary['rungs'])}), "
             f"seeds {summary['seeds']}. Differences are design minus baseline held-out loss per seed (negative: "
             f"the design is better), paired on the seed; {level} t intervals; a design *wins* at a rung when the "
             "interval's upper bound is below zero.", ""]
    lines += [f"- {note}" for note in summary["notes"]]
    base = summary["baseline"]
    lines += [f"- baseline learning rate {base['learning_rate']:.3g} ({base['learning_rate_source']})", ""]
    for design in summary["designs"]:
        lines += _design_section(summary, design, level)
    t = summary["trainings"]
    lines += ["## Trainings", "", f"{t['planned']} planned: {t['trained_now']} trained now (fitness-cache hits "
              f"included), {t['from_journal']} from the journal."]
    lines += [f"- failed (the design's fault, kept): {line}" for line in t["failed_by_design"]]
    lines += [f"- unfinished (rerun `openevolve validate` to retry): {line}" for line in t["unfinished"]]
    return "\n".join(lines) + "\n"


def _design_section(summary: dict[str, Any], design: dict[str, Any], level: str) -> list[str]:
    confident = "confident" if design["confident"] else "not confident"
    utility = "n/a" if design["utility"] is None else f"{design['utility']:+.4f}"
    lines = [f"## Design {design['id']}", "",
             f"{design['operator'] or 'design'}; run utility {utility}, confidence {design['confidence']:.2f} "
             f"({confident}), verified in the run at {', '.join(design['rungs_verified']) or 'no rung'}; learning rate "
             f"{design['learning_rate']:.3g} ({design['learning_rate_source']}).", "",
             f"| rung | N | baseline loss | design loss | mean diff | {level} CI | t-test p | Wilcoxon p | "
             "lower on | verdict |", "|---|---|---|---|---|---|---|---|---|---|"]
    by_note: dict[str, list[str]] = {}  # one line per note, naming the rungs it applies to
    for rung, c in design["rungs"].items():
        base = _mean_sd(summary["baseline"]["losses"].get(rung, {}))
        mine = _mean_sd(design["losses"].get(rung, {}))
        ci = "-" if c["ci_low"] is None else f"[{c['ci_low']:+.4f}, {c['ci_high']:+.4f}]"
        n = f"{c['n_params']:,}" if c["n_params"] else "-"
        lines.append(f"| {rung} | {n} | {base} | {mine} | {_num(c['mean'], '+.4f')} | {ci} | "
                     f"{_num(c['t_p_value'], '.3g')} | {_num(c['wilcoxon_p_value'], '.3g')} | "
                     f"{c['lower_on']}/{c['n']} | {c['verdict']} |")
        for note in c["notes"]:
            by_note.setdefault(note, []).append(rung)
    verdict = _largest_verdict(design["rungs"][summary["largest_rung"]])
    lines += ["", f"**Still wins at the largest rung ({summary['largest_rung']}): {verdict}.**"]
    if len(summary["designs"]) > 1 and design["wins_after_bonferroni"] is not None:
        held = "yes" if design["wins_after_bonferroni"] else "no"
        lines.append(f"With a Bonferroni correction over {len(summary['designs'])} designs "
                     f"({summary['bonferroni_level']:.1%} interval): {held}.")
    lines += [""] + [f"- {', '.join(rungs)}: {note}" for note, rungs in by_note.items()] + ([""] if by_note else [])
    return lines


def summary_lines(summary: dict[str, Any]) -> list[str]:
    """The printed summary: one line per design at the largest rung."""
    rung = summary["largest_rung"]
    lines = []
    for design in summary["designs"]:
        c = design["rungs"][rung]
        ci = ("no interval" if c["ci_low"] is None
              else f"{summary['level']:.0%} CI [{c['ci_low']:+.4f}, {c['ci_high']:+.4f}]")
        lines.append(f"{design['id'][:8]} ({'confident' if design['confident'] else 'not confident'}) at {rung}: "
                     f"mean diff {_num(c['mean'], '+.4f')} over {c['n']} seeds, {ci}, t-test p "
                     f"{_num(c['t_p_value'], '.3g')}; still wins: {_largest_verdict(c)}")
    if not summary["complete"]:
        lines.append(f"{len(summary['trainings']['unfinished'])} trainings unfinished: rerun to retry them")
    return lines


def _largest_verdict(comparison: dict[str, Any]) -> str:
    return {"wins": "yes", "loses": "no (the baseline is better)",
            "inconclusive": "no (inconclusive: the interval includes zero)",
            "no interval": "undecided (no interval: validate with --seeds 3 or more)",
            "no data": "undecided (no seed trained on both sides)"}[comparison["verdict"]]


def _losses(results: list[TrainingResult]) -> dict[str, dict[str, dict[int, float]]]:
    table: dict[str, dict[str, dict[int, float]]] = {}
    for r in results:
        if r.outcome == "ok" and r.loss is not None:
            table.setdefault(r.design_id, {}).setdefault(r.rung, {})[r.seed] = r.loss
    return table


def _jsonable(losses: dict[str, dict[int, float]]) -> dict[str, dict[str, float]]:
    return {rung: {str(seed): loss for seed, loss in by_seed.items()} for rung, by_seed in losses.items()}


def _mean_sd(by_seed: dict[Any, float]) -> str:
    values = list(by_seed.values())
    if not values:
        return "-"
    if len(values) == 1:
        return f"{values[0]:.4f}"
    return f"{pystats.mean(values):.4f} ± {pystats.stdev(values):.4f}"


def _num(value: float | None, spec: str) -> str:
    return "-" if value is None else format(value, spec)
