"""The Starlette application: OpenAI and text-embeddings-inference routes, auth, metrics, health.

Routes:
  POST /v1/embeddings  OpenAI's embeddings API (the official `openai` client works with base_url=".../v1")
  GET  /v1/models      OpenAI's model list (and /v1/models/{id})
  POST /embed          TEI's embed API: {"inputs", "normalize", "truncate"} -> [[float]]
  POST /rerank         TEI's rerank API, with --rerank-model (rerank.py)
  POST /v1/rerank      the Cohere / Jina rerank API that infinity and vLLM serve, with --rerank-model (rerank.py)
  GET  /info           TEI's server information
  GET  /health         200 while the model is loaded and the batcher runs, else 503 (never needs the API key)
  GET  /metrics        Prometheus metrics
"""

from __future__ import annotations

import asyncio
import base64
import hmac
import logging
import time
from concurrent.futures import ThreadPoolExecutor
from contextlib import asynccontextmanager
from dataclasses import dataclass, field
from typing import Any

import numpy as np
from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import Response
from starlette.routing import Route

from .batcher import Batcher, Encode, Run
from .counting import TokenCounter
from .errors import ApiError
from .inputs import parse_json, parse_openai, parse_tei, read_body
from .metrics import Metrics
from .rerank import Reranking
from .responses import error_for, json_response, openai_error, tei_error

log = logging.getLogger("tinyminilm.serve")

_ROUTES = ("/v1/embeddings", "/v1/models", "/embed", "/rerank", "/v1/rerank", "/info", "/health", "/metrics")
_INLINE_CHARS = 4096  # requests up to this many characters are tokenized on the event loop (a hop costs more)


@dataclass
class Settings:
    """What `tinyminilm serve` was started with (see its --help for each)."""

    model_name: str
    aliases: tuple[str, ...] = ()
    model_sha: str | None = None
    api_key: str | None = None
    max_batch_tokens: int = 4096
    max_concurrent_requests: int = 512
    max_client_batch_size: int = 2048
    max_body_bytes: int = 2_000_000
    auto_truncate: bool = False
    tokenization_workers: int = 2
    created: int = field(default_factory=lambda: int(time.time()))


