"""One evolution run: the baseline, then design attempts and verifications interleaved on a worker pool.

Read it top to bottom: set-up -> baseline -> the loop (choose a job, run it in a worker thread, record
its result) -> checkpoints and the best program. The worker threads only wait: each evaluation runs in
its own sandboxed process, so a hung program is reaped by the sandbox's heartbeat limit and can never
poison the next evaluation (both defects of OpenEvolve 0.4.0's process pool).
"""

from __future__ import annotations

import json
import logging
import os
import random
import signal
import uuid
from concurrent.futures import FIRST_COMPLETED, Future, ThreadPoolExecutor, wait
from pathlib import Path
from typing import Any

from openevolve.database import Program

from openevolve_genesys.config import RunConfig
from openevolve_genesys.controller.history import RunLog, write_json_atomic
from openevolve_genesys.controller.jobs import DesignAttempt, Verification, run_design_attempt, run_verification
from openevolve_genesys.controller.llm import llm_timeout, make_design_agent
from openevolve_genesys.evaluation.evaluator import Evaluation, ScalingLawEvaluator
from openevolve_genesys.evaluation.hashing import code_hash
from openevolve_genesys.evaluation.program import block_classes
from openevolve_genesys.prompts.sampler import PromptRequest, PromptSampler, ReferenceDesign
from openevolve_genesys.selection.budgets import rung_budgets, rung_usage
from openevolve_genesys.selection.database import GenesysDatabase
from openevolve_genesys.selection.records import DesignRecord, RungRecord
from openevolve_genesys.selection.selector import GenesysSelector

log = logging.getLogger(__name__)
BASELINE_ID = "baseline"


