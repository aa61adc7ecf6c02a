"""One evolution run: the baseline, then design attempts and verifications interleaved on a worker pool.

Read it top to bottom: set-up -> baseline (controller/baseline.py) -> the loop (choose a job, run it in a
worker thread, record its result as a history line) -> checkpoints and the best program. The worker threads only wait: each evaluation runs in
its own sandboxed process, so a hung program is reaped by the sandbox's heartbeat limit and can never
poison the next evaluation (both defects of OpenEvolve 0.4.0's process pool).

In tune mode (``genesys.tune``) the baseline and every new design first get their own learning rate from
a short sweep with its own budget; the rate is recorded with the design and every later rung trains at it.
"""

from __future__ import annotations

import json
import logging
import os
import random
import shutil
import signal
import time
import uuid
from collections import deque
from concurrent.futures import FIRST_COMPLETED, Future, ThreadPoolExecutor, wait
from pathlib import Path
from typing import Any

from tqdm import tqdm

from openevolve_genesys.config import RunConfig
from openevolve_genesys.strict import ConfigError
from openevolve_genesys.controller.accounting import Accounting
from openevolve_genesys.controller.baseline import BaselineJob, adopt_recorded_baseline, evaluate_baseline
from openevolve_genesys.controller.answer import AnswerRules
from openevolve_genesys.controller.breaker import CircuitBreaker, Session
from openevolve_genesys.controller.history import RunLog, write_json_atomic
from openevolve_genesys.controller.jobs import (DesignAttempt, Verification, charge_if_hanging, run_design_attempt,
                                                run_verification)
from openevolve_genesys.controller.ledger import BASELINE_ID, RunLedger, curve_text, event_times, short_artifacts
from openevolve_genesys.controller.prompt_log import PromptLog, template_key
from openevolve_genesys.controller.llm import llm_timeout, make_design_agent
from openevolve_genesys.controller.params import KeptParams
from openevolve_genesys.engine import make_engine
from openevolve_genesys.report.noop import noop_summary
from openevolve_genesys.evaluation.evaluator import Evaluation, ScalingLawEvaluator
from openevolve_genesys.evaluation.program import block_classes
from openevolve_genesys.evaluation.tuning import TuneBudget, TuneResult, evaluate_tuned, tune_learning_rate
from openevolve_genesys.llm.streaming import LLMRequestRejected
from openevolve_genesys.outcomes import charged
from openevolve_genesys.progress import bar_with_logs, evolution_bar, show_evolution
from openevolve_genesys.prompts.sampler import PromptRequest, PromptSampler, ReferenceDesign
from openevolve_genesys.selection.budgets import rung_budgets, rung_usage
from openevolve_genesys.selection.credit import OPERATORS_FILE, credit_table
from openevolve_genesys.selection.database import GenesysDatabase
from openevolve_genesys.selection.records import DesignRecord
from openevolve_genesys.selection.selector import DesignChoice, GenesysSelector
from openevolve_genesys.training.rung_result import rungs_to_dict

log = logging.getLogger(__name__)


