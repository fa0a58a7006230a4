"""LlamaIndex: an all-MiniLM-L6-v2 embedding model and a MiniLM cross-encoder reranker, with sentence-transformers'
numbers, without torch.

    from llama_index.core import Document, VectorStoreIndex
    from tinyminilm.integrations.llama_index import TinyMiniLMEmbedding   # pip install 'tinyminilm[llama-index]'

    docs = [Document(text="The cat sat on the mat."), Document(text="Stocks fell sharply on Monday.")]
    index = VectorStoreIndex.from_documents(docs, embed_model=TinyMiniLMEmbedding())
    index.as_retriever(similarity_top_k=1).retrieve("a kitten")

`TinyMiniLMEmbedding` is a drop-in for `HuggingFaceEmbedding(model_name="sentence-transformers/all-MiniLM-L6-v2")`:
the same vectors. `TinyMiniLMRerank` is one for `SentenceTransformerRerank(top_n, model)`, a node postprocessor:

    rerank = TinyMiniLMRerank(top_n=3, model="path/to/ms-marco-MiniLM-L6-v2")
    rerank.postprocess_nodes(index.as_retriever(similarity_top_k=20).retrieve("a kitten"), query_str="a kitten")
"""

from __future__ import annotations

import asyncio
import os
from pathlib import Path
from typing import Any, Optional

from .. import MODEL_ID, CrossEncoder
from ..errors import ArgumentError, check_device, check_int
from ._common import DEFAULT_CROSS_ENCODER, EncodeOptions, require, shared_cross_encoder

require("llama_index.core", "llama-index", "tinyminilm.integrations.llama_index")

from llama_index.core.base.embeddings.base import BaseEmbedding, Embedding  # noqa: E402
from llama_index.core.callbacks import CBEventType, EventPayload  # noqa: E402
from llama_index.core.postprocessor.types import BaseNodePostprocessor  # noqa: E402
from llama_index.core.schema import MetadataMode, NodeWithScore, QueryBundle  # noqa: E402
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


class TinyMiniLMRerank(BaseNodePostprocessor):
    """A LlamaIndex node postprocessor that reranks nodes with tinyminilm's `CrossEncoder`, as LlamaIndex's
    `SentenceTransformerRerank` does with sentence-transformers': the same arguments and the same result.

    Each node's text (`get_content(MetadataMode.EMBED)`) is scored with the query; every node's `score` becomes its
    cross-encoder score (the previous one is kept in `node.metadata["retrieval_score"]` with
    keep_retrieval_score=True), and the top_n best are returned, best first — in `CrossEncoder.rank`'s order, which
    is SentenceTransformerRerank's (equal scores keep the nodes' order). The scores are `predict`'s with the model's
    own activation: raw logits for cross-encoder/ms-marco-MiniLM-L6-v2.

    model: a one-label cross-encoder's folder, or a Hub id as `CrossEncoder` resolves it; stored as its Hub id or
    absolute folder. device: None or "cpu" (there is no GPU path). trust_remote_code: as in `CrossEncoder`
    (default True, as SentenceTransformerRerank's). Beyond SentenceTransformerRerank: max_length (None: the model's,
    512 for ms-marco-MiniLM-L6-v2, the length SentenceTransformerRerank sets), batch_size (pairs per forward pass)
    and threads (batches run at once, None for every core). Instances with the same folder, max_length,
    trust_remote_code and threads share one loaded model.
    """

    model: str
    top_n: int
    device: str = "cpu"
    keep_retrieval_score: bool = False
    trust_remote_code: bool = False
    max_length: Optional[int] = None
    batch_size: int = 32
    threads: Optional[int] = None
    _model: CrossEncoder = PrivateAttr()

    def __init__(self, top_n: int = 2, model: str | os.PathLike = DEFAULT_CROSS_ENCODER, device: str | None = None,
                 keep_retrieval_score: bool = False, trust_remote_code: bool = True, *,
                 max_length: int | None = None, batch_size: int = 32, threads: int | None = None,
                 **kwargs: Any) -> None:
        check_device(device)
        top_n, batch_size = check_int(top_n, "top_n"), check_int(batch_size, "batch_size")
        cross_encoder = shared_cross_encoder(model, max_length=max_length, trust_remote_code=trust_remote_code,
                                             threads=threads)  # loaded (or reused) now: a wrong folder fails here
        super().__init__(top_n=top_n, model=cross_encoder.source.repo_id or str(cross_encoder.folder),
                         device="cpu", keep_retrieval_score=keep_retrieval_score, trust_remote_code=trust_remote_code,
                         max_length=max_length, batch_size=batch_size, threads=threads, **kwargs)
        self._model = cross_encoder

    @classmethod
    def class_name(cls) -> str:
        return "TinyMiniLMRerank"

    def _postprocess_nodes(self, nodes: list[NodeWithScore],
                           query_bundle: Optional[QueryBundle] = None) -> list[NodeWithScore]:
        if query_bundle is None:
            raise ArgumentError("TinyMiniLMRerank needs the query: call postprocess_nodes(nodes, query_str=...) or "
                                "pass query_bundle=")
        if not nodes:
            return []
        texts = [n.node.get_content(metadata_mode=MetadataMode.EMBED) for n in nodes]
        with self.callback_manager.event(CBEventType.RERANKING, payload={
                EventPayload.NODES: nodes, EventPayload.MODEL_NAME: self.model,
                EventPayload.QUERY_STR: query_bundle.query_str, EventPayload.TOP_K: self.top_n}) as event:
            ranked = self._model.rank(query_bundle.query_str, texts, batch_size=self.batch_size)
            for hit in ranked:
                node = nodes[hit["corpus_id"]]
                if self.keep_retrieval_score:
                    node.node.metadata["retrieval_score"] = node.score
                node.score = hit["score"]
            reranked = [nodes[hit["corpus_id"]] for hit in ranked[:self.top_n]]
            event.on_end(payload={EventPayload.NODES: reranked})
        return reranked


__all__ = ["TinyMiniLMEmbedding", "TinyMiniLMRerank"]
