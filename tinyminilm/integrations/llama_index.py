"""LlamaIndex embedding model: all-MiniLM-L6-v2 with sentence-transformers' vectors, without torch.

    from llama_index.core import Document, VectorStoreIndex
    from tinyminilm.integrations.llama_index import TinyMiniLMEmbedding   # pip install 'tinyminilm[llama-index]'

    docs = [Document(text="The cat sat on the mat."), Document(text="Stocks fell sharply on Monday.")]
    index = VectorStoreIndex.from_documents(docs, embed_model=TinyMiniLMEmbedding())
    index.as_retriever(similarity_top_k=1).retrieve("a kitten")

A drop-in for `HuggingFaceEmbedding(model_name="sentence-transformers/all-MiniLM-L6-v2")`: the same vectors.
"""

from __future__ import annotations

import asyncio
from pathlib import Path
from typing import Any, Optional

from .. import MODEL_ID
from ._common import EncodeOptions, require

require("llama_index.core", "llama-index", "tinyminilm.integrations.llama_index")

from llama_index.core.base.embeddings.base import BaseEmbedding, Embedding  # noqa: E402
from pydantic import PrivateAttr  # noqa: E402  (pydantic comes with llama-index-core)


class TinyMiniLMEmbedding(BaseEmbedding):
    """A LlamaIndex `BaseEmbedding` (a pydantic model): `encode`'s vectors as lists of floats.

    The options (model folder, batch_size, normalize_embeddings, truncate_dim, threads) are those of every adapter,
    described in `tinyminilm.integrations._common.EncodeOptions`; instances with the same folder and threads share
    one loaded model.
    embed_batch_size: texts LlamaIndex hands over per call (its own field; default here 256 rather than its 10,
    since `encode` sorts the texts of a call by length and batches them with little padding).

    The async methods run the encoding on a worker thread (`asyncio.to_thread`), so the event loop keeps serving
    other tasks meanwhile.
    """

    model: Optional[str] = None
    batch_size: int = 32
    normalize_embeddings: bool = False
    truncate_dim: Optional[int] = None
    threads: Optional[int] = None
    _options: EncodeOptions = PrivateAttr()

    def __init__(self, model: str | Path | None = None, *, batch_size: int = 32, normalize_embeddings: bool = False,
                 truncate_dim: int | None = None, threads: int | None = None, embed_batch_size: int = 256,
                 **kwargs: Any) -> None:
        options = EncodeOptions(model, batch_size, normalize_embeddings, truncate_dim, threads)
        kwargs.setdefault("model_name", options.model or MODEL_ID)
        super().__init__(embed_batch_size=embed_batch_size, **options.config(), **kwargs)
        self._options = options
        options.encoder()  # load (or reuse) the model now, so a wrong folder fails here

    @classmethod
    def class_name(cls) -> str:
        return "TinyMiniLMEmbedding"

    def _get_query_embedding(self, query: str) -> Embedding:  # encode_query: the model's query prompt, if any
        return self._options.embed_one(query, "query", "query").tolist()

    def _get_text_embedding(self, text: str) -> Embedding:  # encode_document: its document prompt, if any
        return self._options.embed_one(text, "text", "document").tolist()

    def _get_text_embeddings(self, texts: list[str]) -> list[Embedding]:
        return self._options.embed_documents(texts).tolist()

    async def _aget_query_embedding(self, query: str) -> Embedding:
        return await asyncio.to_thread(self._get_query_embedding, query)

    async def _aget_text_embedding(self, text: str) -> Embedding:
        return await asyncio.to_thread(self._get_text_embedding, text)

    async def _aget_text_embeddings(self, texts: list[str]) -> list[Embedding]:
        return await asyncio.to_thread(self._get_text_embeddings, texts)

    def _check_batch(self, texts: list[str]) -> None:
        """Raise encode's own error for the first non-str text, indexed in the whole list: LlamaIndex cuts the
        list into pieces of embed_batch_size before they reach `_get_text_embeddings`, which would see only a
        piece (and indices within it)."""
        for i, t in enumerate(texts):
            if not isinstance(t, str):
                # encode checks every text before any model work, so this raises at once and computes nothing
                self._options.embed_documents(texts[:i + 1])

    def get_text_embedding_batch(self, texts: list[str], show_progress: bool = False, **kwargs: Any) -> list[Embedding]:
        """LlamaIndex's batching, after checking that every text is a str."""
        self._check_batch(texts)
        return super().get_text_embedding_batch(texts, show_progress=show_progress, **kwargs)

    async def aget_text_embedding_batch(self, texts: list[str], show_progress: bool = False,
                                        **kwargs: Any) -> list[Embedding]:
        """LlamaIndex's async batching, after checking that every text is a str."""
        self._check_batch(texts)
        return await super().aget_text_embedding_batch(texts, show_progress=show_progress, **kwargs)


__all__ = ["TinyMiniLMEmbedding"]
