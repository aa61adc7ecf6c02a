"""Where evaluations run: the local engine (one slot per device or CPU share) or Ray, behind one interface."""

from openevolve_genesys.engine.base import Engine, EngineSettings, make_engine

__all__ = ["Engine", "EngineSettings", "make_engine"]