class GenesysRun:
    def __init__(self, config: RunConfig, output_dir: str | os.PathLike, *, iterations: int | None = None):
        self.config = config
        self.output = Path(output_dir)
        self.output.mkdir(parents=True, exist_ok=True)
        self.max_attempts = iterations if iterations is not None else config.openevolve.max_iterations
        g = config.genesys
        self.evaluator = ScalingLawEvaluator(g.evaluator)
        self.rungs = [r.name for r in self.evaluator.profile.rungs]
        self.sampler = PromptSampler(g.run.templates_dir or None, g.run.reference_library or None)
        self.llm, self.agent_description = make_design_agent(config)
        self.llm_timeout = llm_timeout(config)
        self.database = GenesysDatabase(config.openevolve.database, baseline_id=BASELINE_ID,
                                        target_n=g.evaluator.target_n, noise_sd=g.selector.noise_sd,
                                        slope_prior_sd=g.selector.slope_prior_sd)
        self.rng = random.Random(config.openevolve.random_seed)
        units = [name for name in block_classes(self.evaluator.template) if name != "Mixer"]
        self.selector = GenesysSelector(g.selector, self.rungs, units,
                                        self.sampler.library_keys(g.evaluator.framework), self.rng)
        self.history = RunLog(self.output / "history.jsonl")
        self.attempts = 0
        self.design_seconds = 0.0
        self.verify_seconds = 0.0
        self._in_flight: set[tuple[str, str]] = set()  # (design, rung) being verified

    # -- the run ------------------------------------------------------------------------------
    def run(self, *, resume: bool = False) -> DesignRecord:
        if resume and self._replay():
            log.info("resumed: %d designs, %d attempts used of %d", len(self.database.records), self.attempts,
                     self.max_attempts)
        else:
            self._evaluate_baseline()
        previous = signal.signal(signal.SIGINT, self._interrupted)
        try:
            self._loop()
        finally:
            signal.signal(signal.SIGINT, previous)
        self.save()
        return self.database.best_design()

    def _loop(self) -> None:
        workers = self.config.genesys.run.workers
        pool = ThreadPoolExecutor(max_workers=workers, thread_name_prefix="genesys-job")
        pending: dict[Future, Any] = {}
        try:
            while True:
                while len(pending) < workers:
                    job = self._next_job(designs_in_flight=sum(isinstance(j, DesignAttempt) for j in pending.values()))
                    if job is None:
                        break
                    pending[pool.submit(self._execute, job)] = job
                if not pending:
                    return
                done, _ = wait(pending, return_when=FIRST_COMPLETED)
                for future in done:
                    pending.pop(future)
                    self._record(future.result())
                    self._checkpoint_if_due()
        finally:
            pool.shutdown(wait=False, cancel_futures=True)

    def _next_job(self, designs_in_flight: int) -> DesignAttempt | Verification | None:
        progress = min(1.0, self.attempts / max(self.max_attempts, 1))
        share = self.config.genesys.selector.verify_share
        total = self.design_seconds + self.verify_seconds
        if total == 0 or self.verify_seconds <= share * total or self.attempts + designs_in_flight >= self.max_attempts:
            verify = self.selector.select_verification(self.database.records, BASELINE_ID, progress,
                                                       busy=self._in_flight)
            if verify is not None:
                self._in_flight.add((verify.design_id, verify.rung))
                return Verification(verify.design_id, verify.rung)
        if self.attempts + designs_in_flight >= self.max_attempts:
            return None
        choice = self.selector.select_design(self.database.records, BASELINE_ID, progress)
        return self._design_attempt(choice)

    def _design_attempt(self, choice: Any) -> DesignAttempt:
        seed = self.database.get(choice.seed_id)
        record = self.database.records[choice.seed_id]
        references = [ReferenceDesign(rid, self.database.records[rid].operator.get("operator", "baseline"),
                                      _curve(self.database.records[rid]), self.database.get(rid).code)
                      for rid in choice.reference_ids]
        request = PromptRequest(
            framework=self.evaluator.settings.framework, seed_code=seed.code, seed_curve=_curve(record),
            unit=choice.unit, attempt=self.attempts + 1, instruction=choice.instruction,
            references=references, library_refs=choice.library_refs, feedback=record.feedback,
        )
        return DesignAttempt(choice.seed_id, choice.unit, self.sampler.build(request))

    def _execute(self, job: DesignAttempt | Verification) -> DesignAttempt | Verification:
        if isinstance(job, DesignAttempt):
            seed_code = self.database.get(job.seed_id).code
            return run_design_attempt(job, seed_code, self.llm, self.llm_timeout, self.evaluator, self.rungs[:1])
        return run_verification(job, self.database.get(job.design_id).code, self.evaluator)

    # -- recording ----------------------------------------------------------------------------
    def _record(self, job: DesignAttempt | Verification) -> None:
        if isinstance(job, Verification):
            self._in_flight.discard((job.design_id, job.rung))
            self.verify_seconds += job.seconds
            event = {"type": "verify", "design_id": job.design_id, "rung": job.rung,
                     "outcome": job.evaluation.outcome, "rungs": job.evaluation.rungs,
                     "metrics": job.evaluation.metrics, "seconds": job.seconds}
            self.history.append(event)
            self._apply_verification(event)
            return
        self.attempts += 1
        self.design_seconds += job.seconds
        evaluation = job.evaluation
        event = {"type": "design", "attempt": self.attempts, "id": str(uuid.uuid4()), "seed_id": job.seed_id,
                 "unit": job.unit, "operator": job.operator, "model": job.model, "failure": job.failure,
                 "message": job.message, "code": job.child_code, "notes": job.notes, "seconds": job.seconds,
                 "llm_seconds": job.llm_seconds,
                 "outcome": evaluation.outcome if evaluation else job.failure,
                 "rungs": evaluation.rungs if evaluation else {}, "metrics": evaluation.metrics if evaluation else {},
                 "artifacts": _short_artifacts(evaluation)}
        self.history.append(event)
        self._apply_design(event)

    def _apply_design(self, event: dict) -> None:
        if event["code"] is None:
            log.info("attempt %d: no child (%s: %s)", event["attempt"], event["failure"], event["message"][:200])
            return
        record = DesignRecord(
            id=event["id"], parent_id=event["seed_id"], code_hash=code_hash(event["code"]), iteration=event["attempt"],
            operator={"unit": event["unit"], "operator": event["operator"], "model": event["model"]},
            outcome=event["outcome"], check=event["metrics"].get("check"),
            rungs={name: _rung_record(name, r) for name, r in event["rungs"].items()},
            feedback=_feedback(event),
        )
        program = Program(id=event["id"], code=event["code"], parent_id=event["seed_id"],
                          iteration_found=event["attempt"], metrics=_numeric(event["metrics"]),
                          metadata={"operator": event["operator"], "outcome": event["outcome"]})
        self.database.add_design(program, record)
        log.info("attempt %d/%d: %s from %s -> %s (utility %s)", event["attempt"], self.max_attempts,
                 event["operator"], event["seed_id"][:8], event["outcome"],
                 _fmt(self.database.records[event["id"]].utility))

    def _apply_verification(self, event: dict) -> None:
        record = self.database.records[event["design_id"]]
        if event["outcome"] == "ok":
            for name, r in event["rungs"].items():
                record.rungs[name] = _rung_record(name, r)
        else:
            record.failed_rungs[event["rung"]] = event["outcome"]
        self.database.update_record(record)
        log.info("verified %s at %s -> %s (utility %s, confidence %s)", event["design_id"][:8], event["rung"],
                 event["outcome"], _fmt(record.utility), _fmt(record.confidence))

    def _evaluate_baseline(self) -> None:
        evaluation = self.evaluator.baseline()
        code = self.evaluator.template
        event = {"type": "baseline", "id": BASELINE_ID, "code": code, "rungs": evaluation.rungs,
                 "metrics": evaluation.metrics}
        self.history.append(event)
        self._apply_baseline(event)

    def _apply_baseline(self, event: dict) -> None:
        record = DesignRecord(id=BASELINE_ID, parent_id=None, code_hash=code_hash(event["code"]), iteration=0,
                              operator={"operator": "baseline"}, outcome="ok", check=None,
                              rungs={name: _rung_record(name, r) for name, r in event["rungs"].items()},
                              feedback="")
        program = Program(id=BASELINE_ID, code=event["code"], iteration_found=0, metrics=_numeric(event["metrics"]))
        self.database.add_design(program, record)

    # -- state --------------------------------------------------------------------------------
    def _replay(self) -> bool:
        events = list(self.history.events())
        if not any(e["type"] == "baseline" for e in events):
            return False
        for event in events:
            if event["type"] == "baseline":
                self._apply_baseline(event)
            elif event["type"] == "design":
                self.attempts = max(self.attempts, event["attempt"])
                self.design_seconds += event["seconds"]
                self._apply_design(event)
            elif event["type"] == "verify":
                self.verify_seconds += event["seconds"]
                self._apply_verification(event)
        state_path = self.output / "state.json"
        if state_path.exists():
            self.selector.load_state_dict(json.loads(state_path.read_text())["selector"])
        return True

    def _state(self) -> dict[str, Any]:
        records = self.database.records
        designs = sum(r.valid and r.id != BASELINE_ID for r in records.values())
        settings = self.config.genesys.selector
        return {"attempts": self.attempts, "max_attempts": self.max_attempts,
                "seconds": {"design": self.design_seconds, "verify": self.verify_seconds},
                "rung_budgets": rung_budgets(self.rungs, designs, settings.halving_ratio, settings.min_per_rung),
                "rung_usage": rung_usage(records.values(), self.rungs, BASELINE_ID),
                "selector": self.selector.state_dict()}

    def _checkpoint_if_due(self) -> None:
        write_json_atomic(self.output / "state.json", self._state())
        interval = self.config.openevolve.checkpoint_interval
        if interval and self.attempts and self.attempts % interval == 0:
            self.save()

    def save(self) -> None:
        """An OpenEvolve checkpoint plus our records, state and the best program, each written atomically."""
        write_json_atomic(self.output / "state.json", self._state())
        checkpoint = self.output / "checkpoints" / f"checkpoint_{self.attempts}"
        self.database.save(str(checkpoint), self.attempts)
        best = self.database.best_design()
        if best is not None:
            (self.output / "best_program.py").write_text(self.database.get(best.id).code)
            write_json_atomic(self.output / "best_program_info.json", best.to_dict())

    def _interrupted(self, signum: int, frame: Any) -> None:
        log.warning("interrupted: saving the run state to %s (resume with --resume)", self.output)
        self.save()
        logging.shutdown()
        # Sandboxed children notice their parent is gone and stop themselves.
        os._exit(130)


