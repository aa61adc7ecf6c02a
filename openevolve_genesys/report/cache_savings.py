"""What the fitness cache saved a run, and whether sharing results by functional hash was safe.

Every rung result in the history says how it was obtained (``cache_hit``: None = trained, "code" = the
normalised source was known, "functional" = the mixer's functional hash was known). A cached result carries
the ``train_seconds`` of the training that produced it, which is what the hit saved.

Collision check: designs are grouped by functional hash. A code hit records no hash, so a design's hash is
taken from its own events, else from a design of this run with the same code hash, else from the fitness
cache's code table (the very lookup that answered the hit). Two checks then run per group:
- recorded results: at one rung, every member must have the same outcome and (within ``LOSS_TOLERANCE``)
  the same loss;
- outputs: members with different code are loaded and run, in the sandbox (it is evolved code), with the
  hash's fixed initialisation on an input the hash never saw; their outputs must agree within the hash's
  own rounding (``OUTPUT_TOLERANCE``). This is the check that catches two functions the hash merged.
"""

from __future__ import annotations

import functools
import math
import os
from collections import Counter, defaultdict
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Callable

from openevolve_genesys.evaluation.hashing import code_hash
from openevolve_genesys.outcomes import CHARGED, Outcome
from openevolve_genesys.training.rung_result import CacheHit, rungs_from_dict

LOSS_TOLERANCE = 1e-3  # nats: the same function trained twice on the same data order differs by far less
OUTPUT_TOLERANCE = 2.0 ** -10  # relative: the functional hash keeps 10 mantissa bits
PROBE = {"d_model": 32, "n_heads": 4, "batch": 2, "seq_len": 32, "init_seed": 0, "input_seed": 1}


@dataclass(frozen=True)
class RungEntry:
    """One rung of one evaluation as this report counts it: a trained or cached result, or a failed verification."""

    position: int  # index of the event in the history
    design_id: str
    rung: str
    outcome: Outcome
    cache_hit: CacheHit | None
    train_seconds: float
    compile_seconds: float
    loss: float | None


@dataclass
class Group:
    """Designs that share a functional hash, and what the checks found."""

    functional_hash: str
    design_ids: list[str]
    distinct_codes: int
    problems: list[str] = field(default_factory=list)
    max_output_difference: float | None = None  # relative, None when not executed


@dataclass
class CacheReport:
    results: int = 0
    code_hits: int = 0
    functional_hits: int = 0
    hits_from_this_run: int = 0  # the cached result was trained earlier in this same run
    saved_train_seconds: dict[str, float] = field(default_factory=lambda: {"code": 0.0, "functional": 0.0})
    saved_compile_seconds: float = 0.0
    spent_train_seconds: float = 0.0
    failed_evaluations: int = 0  # failures are never cached, so they are not in ``results``
    unresolved_designs: list[str] = field(default_factory=list)  # no functional hash found
    hash_sources: dict[str, int] = field(default_factory=dict)  # designs by where their hash came from
    groups: list[Group] = field(default_factory=list)  # groups with two or more designs
    check: str = ""  # which collision checks ran

    def share(self, kind: str) -> float:
        hits = self.code_hits if kind == "code" else self.functional_hits
        return hits / self.results if self.results else 0.0

    @property
    def collisions(self) -> list[Group]:
        return [g for g in self.groups if g.problems]


def rung_results(events: list[dict[str, Any]]) -> list[RungEntry]:
    """Every rung result of the run (baseline, design attempts, verifications), plus failed verifications."""
    found = []
    for position, event in enumerate(events):
        design_id = event["design_id"] if event["type"] == "verify" else event["id"]
        if event["type"] == "verify" and event.get("outcome") != "ok":
            if event.get("class") in CHARGED:  # a stall or infra fault says nothing about the design
                found.append(RungEntry(position, design_id, event["rung"], event["outcome"], None, 0.0, 0.0, None))
            continue
        for rung, r in rungs_from_dict(event.get("rungs")).items():
            loss = None if math.isnan(r.final_eval_loss) else r.final_eval_loss
            found.append(RungEntry(position, design_id, rung, "ok", r.cache_hit, r.train_seconds, r.compile_seconds,
                                   loss))
    return found


