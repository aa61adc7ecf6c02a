"""A simulated design landscape and four design-search methods run on it at equal compute.

``landscape`` draws the latent scaling laws of every design of one framework's offline mutation space;
``trial`` is one method's run on it (compute ledger, the shared mutation operator, observations);
``ours``, ``openevolve_db``, ``genesys_code`` and ``random_search`` are the four methods; ``run_method``
dispatches by name. ``selector_benchmark.py`` (one folder up) runs the grid and reports.
"""

from __future__ import annotations

from selector_sim.landscape import Landscape, LandscapeSpec
from selector_sim.trial import RunResult, Trial

METHODS = ("ours", "ours_p_better", "ours_lower", "openevolve", "genesys_code", "random")


def run_method(name: str, landscape: Landscape, budget: float, seed: int) -> RunResult:
    """Run method ``name`` on ``landscape`` with ``budget`` compute units (one unit = one smallest-rung training)."""
    from selector_sim import genesys_code, openevolve_db, ours, random_search

    from selector_sim.ours import ranked_by

    # "ours" ranks by the forecast's mean (selector.rank_by's default); the variants by p_better, by the lower end
    runners = {"ours": ours.run, "ours_p_better": ranked_by("p_better"), "ours_lower": ranked_by("lower"),
               "openevolve": openevolve_db.run, "genesys_code": genesys_code.run, "random": random_search.run}
    if name not in runners:
        raise ValueError(f"unknown method {name!r}; choose one of {METHODS}")
    return runners[name](Trial(landscape, budget, seed))


__all__ = ["METHODS", "Landscape", "LandscapeSpec", "RunResult", "Trial", "run_method"]
