"""The run's state as a fold over its history: every event of ``history.jsonl`` applied in order.

The live run and a resumed run go through the same ``apply``, so what a resume rebuilds is exactly what
the interrupted run had: design records and programs in the database, the attempt and compute counters,
and the accounting of stalls, re-queues and quarantines.
"""

from __future__ import annotations

import logging
from dataclasses import dataclass
from typing import Any, Iterable, Mapping

from openevolve.database import Program

from openevolve_genesys.controller.accounting import Accounting
from openevolve_genesys.controller.prompt_log import PromptLog
from openevolve_genesys.controller.repair import RepairStats
from openevolve_genesys.evaluation.evaluator import Evaluation
from openevolve_genesys.evaluation.hashing import code_hash
from openevolve_genesys.llm.usage import TokenCount
from openevolve_genesys.selection.database import GenesysDatabase
from openevolve_genesys.selection.records import DesignRecord, RungRecord
from openevolve_genesys.training.rung_result import RungResult, rungs_from_dict

log = logging.getLogger(__name__)
BASELINE_ID = "baseline"


@dataclass
class SeedVerifications:
    """Seed verifications a run spent (summary.json, the report), folded from its ``verify`` lines with a seed."""

    runs: int = 0  # finished ones: ok, failed or quarantined (a re-queued try runs again and is not counted)
    ok: int = 0
    seconds: float = 0.0

    def record(self, event: Mapping[str, Any]) -> None:
        if not event.get("seed") or event.get("requeued"):  # histories older than seed verifications have none
            return
        self.runs += 1
        self.ok += event["outcome"] == "ok"
        self.seconds += event["seconds"]

    def to_dict(self) -> dict[str, Any]:
        return {"runs": self.runs, "ok": self.ok, "seconds": round(self.seconds, 2)}

    @classmethod
    def of(cls, events: Iterable[Mapping[str, Any]]) -> "SeedVerifications":
        stats = cls()
        for event in events:
            if event.get("type") == "verify":
                stats.record(event)
        return stats


class RunLedger:
    def __init__(self, database: GenesysDatabase, accounting: Accounting, max_attempts: int):
        self.database = database
        self.accounting = accounting
        self.max_attempts = max_attempts
        self.attempts = 0  # charged attempts (ok or invalid) only
        self.design_seconds = 0.0
        self.verify_seconds = 0.0
        self.repairs = RepairStats()
        self.seed_verifications = SeedVerifications()

    def apply(self, event: dict[str, Any]) -> None:
        self.accounting.record_time(event.get("timing"), event.get("llm_seconds") or 0.0)
        {"baseline": self._apply_baseline, "design": self._apply_design,
         "verify": self._apply_verification}[event["type"]](event)

    def _apply_design(self, event: dict) -> None:
        charged = self.accounting.charges(event["class"])
        self.accounting.record(event["model"], event["class"], seconds=event["seconds"], tokens=_tokens(event),
                               requeued=event["requeued"], quarantined=event["quarantined"])
        self._apply_tune(event)
        self.repairs.record(event, charged)  # histories older than repair rounds have no "repairs"
        if charged:
            self.attempts = event["attempt"]
            self.design_seconds += event["seconds"]
        if not charged or event["code"] is None:
            log.info("attempt %s: no design (%s, %s: %s)", event["attempt"] or "-", event["class"],
                     event["failure"] or event["outcome"], (event["message"] or _why_event(event))[:200])
            return
        record = DesignRecord(
            id=event["id"], parent_id=event["seed_id"], code_hash=code_hash(event["code"]), iteration=event["attempt"],
            operator=_operator(event),
            outcome=event["outcome"], check=event["metrics"].get("check"),
            rungs=_rung_records(event),
            feedback=_feedback(event), learning_rate=event.get("learning_rate"), tune=event.get("tune"),
        )
        program = Program(id=event["id"], code=event["code"], parent_id=event["seed_id"],
                          iteration_found=event["attempt"], metrics=_numeric(event["metrics"]),
                          metadata={"operator": event["operator"], "outcome": event["outcome"]})
        self.database.add_design(program, record)
        if event.get("prompt_log"):  # absent in histories older than prompt logs
            self._log_prompt(event["id"], PromptLog.from_dict(event["prompt_log"]))
        rate = f", lr {record.learning_rate:.3g}" if record.learning_rate else ""
        log.info("attempt %d/%d: %s from %s -> %s (utility %s%s)", event["attempt"], self.max_attempts,
                 event["operator"], event["seed_id"][:8], event["outcome"],
                 _fmt(self.database.records[event["id"]].utility), rate)

    def _apply_verification(self, event: dict) -> None:
        self.accounting.record_verification(event["class"], seconds=event["seconds"], requeued=event["requeued"],
                                            quarantined=event["quarantined"])
        if self.accounting.charges(event["class"]):
            self.verify_seconds += event["seconds"]
        elif not event["quarantined"]:
            log.info("verification of %s at %s %s: re-queued", event["design_id"][:8], event["rung"], event["class"])
            return  # neither the design's fault nor a result: it runs again
        self.seed_verifications.record(event)
        record = self.database.records[event["design_id"]]
        seed = event.get("seed") or 0  # histories older than seed verifications have none
        if seed:
            self._fold_seed(record, event, seed)
        elif event["outcome"] == "ok":
            record.rungs.update(_rung_records(event))
        else:
            record.failed_rungs[event["rung"]] = event["outcome"]
        self.database.update_record(record)
        log.info("verified %s at %s%s -> %s (utility %s, confidence %s)", event["design_id"][:8], event["rung"],
                 f" seed {seed}" if seed else "", event["outcome"], _fmt(record.utility), _fmt(record.confidence))

    def _fold_seed(self, record: DesignRecord, event: dict, seed: int) -> None:
        """A seed verification's loss joins the rung's ``seed_losses`` at position ``seed``; a failed one stops
        further seed verifications there (the design keeps its rung: seed 0 trained)."""
        rung = event["rung"]
        if event["outcome"] != "ok":
            record.failed_seeds[rung] = event["outcome"]
            return
        verified = record.rungs.get(rung)
        if verified is None:
            raise ValueError(f"seed verification of {record.id} at {rung}, seed {seed}: the design has no result at "
                             f"{rung} to add a seed to (a seed verification follows the rung's own)")
        baseline = self.database.records[BASELINE_ID].rungs.get(rung)
        loss = RungResult.from_dict(event["rungs"][rung], rung).final_eval_loss
        verified.add_seed_loss(seed, loss, len(baseline.losses) if baseline else 0)

    def _apply_baseline(self, event: dict) -> None:
        record = DesignRecord(id=BASELINE_ID, parent_id=None, code_hash=code_hash(event["code"]), iteration=0,
                              operator={"operator": "baseline"}, outcome="ok", check=None,
                              rungs=_rung_records(event),
                              feedback="", learning_rate=event.get("learning_rate"), tune=event.get("tune"))
        self._apply_tune(event)
        program = Program(id=BASELINE_ID, code=event["code"], iteration_found=0, metrics=_numeric(event["metrics"]))
        self.database.add_design(program, record)

    def _log_prompt(self, program_id: str, prompt: PromptLog) -> None:
        """Into OpenEvolve's ``Program.prompts`` of the checkpoints, in its shape, which its visualizer shows."""
        usage = prompt.token_usage
        self.database.log_prompt(program_id, prompt.template_key, {"system": prompt.system, "user": prompt.user},
                                 responses=[r.text for r in prompt.replies],
                                 token_usage=usage.to_dict() if usage else None)

    def _apply_tune(self, event: dict) -> None:
        tune = event.get("tune")  # absent in runs without tune mode and in histories older than it
        if tune:
            self.accounting.record_tuning(tune["trained"], tune["seconds"])