def resolve_functional_hashes(events: list[dict[str, Any]], lookup: Callable[[str], str | None] | None = None
                              ) -> dict[str, tuple[str | None, str]]:
    """Per design id, its functional hash and where it came from: "recorded" in its events, "equal code" in
    the run, "fitness cache" (``lookup``), or "unknown"."""
    codes, recorded = {}, {}
    for event in events:
        design_id = event["design_id"] if event["type"] == "verify" else event["id"]
        if event["type"] != "verify" and event.get("code") and event.get("rungs"):
            codes[design_id] = code_hash(event["code"])
        fhash = (event.get("metrics") or {}).get("functional_hash")
        if fhash:
            recorded.setdefault(design_id, fhash)
    by_code = {codes[d]: h for d, h in recorded.items() if d in codes}
    resolved = {}
    for design_id, chash in codes.items():
        cached = lookup(chash) if lookup and design_id not in recorded and chash not in by_code else None
        resolved[design_id] = ((recorded[design_id], "recorded") if design_id in recorded else
                               (by_code[chash], "equal code") if chash in by_code else
                               (cached, "fitness cache") if cached else (None, "unknown"))
    return resolved


def cache_lookup(path: str | os.PathLike | None = None) -> Callable[[str], str | None] | None:
    """The fitness cache's code -> functional hash lookup, or None when there is no cache file."""
    from openevolve_genesys.evaluation.cache import FitnessCache

    if path is None:
        from openevolve_genesys.training.runtime import cache_root

        path = cache_root() / "fitness.sqlite"  # the evaluator's default when genesys.cache_path is unset
    return FitnessCache(path).functional_hash_for if Path(path).is_file() else None


def cache_savings(events: list[dict[str, Any]], *, lookup: Callable[[str], str | None] | None = None,
                  execute: bool = True) -> CacheReport:
    """Shares, seconds saved and the collision checks for one run's history."""
    results = rung_results(events)
    resolved = resolve_functional_hashes(events, lookup)
    hashes = {design_id: fhash for design_id, (fhash, _) in resolved.items()}
    codes = {e["id"]: e["code"] for e in events if e["type"] != "verify" and e.get("code")}
    report = CacheReport(unresolved_designs=sorted(d for d, h in hashes.items() if h is None),
                         hash_sources=dict(Counter(source for _, source in resolved.values())))
    trained: set[tuple[str, str]] = set()
    for r in results:
        if r.outcome != "ok":
            report.failed_evaluations += 1
            continue
        report.results += 1
        key = (hashes.get(r.design_id) or (f"code:{code_hash(codes[r.design_id])}" if r.design_id in codes
                                            else f"design:{r.design_id}"), r.rung)
        if r.cache_hit is None:
            report.spent_train_seconds += r.train_seconds
            trained.add(key)
            continue
        if r.cache_hit == "code":
            report.code_hits += 1
        else:
            report.functional_hits += 1
        report.saved_train_seconds["code" if r.cache_hit == "code" else "functional"] += r.train_seconds
        report.saved_compile_seconds += r.compile_seconds
        report.hits_from_this_run += key in trained
    report.groups = _groups(hashes, codes)
    _check_results(report.groups, results)
    checks = ["recorded outcomes and losses per rung"]
    to_run = [g for g in report.groups if g.distinct_codes > 1]
    if to_run and execute:
        checks.append(_check_outputs(to_run, codes))
    elif to_run:
        checks.append(f"outputs not compared ({len(to_run)} groups with different code; run without --no-exec)")
    else:
        checks.append("outputs: no group holds different code, so nothing to execute")
    report.check = "; ".join(checks)
    return report


def _groups(hashes: dict[str, str | None], codes: dict[str, str]) -> list[Group]:
    members: dict[str, list[str]] = defaultdict(list)
    for design_id, fhash in hashes.items():
        if fhash:
            members[fhash].append(design_id)
    return [Group(fhash, ids, len({code_hash(codes[i]) for i in ids}))
            for fhash, ids in members.items() if len(ids) > 1]


