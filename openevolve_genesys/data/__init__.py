"""Training data: where the tokens come from, how text becomes tokens, and how batches are drawn.

- ``config``: DataConfig, the strictly validated ``data:`` section.
- ``corpus``: text sources as ordered documents (the standard library by default) and the split.
- ``hf``: Hugging Face datasets, through the optional ``datasets`` extra.
- ``tokenizer``: byte-level BPE training and encoding.
- ``token_files``: pre-tokenised .npy/.bin sources, memory-mapped.
- ``tokens``: TokenData (batches, evaluation windows, epochs) and the repetition warning.
- ``cache``: atomic on-disk cache shared by concurrent processes.
- ``load``: load_data, tying these together.
"""

from openevolve_genesys.data.config import DataConfig
from openevolve_genesys.data.load import load_data
from openevolve_genesys.data.tokens import TokenData, warn_if_repeated

__all__ = ["DataConfig", "TokenData", "load_data", "warn_if_repeated"]
