"""What the framework adapters (chroma.py, langchain.py, llama_index.py) share, written once.

- `require`: import a framework, or raise an ImportError that names the extra to install.
- `shared`: one loaded model per (kind, folder, settings) in a process, however many adapter instances use it;
  `shared_encoder` (sentence encoders: folder, threads) and `shared_cross_encoder` (rerankers: folder,
  max_length, trust_remote_code, threads) are its two users.
- `EncodeOptions`: the options every adapter takes (model, batch_size, normalize_embeddings, truncate_dim,
  threads), checked once, with `embed_queries` / `embed_documents` (and `embed` / `embed_one`) that run
  `encode_query` / `encode_document` (or `encode`) with them: queries get the model's query prompt and documents its
  document prompt, where the model has them (e5's "query: " / "passage: ", bge's query instruction; none for
  all-MiniLM-L6-v2, whose three methods give the same vectors).

A model is named as `tinyminilm.load` names it (a folder; a Hub id such as "BAAI/bge-small-en-v1.5", read from
the Hugging Face cache or fetched into it; "all-MiniLM-L6-v2" / its full id for the pinned default), and resolved
by the same function, `tinyminilm.hub.resolve`; a cross-encoder as `CrossEncoder` names it
(`tinyminilm.cross_encoder.model_source`: a bare name is in cross-encoder/).

The adapters convert the float32 arrays returned here into what their framework expects (lists of floats, lists
of arrays); the numbers are `encode`'s, unchanged.
"""

from __future__ import annotations

import importlib
import os
import threading
from collections.abc import Callable, Hashable, Sequence
from dataclasses import asdict, dataclass, replace
from pathlib import Path
from types import ModuleType
from typing import Any, TypeVar

import numpy as np

from .. import MODEL_ID, CrossEncoder, SentenceEncoder, hub
from ..errors import ArgumentError, ArgumentTypeError, check_int, check_text


def require(module: str, extra: str, user: str) -> ModuleType:
    """Import `module`, or raise an ImportError saying that `user` needs it and which extra brings it."""
    try:
        return importlib.import_module(module)
    except ImportError as e:
        raise ImportError(f"{user} needs {module} ({e}): pip install 'tinyminilm[{extra}]'") from None


T = TypeVar("T")
_loaded: dict[tuple[Hashable, ...], Any] = {}
_loaded_lock = threading.Lock()

# The rerankers' model unless told otherwise (SentenceTransformerRerank and HuggingFaceCrossEncoder have defaults
# too): the usual second stage after all-MiniLM-L6-v2, the same 6-layer, 384-wide BERT with a one-label head.
DEFAULT_CROSS_ENCODER = "cross-encoder/ms-marco-MiniLM-L6-v2"


def shared(key: tuple[Hashable, ...], load: Callable[[], T]) -> T:
    """`load()`'s result, made by the first call with `key` and returned to every later call with an equal key in
    this process. The key names what was loaded: its kind, its resolved folder and every setting of the loaded
    object (not per-call options, which the adapters pass to each call)."""
    with _loaded_lock:  # one load even when several threads build adapters at once
        if key not in _loaded:
            _loaded[key] = load()
        return _loaded[key]


def shared_encoder(model: str | Path | hub.ModelSource | None = None, threads: int | None = None) -> SentenceEncoder:
    """The encoder of `model` (resolved by `hub.resolve`), loaded on first use and then shared by every caller in
    this process that names the same folder.

    `threads` is part of the key because it is a setting of the loaded encoder (`encoder.threads`, the batches run
    at once): instances asking for different thread counts get encoders of their own, whose weights are the same
    memory-mapped file pages. None keeps the encoder's default (the CPUs this process may use).
    """
    import tinyminilm

    source = hub.resolve(model)

    def load() -> SentenceEncoder:
        encoder = tinyminilm.load(source)  # ConfigError naming the folder when it is not a model folder
        if threads is not None:
            encoder.threads = threads
        return encoder

    return shared(("encoder", str(source.folder.resolve()), threads), load)


def shared_cross_encoder(model: str | os.PathLike | hub.ModelSource = DEFAULT_CROSS_ENCODER, *,
                         max_length: int | None = None, trust_remote_code: bool = False,
                         threads: int | None = None) -> CrossEncoder:
    """The CrossEncoder of `model` (named as `CrossEncoder(model)` names it), loaded on first use and then shared by
    every caller in this process that names the same folder with the same settings.

    max_length, trust_remote_code: CrossEncoder's (None: the model's own max_length). threads: batches run at once
    (`cross_encoder.threads`), None for the default. These are settings of the loaded model, so they are part of
    the key; the activation and batch size are options of each `predict` call and are not.
    """
    from ..cross_encoder import model_source

    source = model_source(model)  # ArgumentError for None, ConfigError naming a folder that is not there
    source = replace(source, folder=source.folder.resolve())  # the shared model's folder means it from any cwd
    for name, value in (("max_length", max_length), ("threads", threads)):
        if value is not None:
            check_int(value, name)  # an int (part of the key); CrossEncoder checks max_length's bounds

    def load() -> CrossEncoder:
        cross_encoder = CrossEncoder(source, max_length=max_length, trust_remote_code=trust_remote_code)
        if threads is not None:
            cross_encoder.threads = threads
        return cross_encoder

    return shared(("cross-encoder", str(source.folder), max_length, bool(trust_remote_code), threads), load)


@dataclass(frozen=True)
class EncodeOptions:
    """The options every adapter takes; `config()` is their JSON-ready form (Chroma persists it).

    model: a local sentence-transformers model folder; a Hub id (a bare name means sentence-transformers/NAME);
    or None, "all-MiniLM-L6-v2" or its full Hub id for the pinned default model (fetched on first use). Stored as
    None for the default, as the full Hub id for another id (so a persisted config names the same model), as an
    absolute path for a folder.
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


__all__ = ["require", "shared", "shared_encoder", "shared_cross_encoder", "DEFAULT_CROSS_ENCODER", "EncodeOptions"]
