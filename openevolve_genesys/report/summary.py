"""The one-page ``summary.md`` of a run: the best designs and what they changed, what the budget paid for,
which operators helped, and what the fitness cache saved."""

from __future__ import annotations

import difflib
import json
from collections import Counter, defaultdict
from pathlib import Path
from typing import Any

from openevolve_genesys.outcomes import CHARGED
from openevolve_genesys.controller.ledger import SeedVerifications
from openevolve_genesys.controller.repair import RepairStats
from openevolve_genesys.evaluation.program import ProgramError, split_block
from openevolve_genesys.report.cache_savings import CacheReport
from openevolve_genesys.report.load import RunData
from openevolve_genesys.report.noop import noop_lines, noop_summary
from openevolve_genesys.report.plots import signed
from openevolve_genesys.selection.credit import OPERATORS_FILE, credit_table
from openevolve_genesys.selection.records import DesignRecord
from openevolve_genesys.selection.valuation import baseline_seed_noise

PLOT_TITLES = {"scaling_curves": "Scaling curves of the top designs against the baseline",
               "best_utility": "Best utility over charged attempts and over compute seconds",
               "quadrants": "Utility x confidence quadrants",
               "lineage": "Lineage of the best design"}


def block_diff(baseline_code: str, code: str, name: str) -> str:
    """Unified diff of the EVOLVE-BLOCK only: the fixed contract around it never changes."""
    try:
        before, after = split_block(baseline_code).block, split_block(code).block
    except ProgramError as err:
        return f"(no diff: {err.message})"
    lines = difflib.unified_diff(before.splitlines(), after.splitlines(), "baseline EVOLVE-BLOCK",
                                 f"{name} EVOLVE-BLOCK", lineterm="", n=2)
    return "\n".join(lines) or "(identical EVOLVE-BLOCK)"


def render_summary(run: RunData, cache: CacheReport, plots: dict[str, Path], top: int = 3) -> str:
    out = [f"# Run report: `{run.path}`", ""]
    out += _overview(run)
    out += ["## Plots", ""] + [f"- [{PLOT_TITLES.get(name, name)}]({path.name})" for name, path in plots.items()]
    out += [""] + _best_designs(run, top) + _budget(run) + _repairs(run) + _spend(run) + _time(run)
    out += noop_lines(noop_summary(run.events))
    out += _operators(run) + _cache(cache)
    return "\n".join(out).rstrip() + "\n"


def write_summary(run: RunData, cache: CacheReport, plots: dict[str, Path], out_dir: Path, top: int = 3) -> Path:
    path = out_dir / "summary.md"
    path.write_text(render_summary(run, cache, plots, top), encoding="utf-8")
    return path


def _overview(run: RunData) -> list[str]:
    designs = [e for e in run.events if e["type"] == "design"]
    verifications = [e for e in run.events if e["type"] == "verify"]
    charged = max((e["attempt"] for e in designs if e.get("attempt") is not None), default=0)
    classes = Counter(e["class"] for e in designs)
    valid = sum(r.valid for r in run.designs)
    budget = run.state.get("max_attempts")
    by_class = ", ".join(f"{n} {c}" for c, n in sorted(classes.items()))
    lines = [f"- Design attempts: {len(designs)} submitted, {charged} charged"
             + (f" of a budget of {budget}" if budget else "") + (f" ({by_class})" if by_class else ""),
             f"- Verifications: {len(verifications)} jobs "
             f"({', '.join(f'{n} {c}' for c, n in sorted(Counter(e['class'] for e in verifications).items())) or 'none'})"
             + _seed_runs(run),
             f"- Designs recorded: {len(run.designs)} ({valid} valid, {len(run.designs) - valid} invalid), "
             f"values from `{run.checkpoint.relative_to(run.path)}`"]
    checkpoint_attempts = max((r.iteration for r in run.designs if r.iteration is not None), default=0)
    if checkpoint_attempts < charged:
        lines.append(f"- Note: the history has {charged} charged attempts but the latest checkpoint only "
                     f"{checkpoint_attempts}; resume the run (--resume) to save the newest designs' values")
    best = run.records.get(run.best_id or "")
    if best is not None:
        lines.append(f"- **Best design: `{best.id}`** ({_operator(best, run)}), utility {signed(best.utility)}, "
                     f"confidence {best.confidence:.2f}, verified at {len(best.rungs)} rung(s)")
    else:
        lines.append("- No valued design yet, so no best design")
    return lines + [""]


def _seed_runs(run: RunData) -> str:
    """The verifications spent on further seeds (selector.seed_verification_share), when there were any."""
    seeds = SeedVerifications.of(run.events)
    if not seeds.runs:
        return ""
    return (f"; {seeds.runs} of them seed verifications ({seeds.ok} ok, {seeds.seconds:.0f} s): a design trained "
            "again at a rung it has, at its next seed")