class Service:
    """The models, the batcher and the handlers of every route (the rerank routes' in `self.rerank`)."""

    def __init__(self, model: Any, settings: Settings, reranker: Any = None) -> None:
        self.model = model
        self.settings = settings
        self.dim = model.get_embedding_dimension()
        self.names = {settings.model_name, *settings.aliases}
        self.metrics = Metrics()
        self.counter = TokenCounter(model)
        self.encode, self.encode_pooled = Encode(model), Encode(model, raw=True)
        self.batcher = Batcher(settings.max_batch_tokens, settings.max_concurrent_requests, self.metrics)
        self.rerank = Reranking(self, reranker)
        self._tokenize_pool = ThreadPoolExecutor(settings.tokenization_workers, thread_name_prefix="tinyminilm-tok")

    # -- shared steps ------------------------------------------------------------------------------------------

    async def read_json(self, request: Request) -> dict[str, Any]:
        """The request's JSON object, read under --max-body-bytes."""
        raw = await read_body(request.stream(), request.headers.get("content-length"), self.settings.max_body_bytes)
        return parse_json(raw)

    async def count_tokens(self, counter: TokenCounter, items: list, truncate: bool, field: str, single: bool,
                           how: str, what: str = "") -> list[int]:
        """counter.count(...), off the event loop unless the items are short."""
        args = (items, truncate, field, single, how, what)
        chars = sum(len(x) if isinstance(x, str) else sum(map(len, x)) for x in items)  # texts, or pairs of them
        if chars <= _INLINE_CHARS:
            return counter.count(*args)
        return await asyncio.get_running_loop().run_in_executor(self._tokenize_pool, counter.count, *args)

    async def run_job(self, run: Run, items: list, tokens: list[int]) -> np.ndarray:
        """run(items) through the batcher, merged with other requests' items: one row per item."""
        try:
            future = self.batcher.submit(run, items, tokens)
        except RuntimeError:
            raise ApiError(503, "the server is shutting down; retry on another instance or later") from None
        return await asyncio.wrap_future(future)

    # -- OpenAI ------------------------------------------------------------------------------------------------

    async def openai_embeddings(self, request: Request) -> Response:
        try:
            body = await self.read_json(request)
            req = parse_openai(body, self.settings.max_client_batch_size, self.dim)
            if req.model is not None and req.model not in self.names:
                raise ApiError(404, f"The model `{req.model}` does not exist on this server; it serves "
                                    f"`{self.settings.model_name}` (see GET /v1/models)", param="model",
                               code="model_not_found")
            single = isinstance(body.get("input"), str)
            tokens = await self.count_tokens(self.counter, req.texts, self.settings.auto_truncate, "input", single,
                                             "start the server with --auto-truncate")
            vectors = await self.run_job(self.encode, req.texts, tokens)
        except ApiError as e:
            return openai_error(e)
        if req.dimensions is not None:  # keep the first k, then unit length again
            vectors = self.model.finish(vectors, truncate_dim=req.dimensions, normalize_embeddings=True)
        if req.base64:  # little-endian float32 bytes, as the openai client decodes them
            rows = vectors.astype("<f4", copy=False)
            embeddings = [base64.b64encode(row.tobytes()).decode("ascii") for row in rows]
        else:
            embeddings = vectors.tolist()
        n = sum(tokens)
        return json_response({"object": "list",
                              "data": [{"object": "embedding", "index": i, "embedding": e}
                                       for i, e in enumerate(embeddings)],
                              "model": self.settings.model_name,
                              "usage": {"prompt_tokens": n, "total_tokens": n}})

    def _model_cards(self) -> dict[str, dict[str, Any]]:
        """{name: OpenAI's model object} of the embedding model and, if loaded, the reranker."""
        return {name: {"id": name, "object": "model", "created": self.settings.created, "owned_by": "tinyminilm"}
                for name in (self.settings.model_name, self.rerank.name) if name is not None}

    async def openai_models(self, request: Request) -> Response:
        return json_response({"object": "list", "data": list(self._model_cards().values())})

    async def openai_model(self, request: Request) -> Response:
        name, cards = request.path_params["model"], self._model_cards()
        if name in self.names:
            name = self.settings.model_name
        if name not in cards:
            return openai_error(ApiError(404, f"The model `{name}` does not exist on this server; it serves "
                                              f"{' and '.join(f'`{n}`' for n in cards)}", param="model",
                                         code="model_not_found"))
        return json_response(cards[name])

    # -- text-embeddings-inference -----------------------------------------------------------------------------

    async def tei_embed(self, request: Request) -> Response:
        try:
            body = await self.read_json(request)
            req = parse_tei(body, self.settings.max_client_batch_size, self.dim, self.settings.auto_truncate)
            if not req.normalize and self.model.pooling_mode not in ("mean", "cls"):
                raise ApiError(400, f"`normalize` false is not supported for {self.model.pooling_mode} "
                                    "pooling; send true", param="normalize")
            single = isinstance(body.get("inputs"), str)
            tokens = await self.count_tokens(self.counter, req.texts, req.truncate, "inputs", single,
                                             'send "truncate": true')
            vectors = await self.run_job(self.encode if req.normalize else self.encode_pooled, req.texts, tokens)
        except ApiError as e:
            return tei_error(e)
        vectors = self.model.finish(vectors, truncate_dim=req.dimensions, normalize_embeddings=req.normalize)
        return json_response(vectors.tolist(), headers={"x-compute-tokens": str(sum(tokens))})

    async def tei_info(self, request: Request) -> Response:
        s = self.settings
        return json_response({"model_id": s.model_name, "model_sha": s.model_sha, "model_dtype": "float32",
                              "model_type": {"embedding": {"pooling": self.model.pooling_mode}},
                              "max_concurrent_requests": s.max_concurrent_requests,
                              "max_input_length": self.counter.limit, "max_batch_tokens": s.max_batch_tokens,
                              "max_batch_requests": None, "max_client_batch_size": s.max_client_batch_size,
                              "auto_truncate": s.auto_truncate, "tokenization_workers": s.tokenization_workers,
                              "version": _version(), "sha": None, "docker_label": None,
                              "reranker": self.rerank.info()})

    # -- operations --------------------------------------------------------------------------------------------

    async def health(self, request: Request) -> Response:
        if self.batcher.alive:
            return json_response({"status": "ok"})
        return json_response({"status": "unavailable", "error": "the batcher is not running"}, 503)

    async def metrics_route(self, request: Request) -> Response:
        return Response(self.metrics.render(), media_type=self.metrics.content_type)


