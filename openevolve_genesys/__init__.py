"""openevolve-genesys: Genesys-style evolution of sequence mixers for OpenEvolve, scored by scaling laws in JAX."""

__version__ = "0.1.0"