class GenesysRun:
    def __init__(self, config: RunConfig, output_dir: str | os.PathLike, *, iterations: int | None = None):
        self.config = config
        self.output = Path(output_dir)
        self.output.mkdir(parents=True, exist_ok=True)
        self.max_attempts = iterations if iterations is not None else config.openevolve.max_iterations
        g = config.genesys
        self.evaluator = ScalingLawEvaluator(g.evaluator)
        # The best designs' trained models are kept in the run folder (genesys.keep_params, controller/params.py).
        self.kept_params = KeptParams(self.output, g.run.keep_params, self.evaluator.template)
        self.engine = self.kept_params.engine(make_engine(g.engine, self.evaluator, g.run.workers, g.run.devices))
        self.rungs = [r.name for r in self.evaluator.profile.rungs]
        self.sampler = PromptSampler(g.run.templates_dir or None, g.run.reference_library or None)
        self.llm, self.agent_description = self._design_agent(config)
        self.llm_timeout = llm_timeout(config)
        # OpenEvolve's own keys for how answers are read: whole-program rewrites, and a cap on a child's length.
        self.answer_rules = AnswerRules(rewrite=not config.openevolve.diff_based_evolution,
                                        max_code_length=config.openevolve.max_code_length or None)
        self.database = GenesysDatabase(config.openevolve.database, baseline_id=BASELINE_ID,
                                        target_n=g.evaluator.target_n, valuation=g.evaluator.valuation,
                                        confidence_threshold=g.selector.confidence_threshold,
                                        policy=self.evaluator.profile.data_policy(),
                                        depths=self.evaluator.profile.depths())
        self.rng = random.Random(config.openevolve.random_seed)
        units = [name for name in block_classes(self.evaluator.template) if name != "Mixer"]
        # The controller picks the model of each attempt itself, so every child is credited to one model.
        self.models = [m.name for m in self.llm.models_cfg]
        profile = self.evaluator.profile
        self.selector = GenesysSelector(g.selector, self.rungs, units,
                                        self.sampler.library_keys(g.evaluator.framework), self.rng, self.models,
                                        rung_steps={r: profile.rung_train(r).steps for r in self.rungs})
        self.history = RunLog(self.output / "history.jsonl")
        # The run folder explains itself: `openevolve report` reads the selector's thresholds from this copy.
        if Path(config.path).resolve() != (self.output / "config.yaml").resolve():
            shutil.copyfile(config.path, self.output / "config.yaml")
        self.accounting = Accounting(requeue_limit=g.run.requeue_limit, charge_all=g.run.accounting == "stock",
                                     prices=g.cost.prices)
        self.ledger = RunLedger(self.database, self.accounting, self.max_attempts)
        self.tune_settings = g.evaluator.tune
        self.tune_budget = TuneBudget(self.tune_settings.budget)
        self._requeued: deque[DesignAttempt | Verification] = deque()  # stalled or infra jobs to run again
        self._in_flight: set[tuple[str, str]] = set()  # (design, rung) being verified
        self.breaker = CircuitBreaker(config.breaker)  # stops the run when the LLM calls keep failing
        self.stopped_by: str | None = None  # the spending cap that ended the run (genesys.cost), if one did
        self._session = Session(time.monotonic(), 0.0, 1)

    def _design_agent(self, config: RunConfig) -> tuple[Any, str]:
        """The LLM ensemble that writes the diffs, and a line saying which (a stage brings its own)."""
        return make_design_agent(config)

    # -- the run ------------------------------------------------------------------------------
    def run(self, *, resume: bool = False) -> DesignRecord:
        if resume and self._replay():
            log.info("resumed: %d designs, %d attempts used of %d", len(self.database.records),
                     self.ledger.attempts, self.max_attempts)
        else:
            self._evaluate_baseline()
        previous = signal.signal(signal.SIGINT, self._interrupted)
        try:
            with bar_with_logs(evolution_bar(self.max_attempts, self.ledger.attempts)) as bar:
                self._loop(bar)
        except LLMRequestRejected as err:
            raise ConfigError(f"the LLM endpoint rejected the request, so every attempt would fail: {err}. "
                              "Check llm.models (name), api_base and the API key; the run is saved, fix it and "
                              "--resume") from None
        finally:
            signal.signal(signal.SIGINT, previous)
            self.engine.shutdown()
            self.kept_params.finish(self.database.records, self.database.confidence_threshold, BASELINE_ID)
            self.save()
        for line in self.accounting.summary_lines():
            log.info("summary: %s", line)
        if self.stopped_by:
            log.info("stopped by a spending cap: %s; raise it and --resume to go on", self.stopped_by)
        return self.database.best_design()

    def _loop(self, bar: tqdm) -> None:
        workers = max(self.config.genesys.run.workers, self.engine.slots)
        pool = ThreadPoolExecutor(max_workers=workers, thread_name_prefix="genesys-job")
        pending: dict[Future, Any] = {}
        # The breaker's share trigger judges this session only: a resume after a fix starts a fresh clock.
        self._session = Session(time.monotonic(), self.accounting.uncharged_seconds, workers)
        try:
            while True:
                while len(pending) < workers:
                    job = self._next_job([*pending.values(), *self._requeued])
                    if job is None:
                        break
                    pending[pool.submit(self._execute, job)] = job
                # One bar for the loop, redrawn whenever jobs finish (and at the start: a resumed run shows
                # where it stands). The jobs get no ladder bars of their own: several train at once in
                # worker threads, and their bars would fight over the terminal's last lines.
                self._show_progress(bar, len(pending))
                if not pending:
                    return
                done, _ = wait(pending, return_when=FIRST_COMPLETED)
                for future in done:
                    pending.pop(future)
                    self._record(future.result())
                    self._checkpoint_if_due()
        finally:
            pool.shutdown(wait=False, cancel_futures=True)

    def _show_progress(self, bar: tqdm, running: int) -> None:
        if bar.disable:
            return  # nothing to gather for a hidden bar
        best = self.database.best_design()
        verified = sum(n for c, n in self.accounting.verification.outcomes.items() if self.accounting.charges(c))
        show_evolution(bar, self.ledger.attempts, best.utility if best else None, verified, running)

    def _next_job(self, in_flight: list[DesignAttempt | Verification]) -> DesignAttempt | Verification | None:
        if self._cap_reached():
            return None  # the jobs in flight finish and are recorded; nothing new starts
        if self._requeued:  # already admitted: a stall or an infra fault does not take its place away
            return self._requeued.popleft()
        designs = [j for j in in_flight if isinstance(j, DesignAttempt)]
        ledger = self.ledger
        progress = min(1.0, ledger.attempts / max(self.max_attempts, 1))
        share = self.config.genesys.selector.verify_share
        total = ledger.design_seconds + ledger.verify_seconds
        budget_spent = ledger.attempts + len(designs) >= self.max_attempts
        verify_turn = share > 0 and (total == 0 or ledger.verify_seconds <= share * total)
        if verify_turn or budget_spent:
            verify = self.selector.select_verification(self.database.records, BASELINE_ID, progress,
                                                       busy=self._in_flight)
            if verify is not None:
                self._in_flight.add((verify.design_id, verify.rung))
                return Verification(verify.design_id, verify.rung,
                                    learning_rate=self.database.records[verify.design_id].learning_rate,
                                    seed=verify.seed)
        if budget_spent:
            return None
        choice = self.selector.select_design(self.database.records, BASELINE_ID, progress,
                                             pending_units=[d.unit for d in designs],
                                             pending_models=[d.model for d in designs])
        return self._design_attempt(choice)

    def _cap_reached(self) -> bool:
        """Whether a spending cap is reached; says so once, with the totals, when it first is."""
        if self.stopped_by is None:
            self.stopped_by = self.config.genesys.cost.cap_reached(self.accounting.spend())
            if self.stopped_by:
                log.warning("stopping: %s; no new jobs start, the ones in flight finish", self.stopped_by)
        return self.stopped_by is not None

    def _design_attempt(self, choice: DesignChoice) -> DesignAttempt:
        seed = self.database.get(choice.seed_id)
        record = self.database.records[choice.seed_id]
        references = [ReferenceDesign(rid, self.database.records[rid].operator.get("operator", "baseline"),
                                      curve_text(self.database.records[rid]), self.database.get(rid).code)
                      for rid in choice.reference_ids]
        request = PromptRequest(
            framework=self.evaluator.settings.framework, seed_code=seed.code, seed_curve=curve_text(record),
            unit=choice.unit, attempt=self.ledger.attempts + 1, instruction=choice.instruction,
            references=references, library_refs=choice.library_refs, feedback=record.feedback,
            tuned=self.tune_settings.enabled, rewrite=self.answer_rules.rewrite,
        )
        index = self._model_index(choice.model)
        return DesignAttempt(choice.seed_id, choice.unit, self.sampler.build(request), model=self.models[index],
                             model_index=index, quadrant=choice.quadrant.value if choice.quadrant else None,
                             credit=choice.credit)

    def _model_index(self, chosen: str | None) -> int:
        """Credit's model, else a draw by the configured weights (from the run's seeded, checkpointed RNG)."""
        if chosen is not None:
            return self.models.index(chosen)
        if len(self.models) == 1:
            return 0
        return self.rng.choices(range(len(self.models)), weights=self.llm.weights)[0]

    def _execute(self, job: DesignAttempt | Verification) -> DesignAttempt | Verification:
        if isinstance(job, DesignAttempt):
            seed_code = self.database.get(job.seed_id).code
            tune, same_job = self.tune_settings.enabled, self.tune_settings.same_job
            return run_design_attempt(job, seed_code, self.llm, self.llm_timeout, self.evaluator, self.rungs[:1],
                                      self.engine, self._tune if tune and not same_job else None,
                                      self._tuned_evaluate if tune and same_job else None, self.answer_rules,
                                      self.config.genesys.run.repair_rounds)
        return run_verification(job, self.database.get(job.design_id).code, self.engine,
                                self.evaluator.baseline_learning_rate, self.evaluator.profile.train.seed)

    def _tune(self, source: str) -> TuneResult:
        """The learning-rate sweep of tune mode, on the run's engine and charged to the tune budget only."""
        return tune_learning_rate(self.evaluator, source, self.tune_settings, engine=self.engine,
                                  budget=self.tune_budget,
                                  baseline_learning_rate=self.evaluator.baseline_learning_rate)

    def _tuned_evaluate(self, runner: Any, source: str, rungs: list[str], seed_source: str | None) -> Evaluation:
        """A design's sweep and first rung in one sandboxed job, the sweep charged to the tune budget only."""
        return evaluate_tuned(runner, self.evaluator.profile, source, rungs, self.tune_settings,
                              budget=self.tune_budget, baseline_learning_rate=self.evaluator.baseline_learning_rate,
                              seed_source=seed_source)

    # -- recording ----------------------------------------------------------------------------
    def _record(self, job: DesignAttempt | Verification) -> None:
        if isinstance(job, Verification):
            self._in_flight.discard((job.design_id, job.rung))
            # "seed" k > 0: a seed verification, trained at the run's seed + k and paired with baseline seed k.
            event = {"type": "verify", "design_id": job.design_id, "rung": job.rung, "seed": job.seed,
                     "outcome": job.evaluation.outcome, "class": job.attempt_class,
                     "rungs": rungs_to_dict(job.evaluation.rungs),
                     "metrics": job.evaluation.metrics, "seconds": job.seconds, **event_times(job.evaluation),
                     **self._retry_fate(job)}
            self.history.append(event)
            self.ledger.apply(event)
            self._keep_params(job.design_id, job.evaluation)
            if not self.accounting.charges(job.attempt_class):
                self.breaker.evaluation_failed(_why(job))
            self._check_uncharged_share()
            return
        evaluation = job.evaluation
        charge_if_hanging(job, self.accounting.requeue_limit)
        charged = self.accounting.charges(job.attempt_class)
        event = {"type": "design", "attempt": self.ledger.attempts + 1 if charged else None, "id": str(uuid.uuid4()),
                 "seed_id": job.seed_id, "unit": job.unit, "operator": job.operator, "model": job.model,
                 "quadrant": job.quadrant, "credit": job.credit,
                 "class": job.attempt_class, "failure": job.failure, "message": job.message, "code": job.child_code,
                 "notes": job.notes, "seconds": job.seconds, "llm_seconds": job.llm_seconds,
                 "tokens": job.usage.completion, "prompt_tokens": job.usage.prompt,
                 "tokens_estimated": job.usage.estimated,
                 "learning_rate": job.learning_rate, "tune": job.tune.to_dict() if job.tune else None,
                 "outcome": evaluation.outcome if evaluation else None,  # no evaluation: the failure says why
                 "rungs": rungs_to_dict(evaluation.rungs) if evaluation else {}, "metrics": evaluation.metrics if evaluation else {},
                 "artifacts": short_artifacts(evaluation), "repairs": [r.to_dict() for r in job.repairs],
                 **event_times(evaluation), **self._retry_fate(job),
                 "prompt_log": PromptLog(template_key(self.answer_rules.rewrite), job.prompt["system"],
                                         job.prompt["user"], tuple(job.replies)).to_dict()}
        self.history.append(event)
        self.ledger.apply(event)
        self._keep_params(event["id"], evaluation)
        self._watch_endpoint(job)
        self._check_uncharged_share()

    def _keep_params(self, design_id: str, evaluation: Evaluation | None) -> None:
        self.kept_params.record(design_id, evaluation, self.database.records, self.database.confidence_threshold,
                                BASELINE_ID)

    def _watch_endpoint(self, job: DesignAttempt) -> None:
        """Feed the circuit breaker: a stalled or infra LLM call extends the streak, any answer ends it."""
        if job.response is not None:
            self.breaker.answered()
        if job.failure == "llm_error" and not charged(job.attempt_class):
            index = job.model_index or 0
            model = self.llm.models_cfg[index] if index < len(self.llm.models_cfg) else None
            self.breaker.failed(job.message, getattr(model, "name", job.model), getattr(model, "api_base", "") or "")
        elif not self.accounting.charges(job.attempt_class):
            self.breaker.evaluation_failed(_why(job))

    def _check_uncharged_share(self) -> None:
        session = self._session
        self.breaker.check_share(self.accounting.uncharged_seconds - session.uncharged_seconds,
                                 time.monotonic() - session.started, session.slots)

    def _retry_fate(self, job: DesignAttempt | Verification) -> dict[str, Any]:
        """Re-queue a stalled or infra job (same seed and prompt) until the limit, then quarantine it."""
        if self.accounting.charges(job.attempt_class):
            return {"requeues": job.requeues, "requeued": False, "quarantined": False}
        if job.requeues < self.accounting.requeue_limit:
            if isinstance(job, DesignAttempt):
                retry: DesignAttempt | Verification = DesignAttempt(
                    job.seed_id, job.unit, job.prompt, model=job.model, model_index=job.model_index,
                    quadrant=job.quadrant, credit=job.credit, requeues=job.requeues + 1)
            else:
                retry = Verification(job.design_id, job.rung, requeues=job.requeues + 1,
                                     learning_rate=job.learning_rate, seed=job.seed)
                self._in_flight.add((retry.design_id, retry.rung))
            self._requeued.append(retry)
            return {"requeues": job.requeues, "requeued": True, "quarantined": False}
        log.warning("quarantined after %d re-queues (%s): %s", job.requeues, job.attempt_class, _why(job))
        return {"requeues": job.requeues, "requeued": False, "quarantined": True}

    def _evaluate_baseline(self) -> None:
        """The template at every rung and seed (controller/baseline.py), which every comparison then uses."""
        event = evaluate_baseline(BaselineJob(self.evaluator, self.engine, self.rungs, self.tune_settings,
                                              self.tune_budget, self.config.genesys.run.baseline_seeds))
        self.history.append(event)
        self.ledger.apply(event)

    # -- state --------------------------------------------------------------------------------
    def _replay(self) -> bool:
        events = list(self.history.events())
        if not any(e["type"] == "baseline" for e in events):
            return False
        for event in events:
            self.ledger.apply(event)
        # Designs were compared with the baseline at its recorded rate and seeds; new ones must be too.
        adopt_recorded_baseline(self.evaluator, events, self.database.records[BASELINE_ID].learning_rate)
        self.tune_budget.trained = int(self.accounting.tuning["trials"])
        state_path = self.output / "state.json"
        if state_path.exists():
            self.selector.load_state_dict(json.loads(state_path.read_text())["selector"])
        return True

    def _state(self) -> dict[str, Any]:
        records = self.database.records
        designs = sum(r.valid and r.id != BASELINE_ID for r in records.values())
        settings = self.config.genesys.selector
        ledger = self.ledger
        return {"attempts": ledger.attempts, "max_attempts": self.max_attempts,
                "seconds": {"design": ledger.design_seconds, "verify": ledger.verify_seconds},
                "rung_budgets": rung_budgets(self.rungs, designs, settings.halving_ratio, settings.min_per_rung),
                "rung_usage": rung_usage(records.values(), self.rungs, BASELINE_ID),
                "tune": self.tune_budget.state_dict() if self.tune_settings.enabled else None,
                "selector": self.selector.state_dict()}

    def _checkpoint_if_due(self) -> None:
        write_json_atomic(self.output / "state.json", self._state())
        interval = self.config.openevolve.checkpoint_interval
        if interval and self.ledger.attempts and self.ledger.attempts % interval == 0:
            self.save()

    def save(self) -> None:
        """An OpenEvolve checkpoint plus our records, state and the best program, each written atomically."""
        write_json_atomic(self.output / "state.json", self._state())
        checkpoint = self.output / "checkpoints" / f"checkpoint_{self.ledger.attempts}"
        self.database.save(str(checkpoint), self.ledger.attempts)
        _prune_checkpoints(checkpoint.parent, self.config.genesys.run.keep_checkpoints)
        summary = {**self.accounting.summary(), "stopped_by": self.stopped_by,
                   "valuation": self.database.valuation_summary(), "repairs": self.ledger.repairs.to_dict(),
                   "seed_verifications": self.ledger.seed_verifications.to_dict(),
                   "noop_screen": noop_summary(self.history.events()).to_dict()}
        write_json_atomic(self.output / "summary.json", summary)
        write_json_atomic(self.output / OPERATORS_FILE, credit_table(
            self.database.records, self.config.genesys.selector.credit_settings, self.selector.units, self.models))
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


def _prune_checkpoints(folder: Path, keep: int) -> None:
    """Remove all but the newest ``keep`` checkpoints (0: keep all); the newest is written before this runs."""
    if keep <= 0:
        return
    numbered = sorted((int(p.name.rpartition("_")[2]), p) for p in folder.glob("checkpoint_*")
                      if p.name.rpartition("_")[2].isdigit())
    for _, old in numbered[:-keep]:
        shutil.rmtree(old, ignore_errors=True)


def _why(job: DesignAttempt | Verification) -> str:
    if isinstance(job, Verification):
        return f"verification of {job.design_id[:8]} at {job.rung}: {job.evaluation.artifacts.get('message', '')[:300]}"
    message = job.message or (job.evaluation.artifacts.get("message", "") if job.evaluation else "")
    return f"design attempt from {job.seed_id[:8]} on {job.unit}: {message[:300]}"