def _version() -> str:
    from .. import __version__

    return __version__


class _Guard:
    """ASGI middleware: the API key check (every route but /health) and the request metrics."""

    def __init__(self, app: Any, service: Service) -> None:
        self.app = app
        self.service = service
        key = service.settings.api_key
        self.expected = f"Bearer {key}".encode("utf-8") if key else None

    async def __call__(self, scope: dict, receive: Any, send: Any) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        path = scope["path"]
        route = path if path in _ROUTES else "/v1/models" if path.startswith("/v1/models/") else "other"
        began = time.perf_counter()
        status = 500

        async def send_recording(message: dict) -> None:
            nonlocal status
            if message["type"] == "http.response.start":
                status = message["status"]
            await send(message)

        try:
            if self.expected is not None and path != "/health" and not self._authorized(scope):
                given = any(k == b"authorization" for k, _ in scope["headers"])
                e = ApiError(401, ("the API key in the Authorization header is not this server's" if given else
                                   "this server requires an API key: send the header `Authorization: Bearer <key>`"),
                             code="invalid_api_key", headers={"WWW-Authenticate": "Bearer"})
                await error_for(path, e)(scope, receive, send_recording)
            else:
                await self.app(scope, receive, send_recording)
        finally:
            self.service.metrics.request(route, status, time.perf_counter() - began)

    def _authorized(self, scope: dict) -> bool:
        for name, value in scope["headers"]:
            if name == b"authorization":
                return hmac.compare_digest(value, self.expected)  # constant time in the key's content
        return False


def create_app(model: Any, settings: Settings, reranker: Any = None) -> Any:
    """The ASGI application serving `model` (a loaded tinyminilm encoder) with `settings`, and `reranker` (a
    one-label tinyminilm.CrossEncoder, or None) on the rerank routes."""
    service = Service(model, settings, reranker)

    @asynccontextmanager
    async def lifespan(app: Starlette):
        service.batcher.start()
        try:
            yield
        finally:  # uvicorn has finished the requests in flight; let the batcher drain and end
            await asyncio.get_running_loop().run_in_executor(None, service.batcher.stop)
            service._tokenize_pool.shutdown(wait=True)

    async def not_found(request: Request, exc: Exception) -> Response:
        e = ApiError(404, f"no route {request.method} {request.url.path}; the routes are POST /v1/embeddings, "
                          "GET /v1/models, POST /embed, POST /rerank, POST /v1/rerank, GET /info, GET /health, "
                          "GET /metrics")
        return error_for(request.url.path, e)

    async def not_allowed(request: Request, exc: Exception) -> Response:
        return error_for(request.url.path, ApiError(405, f"{request.method} is not allowed on {request.url.path}"))

    async def internal(request: Request, exc: Exception) -> Response:
        log.exception("unexpected error on %s", request.url.path, exc_info=exc)
        return error_for(request.url.path, ApiError(500, "internal error; the server's log has the details"))

    routes = [
        Route("/v1/embeddings", service.openai_embeddings, methods=["POST"]),
        Route("/v1/models", service.openai_models, methods=["GET"]),
        Route("/v1/models/{model:path}", service.openai_model, methods=["GET"]),
        Route("/embed", service.tei_embed, methods=["POST"]),
        Route("/rerank", service.rerank.tei_rerank, methods=["POST"]),
        Route("/v1/rerank", service.rerank.cohere_rerank, methods=["POST"]),
        Route("/info", service.tei_info, methods=["GET"]),
        Route("/health", service.health, methods=["GET"]),
        Route("/metrics", service.metrics_route, methods=["GET"]),
    ]
    app = Starlette(routes=routes, lifespan=lifespan,
                    exception_handlers={404: not_found, 405: not_allowed, Exception: internal})
    app.state.service = service
    return _Guard(app, service)
