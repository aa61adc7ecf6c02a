"""Train a design at several rungs of a profile and fit its scaling law."""

from __future__ import annotations

import dataclasses
import logging
from dataclasses import dataclass, field
from typing import Any, Callable, Sequence

from openevolve_genesys.data import warn_if_repeated
from openevolve_genesys.scaling.fit import fit_summary
from openevolve_genesys.training.loop import ChunkProgress, RungResult, train_rung
from openevolve_genesys.training.model import CausalSelfAttention, MixerFactory
from openevolve_genesys.training.profiles import LadderProfile, rung_train

log = logging.getLogger(__name__)


@dataclass
class LadderResult:
    profile: str
    data_fingerprint: str
    data_description: str
    rungs: list[RungResult] = field(default_factory=list)
    fit: dict[str, Any] = field(default_factory=dict)

    def to_dict(self) -> dict[str, Any]:
        return dataclasses.asdict(self)


def train_ladder(
    profile: LadderProfile,
    data: Any,
    *,
    mixer: MixerFactory = CausalSelfAttention,
    rungs: Sequence[str] | None = None,
    callback: Callable[[ChunkProgress], None] | None = None,
) -> LadderResult:
    """Train ``mixer`` at each selected rung (all by default) of ``profile`` on ``data`` (a TokenData)."""
    selected = [profile.rung(name) for name in rungs] if rungs is not None else list(profile.rungs)
    result = LadderResult(profile.name, data.fingerprint, data.description)
    warn_if_repeated(data, profile.max_train_tokens())
    for rung in selected:
        rung_result = train_rung(rung, data, rung_train(profile.train, rung), vocab_size=profile.vocab_size,
                                 mixer=mixer, callback=callback)
        log.info("rung %s: N=%d eval loss %.4f (%.0f tok/s, compile %.1fs)", rung.name, rung_result.n_params,
                 rung_result.final_eval_loss, rung_result.tokens_per_second, rung_result.compile_seconds)
        result.rungs.append(rung_result)
    finite = [r for r in result.rungs if not r.diverged]
    if finite:
        result.fit = fit_summary([r.n_params for r in finite], [r.final_eval_loss for r in finite])
    return result