def _operator(record: DesignRecord, run: RunData) -> str:
    return "baseline" if record.id == run.baseline_id else str(record.operator.get("operator", "?"))


def _best_designs(run: RunData, top: int) -> list[str]:
    ranked = run.ranked(top)
    best = run.records.get(run.best_id or "")
    if best is not None and best.id != run.baseline_id and best.utility is not None and best not in ranked:
        ranked.append(best)
    out = [f"## Top {len(ranked) or ''} designs by utility".replace("  ", " "), ""]
    if not ranked:
        return out + ["No valid design has a utility yet.", ""]
    level = next((r.forecast["level"] for r in ranked if r.forecast and "level" in r.forecast), 0.8)
    out += [f"| design | operator | seed | utility | {level:.0%} interval | p_better | confidence | extrapolated "
            "| loss by rung |", "| --- | --- | --- | --- | --- | --- | --- | --- | --- |"]
    for r in ranked:
        forecast = r.forecast or {}
        interval = f"[{signed(forecast.get('low'))}, {signed(forecast.get('high'))}]" if forecast else "n/a"
        p_better = f"{forecast['p_better']:.2f}" if forecast.get("p_better") is not None else "n/a"
        reach = f"{forecast['extrapolation']:.2f} e-folds" if forecast.get("extrapolation") is not None else "n/a"
        losses = ", ".join(f"{x.rung} {x.loss:.4f}" for x in sorted(r.rungs.values(), key=lambda x: x.n_params))
        mark = " (best)" if r.id == run.best_id else ""
        out.append(f"| `{r.id[:8]}`{mark} | {_operator(r, run)} | `{(r.parent_id or '-')[:8]}` | {signed(r.utility)} "
                   f"| {interval} | {p_better} | {r.confidence:.2f} | {reach} | {losses} |")
    out += [""] + _forecast_basis(ranked) + _seed_basis(run)
    codes = run.codes
    baseline_code = codes.get(run.baseline_id, "")
    for r in ranked:
        out += ["", f"### `{r.id}` ({_operator(r, run)})", "", "```diff",
                block_diff(baseline_code, codes[r.id], r.id[:8]) if r.id in codes else "(code not in the history)",
                "```"]
    return out + [""]


def _forecast_basis(ranked: list[DesignRecord]) -> list[str]:
    """What the utilities forecast and the noise and slope prior they rest on (the top design's valuation; the
    population-learned parts are shared by every design)."""
    forecast = next((r.forecast for r in ranked if r.forecast and r.forecast.get("forecasts")), None)
    if forecast is None:
        return []
    return [f"Utility forecasts the {forecast['forecasts']}. Measured by the run: pair noise sd "
            f"{forecast['noise_sd']:.4f} nats ({forecast['noise_dof']:.0f} dof), slope prior "
            f"{forecast['slope_prior_mean']:+.4f} +- {forecast['slope_prior_sd']:.4f} nats per e-fold of N"
            f"{_depth_prior(forecast)} (docs/science.md says how each is estimated)."]


def _depth_prior(forecast: dict) -> str:
    if forecast.get("depth_prior_sd") is None:  # valued before depth was a covariate
        return ""
    return (f" and {forecast['depth_prior_mean']:+.4f} +- {forecast['depth_prior_sd']:.4f} per e-fold of depth at the "
            "same N")


def _seed_basis(run: RunData) -> list[str]:
    """The baseline's seed spread beside the pair noise: what one training run's noise is, measured."""
    baseline = run.records.get(run.baseline_id)
    if baseline is None or not baseline.rungs:
        return []
    seeds = baseline_seed_noise(baseline)
    if seeds.single_run_sd is None:
        return ["", "The baseline trained at one seed, so the run measured no seed spread "
                "(genesys.baseline_seeds: 2 or more measures it)."]
    by_rung = ", ".join(f"{name} {sd:.4f}" for name, sd in seeds.rung_sd.items())
    return ["", f"Baseline seed spread ({seeds.seeds} seeds): sd by rung {by_rung} nats; the noise of a single run "
            f"{seeds.single_run_sd:.4f} nats ({seeds.dof} dof), which bounds the pair noise by "
            f"{seeds.pair_bound:.4f} nats (two independent runs)."]


