"""How many answers become evaluated children, with and without repair rounds, over a scripted mix of the
answer styles chat models write.

    python experiments/benchmarks/answer_styles.py --repeats 1

Each style is a first answer (and, for the broken ones, the model's repair replies) for the
coefficient_dynamics template. Every answer goes through the real design attempt (controller/jobs.py
``run_design_attempt``: the answer path, the template enforcement, the repair rounds); the child is judged
by the sandbox's own checks (``load_program``, ``check_mixer``, ``check_parameter_budget`` on the smoke
ladder), run in this process because they are what decides "evaluated" and training is not needed for it.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import time
from pathlib import Path

from openevolve_genesys.controller.jobs import DesignAttempt, run_design_attempt
from openevolve_genesys.evaluation.checks import CheckSettings, check_mixer, check_parameter_budget
from openevolve_genesys.evaluation.evaluator import Evaluation
from openevolve_genesys.evaluation.program import ProgramError, framework_path, load_program
from openevolve_genesys.evaluation.settings import EvaluatorSettings
from openevolve_genesys.training.profiles import get_profile

ROOT = Path(__file__).resolve().parents[2]
TEMPLATE = framework_path("coefficient_dynamics").read_text()
LINE = next(line for line in TEMPLATE.splitlines() if "math.sqrt(" in line)
GOOD = LINE.replace("math.sqrt(", "1.25 * math.sqrt(", 1)
INDENT = LINE[:len(LINE) - len(LINE.lstrip())]


def block(search: str, replace: str) -> str:
    return f"<<<<<<< SEARCH\n{search}\n=======\n{replace}\n>>>>>>> REPLACE\n"


def op(name: str) -> str:
    return f"Operator: Coefficients:{name}\n"


MISSING = GOOD.replace("math.sqrt(", "np.sqrt(", 1)  # numpy is never imported by the template
# style -> (first answer, repair replies in order)
STYLES: dict[str, tuple[str, list[str]]] = {
    "exact diff": (op("exact") + block(LINE, GOOD), []),
    "whitespace-drifted diff": (op("drift") + block("  " + LINE.strip() + "  ", "  " + GOOD.strip()), []),
    "reasoning preamble": ("<think>\nScale the logits.\n" + block("not in the seed", "x") + "</think>\n"
                           + op("think") + block(LINE, GOOD), []),
    "whole-program rewrite": (op("rewrite") + "```python\n" + TEMPLATE.replace(LINE, GOOD) + "```\n", []),
    "partly matching multi-block": (op("partial") + block(INDENT + "logits = undefined(q)", "x")
                                    + block(LINE, GOOD), []),
    "syntax slip, fixable in one reply": (op("slip") + block(LINE, GOOD + " + ("),
                                          [op("slip") + block(GOOD + " + (", GOOD)]),
    "missing import": (op("numpy") + block(LINE, MISSING), [op("numpy") + block(MISSING, GOOD)]),
    "hopeless": (op("hopeless") + block(LINE, GOOD + " + ("),
                 ["I believe the code is correct as written.", op("hopeless") + block(GOOD + " + (", GOOD + " + ((")]),
}


class ScriptedLLM:
    model = "scripted"

    def __init__(self, answers: list[str]):
        self.answers, self.last_usage = list(answers), None

    async def generate_with_context(self, system_message, messages, **kwargs):
        answer = self.answers.pop(0) if self.answers else "No further ideas."
        self.last_usage = {"completion_tokens": -(-len(answer) // 4)}
        return answer


class CheckingEvaluator:
    """The sandbox job's checks (evaluation/job.py, before training) in process, on the smoke ladder."""

    template = TEMPLATE
    settings = EvaluatorSettings(framework="coefficient_dynamics", profile="smoke")
    baseline_learning_rate = 1e-3

    def __init__(self):
        self.ladder, self.checks, self.calls = get_profile("smoke"), CheckSettings(), 0

    def evaluate(self, source, rungs, **options):
        self.calls += 1
        try:
            program = load_program(source, framework="coefficient_dynamics")
            check_mixer(program.build_mixer, self.checks, sorted({r.n_layers for r in self.ladder.rungs}))
            check_parameter_budget(program.build_mixer, self.ladder, self.checks)
        except ProgramError as err:
            return Evaluation("invalid", {"outcome": "invalid", "check": err.kind}, {"message": err.message})
        return Evaluation("ok", {"outcome": "ok"}, {}, {})


def run(rounds: int, repeats: int) -> dict[str, dict]:
    evaluator, rows = CheckingEvaluator(), {}
    for style, (first, repairs) in STYLES.items():
        passed, tokens, repair_rounds = 0, 0, 0
        for _ in range(repeats):
            attempt = run_design_attempt(DesignAttempt("baseline", "Coefficients", {"system": "", "user": ""}),
                                         TEMPLATE, ScriptedLLM([first, *repairs]), 30, evaluator, ["r0"],
                                         repair_rounds=rounds)
            passed += attempt.evaluation is not None and attempt.evaluation.outcome == "ok"
            tokens += attempt.tokens
            repair_rounds += len(attempt.repairs)
        rows[style] = {"evaluated": passed / repeats, "tokens": tokens / repeats, "repair_rounds": repair_rounds / repeats}
    return rows


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--repeats", type=int, default=1)
    parser.add_argument("--rounds", type=int, default=2, help="repair_rounds of the 'with' column")
    parser.add_argument("--out", default=str(ROOT / "experiments/benchmarks/results/answer_styles.json"))
    args = parser.parse_args()
    start = time.perf_counter()
    without, with_ = run(0, args.repeats), run(args.rounds, args.repeats)
    print(f"{'style':36} {'evaluated, no repair':>22} {f'with {args.rounds} rounds':>16} {'repair rounds':>14} "
          f"{'tokens (no/with)':>18}")
    for style in STYLES:
        a, b = without[style], with_[style]
        print(f"{style:36} {a['evaluated']:>22.0%} {b['evaluated']:>16.0%} {b['repair_rounds']:>14.1f} "
              f"{a['tokens']:>8.0f} / {b['tokens']:<8.0f}")
    share = {name: sum(r["evaluated"] for r in rows.values()) / len(STYLES) for name, rows in
             (("without", without), ("with", with_))}
    print(f"{'all styles':36} {share['without']:>22.0%} {share['with']:>16.0%}")
    Path(args.out).write_text(json.dumps({"repair_rounds": args.rounds, "repeats": args.repeats,
                                          "without": without, "with": with_, "share": share,
                                          "seconds": round(time.perf_counter() - start, 1)}, indent=2) + "\n")


if __name__ == "__main__":
    main()