def _check_results(groups: list[Group], results: list[RungEntry]) -> None:
    by_design: dict[str, list[RungEntry]] = defaultdict(list)
    for r in results:
        by_design[r.design_id].append(r)
    for group in groups:
        by_rung: dict[str, list[RungEntry]] = defaultdict(list)
        for design_id in group.design_ids:
            for r in by_design[design_id]:
                by_rung[r.rung].append(r)
        for rung, rs in sorted(by_rung.items()):
            outcomes = {r.outcome for r in rs}
            losses = [r.loss for r in rs if r.loss is not None]
            if len(outcomes) > 1:
                group.problems.append(f"{rung}: outcomes differ ({', '.join(sorted(outcomes))})")
            elif losses and max(losses) - min(losses) > LOSS_TOLERANCE:
                group.problems.append(f"{rung}: losses differ by {max(losses) - min(losses):.4f} nats")


def _check_outputs(groups: list[Group], codes: dict[str, str]) -> str:
    """Run every member of the groups with different code in one sandboxed process and compare outputs."""
    from openevolve_genesys.evaluation.sandbox import SandboxLimits, run_in_sandbox

    sources = {g.functional_hash: [codes[i] for i in g.design_ids] for g in groups}
    result = run_in_sandbox(f"{__name__}:output_differences", {"groups": sources},
                            SandboxLimits(wall_seconds=900, heartbeat_seconds=300, startup_seconds=300))
    if result.outcome != "ok":
        reason = (result.message or result.reason).strip().splitlines()[-1:] or [result.reason]
        return f"outputs not compared: the sandboxed probe ended {result.outcome} ({reason[0][:200]})"
    for group in groups:
        found = result.value[group.functional_hash]
        group.max_output_difference = found["max_relative_difference"]
        group.problems += [f"could not be run: {e}" for e in found["errors"]]
        if found["max_relative_difference"] is not None and found["max_relative_difference"] > OUTPUT_TOLERANCE:
            group.problems.append(f"mixer outputs differ by {found['max_relative_difference']:.2e} (relative) on "
                                  "a fixed input: a functional-hash collision")
    return (f"outputs of {sum(len(g.design_ids) for g in groups)} designs in {len(groups)} groups with different "
            f"code, run in the sandbox on a fixed input the hash never saw (tolerance {OUTPUT_TOLERANCE:.1e})")


def output_differences(groups: dict[str, list[str]], heartbeat: Callable[[dict], None]) -> dict[str, Any]:
    """Sandbox job: per group, the largest relative difference of a member's mixer output from the first's."""
    import jax
    import jax.numpy as jnp
    import numpy as np
    from flax import nnx

    from openevolve_genesys.evaluation.program import ProgramError, load_program
    from openevolve_genesys.training.model import layer_slots

    x = np.random.default_rng(PROBE["input_seed"]).standard_normal(
        (PROBE["batch"], PROBE["seq_len"], PROBE["d_model"])).astype(np.float32)
    found = {}
    for fhash, sources in groups.items():
        outputs, errors = [], []
        for source in sources:
            try:
                # The run's programs already passed the template check; a hybrid stack (a combination
                # stage's program) is probed at every layer slot it declares, stacked.
                build = load_program(source).build_mixer
                slots = layer_slots(build) or [None]
                with jax.default_device(jax.devices("cpu")[0]), jax.default_matmul_precision("highest"):
                    ys = []
                    for slot in slots:
                        factory = build if slot is None else functools.partial(build, layer=slot[0],
                                                                                n_layers=slot[1])
                        mixer = factory(PROBE["d_model"], PROBE["n_heads"], rngs=nnx.Rngs(PROBE["init_seed"]))
                        ys.append(np.asarray(mixer(jnp.asarray(x)), dtype=np.float64))
                    outputs.append(np.stack(ys))
            except ProgramError as err:
                errors.append(f"{err.kind}: {err.message[:200]}")
            except Exception as err:  # evolved code may raise anything; one broken member must not hide the rest
                errors.append(f"{type(err).__name__}: {str(err)[:200]}")
            heartbeat({"group": fhash[:12]})
        worst = None
        if len(outputs) > 1:
            scale = max(float(np.max(np.abs(outputs[0]))), 1e-6)
            same_shape = [y for y in outputs[1:] if y.shape == outputs[0].shape]
            errors += [f"output shape {y.shape} differs from {outputs[0].shape}" for y in outputs[1:]
                       if y.shape != outputs[0].shape]
            worst = max((float(np.max(np.abs(y - outputs[0]))) / scale for y in same_shape), default=None)
        found[fhash] = {"max_relative_difference": worst, "errors": errors}
    return found
