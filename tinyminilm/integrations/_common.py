"""What the framework adapters (chroma.py, langchain.py, llama_index.py) share, written once.

- `require`: import a framework, or raise an ImportError that names the extra to install.
- `shared_encoder`: one loaded model per (folder, threads) in a process, however many adapter instances use it.
- `EncodeOptions`: the options every adapter takes (model, batch_size, normalize_embeddings, truncate_dim,
  threads), checked once, with `embed_queries` / `embed_documents` (and `embed` / `embed_one`) that run
  `encode_query` / `encode_document` (or `encode`) with them: queries get the model's query prompt and documents its
  document prompt, where the model has them (e5's "query: " / "passage: ", bge's query instruction; none for
  all-MiniLM-L6-v2, whose three methods give the same vectors).

A model is named as `tinyminilm.load` names it (a folder, or "all-MiniLM-L6-v2" / its full Hub id), and resolved
by the same function, `tinyminilm.hub.resolve`.

The adapters convert the float32 arrays returned here into what their framework expects (lists of floats, lists
of arrays); the numbers are `encode`'s, unchanged.
"""

from __future__ import annotations

import importlib
import threading
from collections.abc import Sequence
from dataclasses import asdict, dataclass
from pathlib import Path
from types import ModuleType
from typing import Any

import numpy as np

from .. import MODEL_ID, SentenceEncoder, hub
from ..errors import ArgumentError, ArgumentTypeError, check_int, check_text


def require(module: str, extra: str, user: str) -> ModuleType:
    """Import `module`, or raise an ImportError saying that `user` needs it and which extra brings it."""
    try:
        return importlib.import_module(module)
    except ImportError as e:
        raise ImportError(f"{user} needs {module} ({e}): pip install 'tinyminilm[{extra}]'") from None


_encoders: dict[tuple[str, int | None], SentenceEncoder] = {}
_encoders_lock = threading.Lock()


def shared_encoder(model: str | Path | hub.ModelSource | None = None, threads: int | None = None) -> SentenceEncoder:
    """The encoder of `model` (resolved by `hub.resolve`), loaded on first use and then shared by every caller in
    this process that names the same folder.

    `threads` is part of the key because it is a setting of the loaded encoder (`encoder.threads`, the batches run
    at once): instances asking for different thread counts get encoders of their own, whose weights are the same
    memory-mapped file pages. None keeps the encoder's default (the CPUs this process may use).
    """
    import tinyminilm

    source = hub.resolve(model)
    key = (str(source.folder.resolve()), threads)
    with _encoders_lock:  # one load even when several threads build adapters at once
        encoder = _encoders.get(key)
        if encoder is None:
            encoder = tinyminilm.load(source)  # ConfigError naming the folder when it is not a model folder
            if threads is not None:
                encoder.threads = threads
            _encoders[key] = encoder
    return encoder


@dataclass(frozen=True)
class EncodeOptions:
    """The options every adapter takes; `config()` is their JSON-ready form (Chroma persists it).

    model: a local sentence-transformers model folder, or None, "all-MiniLM-L6-v2" or its full Hub id for that
    model (fetched on first use); stored as None for it, as an absolute path for a folder.
    batch_size: texts per forward pass of `encode`. normalize_embeddings / truncate_dim: as in `encode`
    (all-MiniLM-L6-v2's vectors already have unit norm; after `truncate_dim` they need normalize_embeddings=True
    to have it again). threads: batches run at once (`encoder.threads`); None for the encoder's default.
    """

    model: str | None = None
    batch_size: int = 32
    normalize_embeddings: bool = False
    truncate_dim: int | None = None
    threads: int | None = None

    def __post_init__(self) -> None:
        hub.check_model(self.model)
        if self.model is not None:  # a folder is stored absolute, so a persisted config means it from any cwd
            repo = hub.hub_id(self.model)  # None for a folder; the default model is stored as None
            if repo is None:
                object.__setattr__(self, "model", str(Path(self.model).expanduser().resolve()))
            else:
                object.__setattr__(self, "model", None if repo == MODEL_ID else repo)
        check_int(self.batch_size, "batch_size")
        if not isinstance(self.normalize_embeddings, (bool, np.bool_)):
            raise ArgumentTypeError(f"normalize_embeddings must be True or False, got {self.normalize_embeddings!r}")
        object.__setattr__(self, "normalize_embeddings", bool(self.normalize_embeddings))
        if self.truncate_dim is not None:
            check_int(self.truncate_dim, "truncate_dim")  # the upper bound is the model's: checked in `encoder`
        if self.threads is not None:
            check_int(self.threads, "threads")

    @classmethod
    def from_config(cls, config: dict[str, Any]) -> EncodeOptions:
        """The options back from `config()`; unknown keys are an ArgumentError (a ValueError) naming them."""
        if not isinstance(config, dict):
            raise ArgumentTypeError(f"config must be a dict, got {type(config).__name__}")
        unknown = sorted(set(config) - set(cls.__dataclass_fields__))
        if unknown:
            raise ArgumentError(f"config has unknown keys {unknown}; the keys are {sorted(cls.__dataclass_fields__)}")
        return cls(**config)

    def config(self) -> dict[str, Any]:
        """{"model", "batch_size", "normalize_embeddings", "truncate_dim", "threads"}: str/int/bool/None only."""
        return asdict(self)

    def encoder(self) -> SentenceEncoder:
        """The shared encoder these options use (loaded on first use); checks truncate_dim against its size."""
        encoder = shared_encoder(self.model, self.threads)
        if self.truncate_dim is not None:
            dim = encoder.get_embedding_dimension()
            check_int(self.truncate_dim, "truncate_dim", 1, dim, " (the model's embedding dimension)")
        return encoder

    def embed(self, texts: Sequence[str], role: str | None = None) -> np.ndarray:
        """float32 [n, dim'] for a list of texts, rows in order: exactly `encode(texts, ...)` with these options, or
        `encode_query` (role "query") or `encode_document` (role "document") with them.

        A non-str item raises encode's own ArgumentTypeError (a TypeError) naming its index (`texts[2] is NoneType,
        expected str`).
        """
        if isinstance(texts, (str, bytes)):
            raise ArgumentTypeError(f"texts must be a list of str, got a single {type(texts).__name__}; wrap it in a "
                                    "list")
        encoder = self.encoder()
        method = {None: encoder.encode, "query": encoder.encode_query, "document": encoder.encode_document}[role]
        return method(texts, batch_size=self.batch_size,  # encode's errors for None, non-str items
                      normalize_embeddings=self.normalize_embeddings, truncate_dim=self.truncate_dim)

    def embed_queries(self, texts: Sequence[str]) -> np.ndarray:
        """float32 [n, dim']: `encode_query` with these options, the model's query prompt in front of each text."""
        return self.embed(texts, "query")

    def embed_documents(self, texts: Sequence[str]) -> np.ndarray:
        """float32 [n, dim']: `encode_document` with these options, the model's document prompt in front of each."""
        return self.embed(texts, "document")

    def embed_one(self, text: str, name: str = "text", role: str | None = None) -> np.ndarray:
        """float32 [dim'] for one text (`embed` with `role`); `name` is the argument named when `text` is not a
        str."""
        return self.embed([check_text(text, name)], role)[0]


__all__ = ["require", "shared_encoder", "EncodeOptions"]
