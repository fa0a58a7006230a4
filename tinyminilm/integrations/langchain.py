"""LangChain: all-MiniLM-L6-v2 embeddings and a MiniLM cross-encoder reranker, with sentence-transformers' numbers,
without torch.

    from langchain_core.vectorstores import InMemoryVectorStore
    from tinyminilm.integrations.langchain import TinyMiniLMEmbeddings      # pip install 'tinyminilm[langchain]'

    store = InMemoryVectorStore.from_texts(["The cat sat on the mat.", "Stocks fell."], TinyMiniLMEmbeddings())
    store.similarity_search("a kitten", k=1)

`TinyMiniLMEmbeddings` is a drop-in for `HuggingFaceEmbeddings(model_name="sentence-transformers/all-MiniLM-L6-v2")`:
the same vectors. `TinyMiniLMCrossEncoder` is one for `HuggingFaceCrossEncoder(model_name=...)` in LangChain's
`CrossEncoderReranker` (docs/integrations.md has the pipeline):

    from langchain_classic.retrievers.document_compressors import CrossEncoderReranker   # pip install langchain-classic
    reranker = CrossEncoderReranker(model=TinyMiniLMCrossEncoder("path/to/ms-marco-MiniLM-L6-v2"), top_n=3)
    reranker.compress_documents(store.similarity_search("a kitten", k=20), "a kitten")
"""

from __future__ import annotations

import asyncio
import os
from pathlib import Path
from typing import Any

from ..activations import activation_function
from ..errors import ArgumentTypeError, check_int
from ._common import DEFAULT_CROSS_ENCODER, EncodeOptions, require, shared_cross_encoder

require("langchain_core", "langchain", "tinyminilm.integrations.langchain")

from langchain_core.cross_encoders import BaseCrossEncoder  # noqa: E402
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


class TinyMiniLMCrossEncoder(BaseCrossEncoder):
    """A `langchain_core.cross_encoders.BaseCrossEncoder`, the class of the `model` that LangChain's
    `CrossEncoderReranker` takes (langchain-classic re-exports this very class): `score` gives the scores of
    tinyminilm's `CrossEncoder.predict`.

    A drop-in for `HuggingFaceCrossEncoder(model_name=...)` (langchain-community), whose `score` returns
    sentence-transformers' `CrossEncoder.predict` with the model's own activation: raw logits for
    cross-encoder/ms-marco-MiniLM-L6-v2 (its config saves Identity), sigmoids for a one-label model that saves none;
    for a model with several labels, the second label's score, as HuggingFaceCrossEncoder takes it.

    model: a cross-encoder's folder, or a Hub id as `CrossEncoder` resolves it (a bare name is in cross-encoder/).
    max_length, trust_remote_code: as in `CrossEncoder` (None: the model's max_length). activation_fn: as
    `predict` takes it ("sigmoid", a torch class path, a NumPy callable), None for the model's own. batch_size:
    pairs per forward pass. threads: batches run at once, None for every core. Instances with the same folder,
    max_length, trust_remote_code and threads share one loaded model.
    """

    def __init__(self, model: str | os.PathLike = DEFAULT_CROSS_ENCODER, *, max_length: int | None = None,
                 activation_fn: Any = None, batch_size: int = 32, threads: int | None = None,
                 trust_remote_code: bool = False) -> None:
        self.batch_size = check_int(batch_size, "batch_size")
        self.activation_fn = None if activation_fn is None else activation_function(activation_fn)
        # loaded (or reused) now, so a wrong folder fails here
        self.model = shared_cross_encoder(model, max_length=max_length, trust_remote_code=trust_remote_code,
                                          threads=threads)

    def score(self, text_pairs: list[tuple[str, str]]) -> list[float]:
        """One score (a float) per (query, document) pair, in order; errors are `predict`'s, naming the pair
        (`inputs[2][0] is NoneType, expected str` for a missing query)."""
        if isinstance(text_pairs, (list, tuple)) and text_pairs and not isinstance(text_pairs[0], (list, tuple)):
            raise ArgumentTypeError(f"text_pairs must be a list of (text, text) pairs, got one pair "
                                    f"({type(text_pairs).__name__} of {type(text_pairs[0]).__name__}); wrap it in a "
                                    "list")
        scores = self.model.predict(text_pairs, batch_size=self.batch_size, activation_fn=self.activation_fn)
        if scores.ndim > 1:  # [n, num_labels] -> [n]: the second label, as HuggingFaceCrossEncoder.score takes it
            scores = scores[:, 1]
        return scores.tolist()


__all__ = ["TinyMiniLMEmbeddings", "TinyMiniLMCrossEncoder"]