def _operator(event: dict) -> dict[str, Any]:
    """What made the child, as credit assignment reads it (histories older than credit have no quadrant)."""
    operator = {"unit": event["unit"], "operator": event["operator"], "model": event["model"]}
    if "quadrant" in event:
        operator["quadrant"] = event["quadrant"]
    return operator


def curve_text(record: DesignRecord) -> str:
    """A design's verified rungs and value, as the prompt shows them."""
    rungs = sorted(record.rungs.values(), key=lambda r: r.n_params)
    points = ", ".join(f"{r.rung} (N={r.n_params:,}): {r.loss:.4f}" for r in rungs) or "not verified yet"
    return f"eval loss by rung: {points}; utility {_fmt(record.utility)}, confidence {_fmt(record.confidence)}"


def event_times(evaluation: Evaluation | None) -> dict[str, Any]:
    """A history event's time accounting: the job's seconds by phase, and its training seconds (trials included)."""
    timing = evaluation.timing if evaluation is not None else {}
    return {"timing": timing, "train_seconds": timing.get("train", 0.0)}


def short_artifacts(evaluation: Evaluation | None) -> dict:
    if evaluation is None:
        return {}
    keep = ("message", "notes", "learning_curves", "trained_rungs", "noop_probe")
    return {k: (v[-2000:] if isinstance(v, str) else v) for k, v in evaluation.artifacts.items() if k in keep}


def _tokens(event: dict) -> TokenCount:
    """A design line's tokens; histories older than token counts have none, older than prompt counts only
    the completion tokens."""
    return TokenCount(event.get("prompt_tokens", 0), event.get("tokens", 0), event.get("tokens_estimated", False))


def _why_event(event: dict) -> str:
    return str(event.get("artifacts", {}).get("message", ""))


def _rung_records(event: Mapping[str, Any]) -> dict[str, RungRecord]:
    """A history line's rungs (JSON) as the selector's records. A baseline's carry its seeds' losses; a
    design's, and a baseline's from before seeds, do not."""
    return {name: RungRecord(rung=name, n_params=r.n_params, loss=r.final_eval_loss, seconds=r.train_seconds,
                             cache_hit=r.cache_hit, seed_losses=r.seed_losses)
            for name, r in rungs_from_dict(event["rungs"]).items()}


def _feedback(event: dict) -> str:
    parts = [event.get("message") or "", "\n".join(event.get("notes") or []),
             event.get("artifacts", {}).get("message", "")]
    return "\n".join(p for p in parts if p)[:4000]


def _numeric(metrics: dict) -> dict:
    return {k: v for k, v in metrics.items() if isinstance(v, (int, float, str)) or v is None}


def _fmt(value: float | None) -> str:
    return "n/a" if value is None else f"{value:+.4f}"