def _budget(run: RunData) -> list[str]:
    s = run.summary
    out = ["## Budget and stalls (summary.json)", "",
           f"Accounting: {s.get('accounting', '?')}; charged attempts {s.get('charged_attempts', '?')}; a stalled or "
           f"infra job is re-queued up to {s.get('requeue_limit', '?')} times, then quarantined, never charged.", "",
           "| agent | submissions | charged | ok | invalid | stalled | infra | re-queued | quarantined "
           "| stall rate | wasted s | seconds |",
           "| --- | --- | --- | --- | --- | --- | --- | --- | --- | --- | --- | --- |"]
    rows = [(name, stats) for name, stats in (s.get("models") or {}).items()]
    if s.get("verification"):
        rows.append(("verification", s["verification"]))
    for name, stats in rows:
        outcomes: dict[str, Any] = stats.get("outcomes", {})
        out.append(f"| {name} | {stats.get('submissions', 0)} | {stats.get('charged', 0)} | {outcomes.get('ok', 0)} "
                   f"| {outcomes.get('invalid', 0)} | {outcomes.get('stalled', 0)} | {outcomes.get('infra', 0)} "
                   f"| {stats.get('requeued', 0)} | {stats.get('quarantined', 0)} "
                   f"| {stats.get('stall_rate', 0.0):.0%} | {stats.get('wasted_seconds', 0.0):.1f} "
                   f"| {stats.get('seconds', 0.0):.1f} |")
    tuning = s.get("tuning") or {}
    if tuning.get("trials"):
        out += ["", f"Learning-rate tuning: {tuning['trials']} trials for {tuning.get('designs', 0)} designs, "
                    f"{tuning.get('seconds', 0.0):.0f} s (own budget, not charged)."]
    return out + [""]


def _spend(run: RunData) -> list[str]:
    """Tokens and cost per model (summary.json; runs older than prompt counts show completion tokens only)."""
    s = run.summary
    models = s.get("models") or {}
    if not any(stats.get("tokens") or stats.get("prompt_tokens") for stats in models.values()):
        return []  # the offline mutator, or a run older than token counts: nothing was spent
    out = ["## Tokens and cost (summary.json)", "",
           "Every LLM call counts, stalled and failed ones too. A call the server did not count is estimated: "
           "its completion by the streamed chunks, its prompt by characters / 4. Prices are genesys.cost.prices, "
           "US dollars per million tokens.", "",
           "| agent | prompt tokens | completion tokens | of those wasted | calls estimated | cost |",
           "| --- | --- | --- | --- | --- | --- |"]
    for name, stats in models.items():
        out.append(f"| {name} | {stats.get('prompt_tokens', 'n/a')} | {stats.get('tokens', 0)} "
                   f"| {stats.get('wasted_tokens', 0)} | {stats.get('estimated_calls', 'n/a')} "
                   f"| {_dollars(stats.get('cost'))} |")
    spend = s.get("spend")
    if spend and len(models) > 1:
        out.append(f"| all | {spend['prompt_tokens']} | {spend['completion_tokens']} | | | {_dollars(spend['cost'])} |")
    if s.get("stopped_by"):
        out += ["", f"Stopped by a spending cap: {s['stopped_by']}."]
    return out + [""]


def _dollars(cost: float | None) -> str:
    return "unpriced" if cost is None else f"${cost:.4f}"


def _repairs(run: RunData) -> list[str]:
    """What repair rounds cost and saved, folded from the history (runs older than repairs have none)."""
    stats = RepairStats.of(run.events, lambda attempt_class: attempt_class in CHARGED)
    if not stats.rounds:
        return []
    return ["## Repair rounds", "",
            f"{stats.rounds} repair rounds for {stats.attempts} attempts whose child failed a check; "
            f"{stats.saved} attempts saved (the first child failed a check, the final one passed); "
            f"{stats.tokens} tokens and {stats.seconds:.1f} s spent on repairs (counted in the attempts' own).", ""]


def _time(run: RunData) -> list[str]:
    """Where the run's job seconds went (summary.json's ``time``; absent in runs older than time accounting)."""
    time = run.summary.get("time") or {}
    total = sum(time.values())
    if not total:
        return []
    out = ["## Where the time went (summary.json)", "",
           "Seconds summed over every job (jobs in parallel slots overlap; the LLM's are the design agents' "
           "waits); training includes the tune trials'.", "", "| phase | seconds | share |", "| --- | --- | --- |"]
    out += [f"| {phase} | {seconds:.1f} | {seconds / total:.0%} |" for phase, seconds in time.items()]
    return out + [""]


def operator_stats(run: RunData) -> list[tuple[str, int, int, float | None, int]]:
    """Per operator: designs made, valid ones, mean utility gain over the seed, and how many had both values."""
    made: Counter = Counter()
    valid: Counter = Counter()
    gains: dict[str, list[float]] = defaultdict(list)
    for r in run.designs:
        name = str(r.operator.get("operator") or "?")
        made[name] += 1
        valid[name] += r.valid
        seed = run.records.get(r.parent_id or "")
        if r.valid and r.utility is not None and seed is not None and seed.utility is not None:
            gains[name].append(r.utility - seed.utility)
    return [(name, made[name], valid[name], sum(gains[name]) / len(gains[name]) if gains[name] else None,
             len(gains[name])) for name in sorted(made, key=lambda n: (-made[n], n))]


