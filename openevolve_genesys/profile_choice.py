"""Which ladder profile a run trains on: the one asked for, else the config's, with the CPU `smoke` ladder
standing in for an accelerator profile on a machine that has none.

Its own module because both the `openevolve` command and a combination stage (stages/run.py) resolve the profile
the same way, and the stage must not import the command."""

from __future__ import annotations

import dataclasses
import logging
import os

import jax

from openevolve_genesys.config import RunConfig

log = logging.getLogger("openevolve_genesys")


def controller_backend() -> str:
    """JAX's backend as the controller sees it, without the controller reserving accelerator memory.

    On its first use JAX preallocates 75% of a GPU; the controller only asks which backend exists, and
    the evaluations it starts on the same device need that memory. Its own setting is not inherited by
    the evaluations, which start later with the environment as the user left it."""
    key = "XLA_PYTHON_CLIENT_PREALLOCATE"
    ours = key not in os.environ
    if ours:
        os.environ[key] = "false"
    try:
        return jax.default_backend()
    finally:
        if ours:
            os.environ.pop(key, None)


def resolve_profile(config: RunConfig, requested: str | None) -> RunConfig:
    """--profile wins; without an accelerator the CPU `smoke` profile replaces the config's, said in one line."""
    settings = config.genesys.evaluator
    if requested:
        profile = requested
    elif controller_backend() == "cpu" and settings.profile != "smoke":
        log.info("no accelerator found: using the CPU 'smoke' profile instead of %r (pass --profile %s to force it)",
                 settings.profile, settings.profile)
        profile = "smoke"
    else:
        profile = settings.profile
    evaluator = dataclasses.replace(settings, profile=profile)
    return dataclasses.replace(config, genesys=dataclasses.replace(config.genesys, evaluator=evaluator))
