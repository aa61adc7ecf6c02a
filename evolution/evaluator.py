"""OpenEvolve's evaluation file for openevolve-genesys.

Stock OpenEvolve works with it as it is:

    openevolve-run frameworks/coefficient_dynamics.py evolution/evaluator.py -c configs/coefficient_dynamics.yaml

``evaluate(program_path)`` trains the whole ladder (the PyTorch prototype's behaviour); with
``evaluator.cascade_evaluation: true`` OpenEvolve calls ``evaluate_stage1`` (checks + the smallest
rung(s)) and then ``evaluate_stage2`` (the rest). Settings come from the ``genesys:`` section of the
``-c`` file (openevolve_genesys/stock.py: imported by openevolve-run's process, this file exports that path
as $GENESYS_CONFIG for OpenEvolve's workers), else of the YAML $GENESYS_CONFIG names (set it where no
openevolve-run command line exists, e.g. OpenEvolve's Python API), else of the shipped
``configs/<framework>.yaml`` for the framework the program belongs to (recognised from its text outside the
EVOLVE-BLOCK). The section's keys that only the ``openevolve`` command reads are ignored, said once. With ``genesys.tune.enabled`` each
program, and the baseline once per worker process, first gets its own learning rate from a short sweep;
the sweep's trials are cached, so stage 2 finds stage 1's rate without training again.

    python evolution/evaluator.py --test [--framework NAME] [--profile smoke] [--config YAML]

evaluates a framework's baseline and prints the per-rung losses and the fit.
"""

from __future__ import annotations

import argparse
import json
import logging
import sys
from functools import lru_cache
from pathlib import Path

from openevolve.evaluation_result import EvaluationResult

from openevolve_genesys.evaluation.evaluator import ScalingLawEvaluator
from openevolve_genesys.evaluation.program import FRAMEWORKS, ProgramError, detect_framework, framework_path
from openevolve_genesys.evaluation.tuning import tune_learning_rate
from openevolve_genesys.stock import export_config_option, stock_config_path, stock_settings
from openevolve_genesys.strict import ConfigError

# At import, in openevolve-run's own process, before its process pool starts (the pool copies the environment).
export_config_option(sys.argv, __file__)


@lru_cache(maxsize=None)
def _evaluator(framework: str) -> ScalingLawEvaluator:
    evaluator = ScalingLawEvaluator(stock_settings(stock_config_path(framework), framework=framework))
    if evaluator.settings.tune.enabled:
        tune = tune_learning_rate(evaluator, evaluator.template, evaluator.settings.tune)
        evaluator.set_baseline_learning_rate(tune.best_learning_rate)
    return evaluator


def _evaluator_for(program_path: str) -> tuple[ScalingLawEvaluator, str]:
    source = Path(program_path).read_text()
    try:
        framework = detect_framework(source)
    except ProgramError:
        framework = FRAMEWORKS[0]  # the evaluation itself reports the missing markers
    return _evaluator(framework), source


def _evaluate(evaluator: ScalingLawEvaluator, source: str, rungs: list[str] | None = None) -> EvaluationResult:
    """Evaluate at the program's own learning rate in tune mode, else at the profile's."""
    rate, note = None, ""
    if evaluator.settings.tune.enabled:
        tune = tune_learning_rate(evaluator, source, evaluator.settings.tune,
                                  baseline_learning_rate=evaluator.baseline_learning_rate)
        rate, note = tune.best_learning_rate, tune.note
    evaluation = evaluator.evaluate(source, rungs, learning_rate=rate)
    if note:
        evaluation.artifacts["tune"] = note
    return EvaluationResult(metrics=evaluation.metrics, artifacts=evaluation.artifacts)


def evaluate(program_path: str) -> EvaluationResult:
    evaluator, source = _evaluator_for(program_path)
    return _evaluate(evaluator, source)


def evaluate_stage1(program_path: str) -> EvaluationResult:
    evaluator, source = _evaluator_for(program_path)
    names = [r.name for r in evaluator.profile.rungs[: evaluator.settings.stage1_rungs]]
    return _evaluate(evaluator, source, names)


def evaluate_stage2(program_path: str) -> EvaluationResult:
    # Rungs trained in stage 1 are answered by the fitness cache.
    return evaluate(program_path)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--test", action="store_true", help="evaluate a framework's baseline and print the fit")
    parser.add_argument("--framework", default="coefficient_dynamics", choices=FRAMEWORKS)
    parser.add_argument("--profile", default=None, help="ladder profile (default: the config's)")
    parser.add_argument("--program", default=None, help="evaluate this program file instead of the baseline")
    parser.add_argument("--config", default=None,
                        help="run YAML (default: $GENESYS_CONFIG, else the framework's shipped config)")
    args = parser.parse_args(argv)
    if not (args.test or args.program):
        parser.error("give --test or --program PATH")
    logging.basicConfig(level=logging.INFO, format="%(asctime)s %(levelname)s %(name)s: %(message)s")
    try:
        config = Path(args.config) if args.config else stock_config_path(args.framework)
        settings = stock_settings(config, framework=args.framework, profile=args.profile)
    except ConfigError as err:
        print(f"evaluator.py: {err}", file=sys.stderr)
        return 2
    evaluator = ScalingLawEvaluator(settings)
    source = Path(args.program).read_text() if args.program else framework_path(args.framework).read_text()
    evaluation = evaluator.evaluate(source)
    print(json.dumps({"outcome": evaluation.outcome, "metrics": evaluation.metrics}, indent=2, default=str))
    if evaluation.outcome != "ok":
        print(evaluation.artifacts.get("message", ""), file=sys.stderr)
        return 1
    print(evaluation.artifacts.get("learning_curves", ""))
    return 0


if __name__ == "__main__":
    sys.exit(main())
