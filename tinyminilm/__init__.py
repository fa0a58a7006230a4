"""tinyminilm: the all-MiniLM-L6-v2 sentence encoder in pure NumPy, with sentence-transformers' results.

    import tinyminilm
    model = tinyminilm.load()                      # fetched and verified on first use
    vectors = model.encode(["a sentence", "another one"])   # float32 (2, 384), unit L2 norm
    other = tinyminilm.load("BAAI/bge-small-en-v1.5")      # any BERT sentence model by its Hub id

Only numpy, tokenizers and safetensors are imported at run time; huggingface_hub and tqdm only when needed.
"""

from __future__ import annotations

import os

from .cross_encoder import CrossEncoder
from .encoder import SentenceEncoder
from .errors import (ArgumentError, ArgumentTypeError, ConfigError, DownloadError, InputError, IntegrityError,
                     TinyMiniLMError, TokenizerError, WeightsError)
from . import hub
from .hub import MODEL_ID, REVISION
from .porting import LoggingHandler, SentenceTransformer
from . import util  # NumPy only: `from tinyminilm import SentenceTransformer, util`, as from sentence_transformers

__version__ = "0.1.0"


def load(model: str | os.PathLike | hub.ModelSource | None = None, *, revision: str | None = None,
         cache_folder: str | os.PathLike | None = None, local_files_only: bool = False) -> SentenceEncoder:
    """Load a sentence encoder; `encoder.source` says which model it is (folder, Hub id, commit).

    model: a local sentence-transformers model folder; a Hub id ("BAAI/bge-small-en-v1.5", or a bare name for
    sentence-transformers/NAME), read from the Hugging Face cache or fetched from the Hub into it; or None,
    "sentence-transformers/all-MiniLM-L6-v2" or "all-MiniLM-L6-v2" for the pinned default model (found on disk, or
    downloaded and SHA-256-verified on first use). revision (a Hub id's branch, tag or commit), cache_folder and
    local_files_only: as in sentence-transformers (see `tinyminilm.hub.resolve`).
    """
    return SentenceEncoder.load(model, revision=revision, cache_folder=cache_folder, local_files_only=local_files_only)


__all__ = ["load", "SentenceEncoder", "SentenceTransformer", "CrossEncoder", "LoggingHandler", "util", "MODEL_ID",
           "REVISION", "TinyMiniLMError", "ArgumentError", "ArgumentTypeError", "InputError", "ConfigError",
           "WeightsError", "TokenizerError", "IntegrityError", "DownloadError", "__version__"]
