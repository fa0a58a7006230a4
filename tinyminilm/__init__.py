"""tinyminilm: the all-MiniLM-L6-v2 sentence encoder in pure NumPy, with sentence-transformers' results.

    import tinyminilm
    model = tinyminilm.load()                      # fetched and verified on first use
    vectors = model.encode(["a sentence", "another one"])   # float32 (2, 384), unit L2 norm

Only numpy, tokenizers and safetensors are imported at run time; huggingface_hub and tqdm only when needed.
"""

from __future__ import annotations

from pathlib import Path

from .encoder import SentenceEncoder
from .errors import (ConfigError, DownloadError, IntegrityError, TinyMiniLMError, TokenizerError,
                     WeightsError)
from .hub import MODEL_ID, REVISION

__version__ = "0.1.0"


def load(model: str | Path | None = None) -> SentenceEncoder:
    """Load a sentence encoder.

    model: None or "sentence-transformers/all-MiniLM-L6-v2" for the pinned default model (found on disk, or
    downloaded and SHA-256-verified on first use), or the path of a local sentence-transformers model folder.
    """
    from . import hub

    if model is None or str(model) == MODEL_ID:
        return SentenceEncoder.from_folder(hub.ensure_model())
    folder = Path(model).expanduser()
    if not folder.is_dir():
        raise ConfigError(f"model {str(model)!r}: no such folder. Pass the path of a sentence-transformers model "
                          f"folder, or nothing for {MODEL_ID} (other Hub ids are not fetched by tinyminilm)")
    return SentenceEncoder.from_folder(folder)


__all__ = ["load", "SentenceEncoder", "MODEL_ID", "REVISION", "TinyMiniLMError", "ConfigError", "WeightsError",
           "TokenizerError", "IntegrityError", "DownloadError", "__version__"]
