"""Chroma embedding function: all-MiniLM-L6-v2 with sentence-transformers' vectors, no onnxruntime model download.

    import chromadb
    from tinyminilm.integrations.chroma import TinyMiniLMEmbeddingFunction     # pip install 'tinyminilm[chroma]'

    client = chromadb.PersistentClient(path="db")
    docs = client.get_or_create_collection("docs", embedding_function=TinyMiniLMEmbeddingFunction())
    docs.add(ids=["1", "2"], documents=["The cat sat on the mat.", "Stocks fell sharply on Monday."])
    docs.query(query_texts=["a kitten"], n_results=1)

Chroma stores the function's name ("tinyminilm") and `get_config()` with the collection, and rebuilds the function
from them when the collection is opened again without one — in another process too, once this module has been
imported there (importing it registers the name with Chroma).

Chroma's own default (`DefaultEmbeddingFunction`, i.e. `ONNXMiniLM_L6_V2`) is the same model run by onnxruntime
from an ONNX file it downloads on first use; it truncates at 256 tokens and mean-pools as sentence-transformers
does. Chroma refuses a second embedding function on a collection that has one: to move an existing collection
over, create a new collection with this function and copy ids, documents and metadatas into it: `reembed`.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

from .. import hub
from ..errors import ArgumentError, CorpusError, check_int
from ._common import EncodeOptions, require

require("chromadb", "chroma", "tinyminilm.integrations.chroma")

from chromadb.api.types import Documents, EmbeddingFunction, Embeddings, Space  # noqa: E402
from chromadb.utils.embedding_functions import register_embedding_function  # noqa: E402

# Options that decide the vectors: changing one on a collection would mix incomparable vectors in it.
_VECTOR_OPTIONS = ("normalize_embeddings", "truncate_dim")


@register_embedding_function
class TinyMiniLMEmbeddingFunction(EmbeddingFunction[Documents]):
    """A Chroma `EmbeddingFunction`: documents in, `encode`'s float32 vectors out (one 1-D array per document).

    The options (model folder, batch_size, normalize_embeddings, truncate_dim, threads) are those of every adapter,
    described in `tinyminilm.integrations._common.EncodeOptions`; instances with the same folder and threads share
    one loaded model.
    """

    def __init__(self, model: str | Path | None = None, *, batch_size: int = 32, normalize_embeddings: bool = False,
                 truncate_dim: int | None = None, threads: int | None = None) -> None:
        self.options = EncodeOptions(model, batch_size, normalize_embeddings, truncate_dim, threads)
        self.options.encoder()  # load (or reuse) the model now, so a wrong folder fails here and not at add()

    def __call__(self, input: Documents) -> Embeddings:
        """One float32 array [dim] per document, in order, by `encode_document` (the model's document prompt, if it
        has one); a non-str document is a TypeError naming its index.

        (Chroma itself refuses an empty list of documents, before or after this function runs.)
        """
        texts = [input] if isinstance(input, str) else input  # Chroma's own functions accept a lone str too
        return list(self.options.embed_documents(texts))

    def embed_query(self, input: Documents) -> Embeddings:
        """One float32 array [dim] per query text, by `encode_query` (the model's query prompt, if it has one);
        Chroma calls this for query_texts."""
        texts = [input] if isinstance(input, str) else input
        return list(self.options.embed_queries(texts))

    @staticmethod
    def name() -> str:
        return "tinyminilm"

    def default_space(self) -> Space:
        """Cosine: Chroma's distance is then 1 - cos(a, b), what `util.cos_sim` ranks by."""
        return "cosine"

    def supported_spaces(self) -> list[Space]:
        """cosine, l2 and ip; l2 and ip rank as cosine does only while the vectors have unit norm (the default,
        or normalize_embeddings=True)."""
        return ["cosine", "l2", "ip"]

    def get_config(self) -> dict[str, Any]:
        """{"model": absolute folder or None for the default model, "batch_size", "normalize_embeddings",
        "truncate_dim", "threads"} — what Chroma stores with a collection."""
        return self.options.config()

    @staticmethod
    def build_from_config(config: dict[str, Any]) -> TinyMiniLMEmbeddingFunction:
        """The function back from `get_config()` (Chroma calls this when a collection is opened without one)."""
        options = EncodeOptions.from_config(config)
        return TinyMiniLMEmbeddingFunction(options.model, batch_size=options.batch_size,
                                           normalize_embeddings=options.normalize_embeddings,
                                           truncate_dim=options.truncate_dim, threads=options.threads)

    @staticmethod
    def validate_config(config: dict[str, Any]) -> None:
        """An ArgumentError / ArgumentTypeError (a ValueError / TypeError) naming the key when `config` is not one
        `get_config()` could have written."""
        EncodeOptions.from_config(config)

    def validate_config_update(self, old_config: dict[str, Any], new_config: dict[str, Any]) -> None:
        """The folder, batch_size and threads may change (a moved folder, another machine); options that change
        the vectors may not, since the collection's stored vectors would no longer compare with new ones — nor may
        the model become another Hub model (None is the pinned default; a folder may be a copy of the model)."""
        model = new_config.get("model", old_config.get("model"))
        if model != old_config.get("model") and (model is None or hub.hub_id(model) is not None):
            raise ArgumentError(f"model cannot change from {old_config.get('model')!r} to {model!r} on a collection: "
                                "its stored vectors were made by the old model. Create a new collection with the new "
                                "function and add the documents again")
        for key in _VECTOR_OPTIONS:
            if key in new_config and new_config[key] != old_config.get(key):
                raise ArgumentError(f"{key} cannot change from {old_config.get(key)!r} to {new_config[key]!r} on a "
                                    "collection: its stored vectors were made with the old value. Create a new "
                                    "collection with the new function and add the documents again")


def reembed(source: Any, target: Any, *, batch_size: int = 500) -> int:
    """Copy every record's id, document and metadata from collection `source` into `target`, which embeds the
    documents with its own function; returns the number copied. `source` is left as it is.

    This is how a collection made with another embedding function (Chroma's default, say) moves to this one:
    Chroma refuses a second function on an existing collection, so create `target` with
    `embedding_function=TinyMiniLMEmbeddingFunction()`, copy, then delete the old collection. Records are read and
    added `batch_size` at a time, so memory holds one batch. A record without a document (added as a vector only)
    cannot be re-embedded: that is a CorpusError (a ValueError) naming its id, raised before anything of its batch
    is added.
    """
    batch_size = check_int(batch_size, "batch_size")
    copied = 0
    while True:
        page = source.get(include=["documents", "metadatas"], limit=batch_size, offset=copied)
        if not page["ids"]:
            return copied
        for id_, doc in zip(page["ids"], page["documents"]):
            if doc is None:
                raise CorpusError(f"record {id_!r} has no document, only a vector: it cannot be re-embedded; add "
                                  "its text to the source collection, or delete the record, and copy again")
        metadatas = page["metadatas"]
        target.add(ids=page["ids"], documents=page["documents"],
                   metadatas=None if all(m is None for m in metadatas) else metadatas)
        copied += len(page["ids"])


__all__ = ["TinyMiniLMEmbeddingFunction", "reembed"]