def _rung_record(name: str, result: dict) -> RungRecord:
    return RungRecord(rung=name, n_params=result["n_params"], loss=result["final_eval_loss"],
                      seconds=result.get("train_seconds", 0.0), cache_hit=result.get("cache_hit"))


def _curve(record: DesignRecord) -> str:
    rungs = sorted(record.rungs.values(), key=lambda r: r.n_params)
    points = ", ".join(f"{r.rung} (N={r.n_params:,}): {r.loss:.4f}" for r in rungs) or "not verified yet"
    return f"eval loss by rung: {points}; utility {_fmt(record.utility)}, confidence {_fmt(record.confidence)}"


def _feedback(event: dict) -> str:
    parts = [event.get("message") or "", "\n".join(event.get("notes") or []),
             event.get("artifacts", {}).get("message", "")]
    return "\n".join(p for p in parts if p)[:4000]


def _short_artifacts(evaluation: Evaluation | None) -> dict:
    if evaluation is None:
        return {}
    keep = ("message", "notes", "learning_curves", "trained_rungs")
    return {k: (v[-2000:] if isinstance(v, str) else v) for k, v in evaluation.artifacts.items() if k in keep}


def _numeric(metrics: dict) -> dict:
    return {k: v for k, v in metrics.items() if isinstance(v, (int, float, str)) or v is None}


def _fmt(value: float | None) -> str:
    return "n/a" if value is None else f"{value:+.4f}"
