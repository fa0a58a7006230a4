"""The rerank routes: a cross-encoder served beside the embedding model (`tinyminilm serve --rerank-model ...`).

  POST /rerank     text-embeddings-inference's shape: {"query", "texts", "raw_scores", "return_text", "truncate",
                   "truncation_direction"} -> [{"index", "score", "text"?}], best first
  POST /v1/rerank  the Cohere / Jina shape that infinity and vLLM serve: {"model", "query", "documents", "top_n",
                   "return_documents"} -> {"id", "model", "results": [{"index", "relevance_score", "document"?}],
                   "usage"}

Both score each (query, text) pair with the cross-encoder's logit, through the server's batcher (pairs of
concurrent requests share forward passes, as texts do), and order the texts as CrossEncoder.rank does. The score
is the logit's sigmoid, as TEI gives it (whatever activation the model saved: ms-marco-MiniLM-L6-v2's is the
identity), or the logit itself with TEI's raw_scores. Without a reranker both routes answer 424, TEI's status for
"model is not a re-ranker".
"""

from __future__ import annotations

import os
import uuid
from typing import Any

import numpy as np
from starlette.requests import Request
from starlette.responses import Response

from ..activations import sigmoid
from ..cross_encoder import rank_order
from .batcher import Score
from .counting import TokenCounter
from .errors import ApiError
from .inputs import parse_cohere_rerank, parse_tei_rerank
from .responses import json_response, openai_error, tei_error


def load_reranker(name_or_folder: Any) -> Any:
    """The CrossEncoder of --rerank-model — a name, a folder, or the ModelSource the command line resolved (its
    `source` names it: the Hub id and commit, else the folder's name).
    Refuses a model of more than one label, which gives no single relevance score (TEI refuses it too)."""
    from .. import CrossEncoder

    reranker = CrossEncoder(name_or_folder)
    reranker.check_reranker(f"--rerank-model {reranker.source.repo_id or os.fspath(reranker.folder)}")
    return reranker


class Reranking:
    """The reranker, if any, and the handlers of the two rerank routes.

    service: the app's Service (its body reading, token counting and batcher are shared with the embedding
    routes); reranker: a one-label tinyminilm.CrossEncoder, or None.
    """

    def __init__(self, service: Any, reranker: Any = None) -> None:
        self.service = service
        self.reranker = reranker
        self.name = reranker.source.name if reranker is not None else None  # its Hub id, else its folder's name
        if reranker is not None:
            self.counter = TokenCounter(reranker)
            self.score = Score(reranker)

    def info(self) -> dict[str, Any] | None:
        """The reranker in /info, as TEI describes a reranker model; None without one."""
        if self.reranker is None:
            return None
        id2label = {str(k): v for k, v in self.reranker.config.id2label.items()}
        label2id = {v: int(k) for k, v in id2label.items()}
        return {"model_id": self.name, "model_sha": self.reranker.source.revision, "model_dtype": "float32",
                "model_type": {"reranker": {"id2label": id2label, "label2id": label2id}},
                "max_input_length": self.counter.limit}

    async def _logits(self, query: str, texts: list[str], truncate: bool, field: str, how: str
                      ) -> tuple[np.ndarray, list[int]]:
        """(float32 [n] logits of (query, text) pairs, their token counts); a pair over the limit is a 413."""
        pairs = [(query, t) for t in texts]
        tokens = await self.service.count_tokens(self.counter, pairs, truncate, field, False, how, " with the query")
        return await self.service.run_job(self.score, pairs, tokens), tokens

    def _check_loaded(self) -> None:
        if self.reranker is None:
            raise ApiError(424, "this server has no reranker: start it with --rerank-model ID_OR_FOLDER (e.g. "
                                "cross-encoder/ms-marco-MiniLM-L6-v2) to use POST /rerank and POST /v1/rerank",
                           code="no_reranker")

    async def tei_rerank(self, request: Request) -> Response:
        """POST /rerank."""
        s = self.service.settings
        try:
            self._check_loaded()
            req = parse_tei_rerank(await self.service.read_json(request), s.max_client_batch_size, s.auto_truncate)
            logits, tokens = await self._logits(req.query, req.texts, req.truncate, "texts", 'send "truncate": true')
        except ApiError as e:
            return tei_error(e)
        scores = logits if req.raw_scores else sigmoid(logits)  # [n]
        ranks = [{"index": i, "score": float(scores[i]), **({"text": req.texts[i]} if req.return_text else {})}
                 for i in rank_order(logits)]
        return json_response(ranks, headers={"x-compute-tokens": str(sum(tokens))})

    async def cohere_rerank(self, request: Request) -> Response:
        """POST /v1/rerank."""
        s = self.service.settings
        try:
            self._check_loaded()
            req = parse_cohere_rerank(await self.service.read_json(request), s.max_client_batch_size)
            if req.model is not None and req.model != self.name:
                raise ApiError(404, f"The model `{req.model}` does not exist on this server; its reranker is "
                                    f"`{self.name}` (see GET /v1/models)", param="model", code="model_not_found")
            logits, tokens = await self._logits(req.query, req.documents, s.auto_truncate, "documents",
                                                "start the server with --auto-truncate")
        except ApiError as e:
            return openai_error(e)
        scores = sigmoid(logits)  # [n]
        results = [{"index": i, "relevance_score": float(scores[i]),
                    **({"document": {"text": req.documents[i]}} if req.return_documents else {})}
                   for i in rank_order(logits, req.top_n)]
        n = sum(tokens)
        return json_response({"id": f"rerank-{uuid.uuid4().hex}", "model": self.name, "results": results,
                              "usage": {"prompt_tokens": n, "total_tokens": n}})
