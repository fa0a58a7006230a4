"""LangChain embeddings: all-MiniLM-L6-v2 with sentence-transformers' vectors, without torch.

    from langchain_core.vectorstores import InMemoryVectorStore
    from tinyminilm.integrations.langchain import TinyMiniLMEmbeddings      # pip install 'tinyminilm[langchain]'

    store = InMemoryVectorStore.from_texts(["The cat sat on the mat.", "Stocks fell."], TinyMiniLMEmbeddings())
    store.similarity_search("a kitten", k=1)

A drop-in for `HuggingFaceEmbeddings(model_name="sentence-transformers/all-MiniLM-L6-v2")`: the same vectors.
"""

from __future__ import annotations

import asyncio
from pathlib import Path

from ._common import EncodeOptions, require

require("langchain_core", "langchain", "tinyminilm.integrations.langchain")

from langchain_core.embeddings import Embeddings  # noqa: E402


class TinyMiniLMEmbeddings(Embeddings):
    """A `langchain_core.embeddings.Embeddings`: `encode`'s vectors as lists of floats.

    The options (model folder, batch_size, normalize_embeddings, truncate_dim, threads) are those of every adapter,
    described in `tinyminilm.integrations._common.EncodeOptions`; instances with the same folder and threads share
    one loaded model.

    The async methods run the encoding on a worker thread (`asyncio.to_thread`), so the event loop keeps serving
    other tasks meanwhile; NumPy releases the GIL in its matrix products.
    """

    def __init__(self, model: str | Path | None = None, *, batch_size: int = 32, normalize_embeddings: bool = False,
                 truncate_dim: int | None = None, threads: int | None = None) -> None:
        self.options = EncodeOptions(model, batch_size, normalize_embeddings, truncate_dim, threads)
        self.options.encoder()  # load (or reuse) the model now, so a wrong folder fails here

    def embed_documents(self, texts: list[str]) -> list[list[float]]:
        """One vector (list of dim floats) per text, in order, by `encode_document` (the model's document prompt, if
        it has one); a non-str text is a TypeError naming its index."""
        return self.options.embed_documents(texts).tolist()

    def embed_query(self, text: str) -> list[float]:
        """The vector of one query, by `encode_query` (the model's query prompt, if it has one)."""
        return self.options.embed_one(text, "text", "query").tolist()

    async def aembed_documents(self, texts: list[str]) -> list[list[float]]:
        """`embed_documents` on a worker thread."""
        return await asyncio.to_thread(self.embed_documents, texts)

    async def aembed_query(self, text: str) -> list[float]:
        """`embed_query` on a worker thread."""
        return await asyncio.to_thread(self.embed_query, text)


__all__ = ["TinyMiniLMEmbeddings"]