def _operators(run: RunData) -> list[str]:
    stats = operator_stats(run)
    out = ["## Operators", ""]
    if not stats:
        return out + ["No design was recorded, so there are no operator statistics.", ""]
    out += ["| operator | designs | valid | mean utility gain over the seed | valued pairs |",
            "| --- | --- | --- | --- | --- |"]
    out += [f"| {name} | {n} | {v} | {signed(gain)} | {pairs} |" for name, n, v, gain, pairs in stats]
    return out + [""] + _credit(run)


def credit_rows(run: RunData) -> tuple[list[dict[str, Any]], str]:
    """The run's own ``operators.json`` when it wrote one (its credit settings), else the same fold over the
    checkpoint's records with the default settings; and a note saying which."""
    path = run.path / OPERATORS_FILE
    if path.exists():
        try:
            return json.loads(path.read_text()), f"from `{OPERATORS_FILE}`"
        except json.JSONDecodeError:
            pass  # a torn file: the records give the same table
    return credit_table(run.records), "computed from the checkpoint's records with the default credit settings"


def _credit(run: RunData) -> list[str]:
    rows, source = credit_rows(run)
    rows = [r for r in rows if r.get("children")]
    if not rows:
        return []
    out = ["### Operator credit by unit, operator, model and seed quadrant", "",
           f"Gain = child utility minus its seed's; recent reward = mean of max(gain, 0) over the credit window "
           f"after the arm's last detected change, relative to the window's largest (for the seed quadrant: of "
           f"the child's improvement on every earlier design); score = the UCB index credit picks units by "
           f"({source}).", "",
           "| dimension | arm | children | invalid | repeats | improved | mean gain | best gain | recent reward "
           "| score | changes |", "| --- | --- | --- | --- | --- | --- | --- | --- | --- | --- | --- |"]
    for r in rows:
        recent, score = r.get("window_reward"), r.get("score")
        out.append(f"| {r['dimension']} | {r['arm']} | {r['children']} | {r.get('invalid', 0)} | {r.get('repeats', 0)} "
                   f"| {r.get('improved', 0)} | {signed(r.get('mean_gain'))} | {signed(r.get('best_gain'))} "
                   f"| {'-' if recent is None else f'{recent:.2f}'} | {'-' if score is None else f'{score:.2f}'} "
                   f"| {r.get('resets', 0)} |")
    return out + [""]


def _cache(cache: CacheReport) -> list[str]:
    saved = cache.saved_train_seconds
    out = ["## Fitness cache", "",
           f"- Rung results: {cache.results} (baseline, design attempts and verifications; {cache.failed_evaluations} "
           "failed evaluations are never cached and not counted)",
           f"- Answered by the code hash: {cache.code_hits} ({cache.share('code'):.0%}); by the functional hash: "
           f"{cache.functional_hits} ({cache.share('functional'):.0%}); trained: "
           f"{cache.results - cache.code_hits - cache.functional_hits}",
           f"- Training seconds saved: {saved['code'] + saved['functional']:.1f} s ({saved['code']:.1f} by code, "
           f"{saved['functional']:.1f} by function), plus {cache.saved_compile_seconds:.1f} s of compilation; "
           f"training seconds spent: {cache.spent_train_seconds:.1f} s",
           f"- Hits on results trained earlier in this run: {cache.hits_from_this_run}; the other "
           f"{cache.code_hits + cache.functional_hits - cache.hits_from_this_run} came from earlier runs sharing the "
           "cache",
           "- Functional hashes of the run's evaluated designs: "
           + (", ".join(f"{n} {source}" for source, n in sorted(cache.hash_sources.items())) or "none"),
           f"- Collision check ({cache.check}): {len(cache.groups)} functional hash(es) shared by several designs of "
           f"this run, {len(cache.collisions)} inconsistent"]
    if cache.unresolved_designs:
        out.append(f"- {len(cache.unresolved_designs)} design(s) have no known functional hash and are not in the "
                   "check (no hash in the history, none in the fitness cache): "
                   + ", ".join(f"`{d[:8]}`" for d in cache.unresolved_designs))
    for group in cache.groups:
        verdict = "; ".join(group.problems) if group.problems else "consistent"
        spread = "" if group.max_output_difference is None else \
            f", largest output difference {group.max_output_difference:.1e}"
        out.append(f"  - `{group.functional_hash[:12]}`: {', '.join(f'`{d[:8]}`' for d in group.design_ids)} "
                   f"({group.distinct_codes} distinct source(s){spread}): {verdict}")
    return out + [""]
