"""Which design agent a run talks to: an OpenAI-compatible endpoint, or the built-in offline mutator."""

from __future__ import annotations

import dataclasses
import functools
import logging
from typing import Any

from openevolve import config as oe
from openevolve.llm.ensemble import LLMEnsemble

from openevolve_genesys.config import RunConfig, llm_endpoint_configured
from openevolve_genesys.llm import endpoint
from openevolve_genesys.llm.streaming import init_streaming_client
from openevolve_genesys.mutations.client import init_offline_client

log = logging.getLogger(__name__)


def make_design_agent(config: RunConfig) -> tuple[Any, str]:
    """(an LLMEnsemble, a one-line description) following ``genesys.mutator``."""
    mode = config.genesys.run.mutator
    llm = config.openevolve.llm
    if mode == "offline" or (mode == "auto" and not llm_endpoint_configured(config.openevolve)):
        seed = config.openevolve.random_seed
        client = functools.partial(init_offline_client, break_rate=config.genesys.run.offline_break_rate)
        model = oe.LLMModelConfig(name="offline-mutator", init_client=client, random_seed=seed)
        why = "as configured" if mode == "offline" else "no API key or endpoint is configured"
        description = f"design agent: the built-in offline mutation library ({why})"
        log.info(description)
        return LLMEnsemble([model]), description
    names = ", ".join(m.name for m in llm.models)
    # The endpoint each model really calls: its YAML api_base, or the environment's (llm/endpoint.py).
    resolved = [dataclasses.replace(m, api_base=endpoint.api_base(m.api_base)) for m in llm.models]
    where = resolved[0].api_base
    if config.genesys.run.accounting == "stock":  # OpenEvolve's own client: waits for its global timeout
        description = f"design agent: {names} at {where} (OpenEvolve's stock client)"
        log.info(description)
        return LLMEnsemble(resolved), description
    # Streamed, and cut as stalled when no token arrives in time (genesys.stall), not after llm.timeout.
    client = functools.partial(init_streaming_client, policy=config.genesys.stall)
    models = [dataclasses.replace(m, init_client=client) for m in resolved]
    description = f"design agent: {names} at {where} (streamed, stall policy {config.genesys.stall})"
    log.info(description)
    return LLMEnsemble(models), description


def llm_timeout(config: RunConfig) -> float:
    llm = config.openevolve.llm
    retries = (llm.retries or 0) + 1
    return float((llm.timeout or 60) * retries + (llm.retry_delay or 0) * (retries - 1))
