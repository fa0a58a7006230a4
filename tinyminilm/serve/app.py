"""The Starlette application: OpenAI and text-embeddings-inference routes, auth, metrics, health.

Routes:
  POST /v1/embeddings  OpenAI's embeddings API (the official `openai` client works with base_url=".../v1")
  GET  /v1/models      OpenAI's model list (and /v1/models/{id})
  POST /embed          TEI's embed API: {"inputs", "normalize", "truncate"} -> [[float]]
  GET  /info           TEI's server information
  GET  /health         200 while the model is loaded and the batcher runs, else 503 (never needs the API key)
  GET  /metrics        Prometheus metrics
"""

from __future__ import annotations

import asyncio
import base64
import hmac
import json
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

from .batcher import Batcher
from .counting import TokenCounter
from .errors import ApiError, openai_body, tei_body
from .inputs import parse_json, parse_openai, parse_tei, read_body
from .metrics import Metrics

log = logging.getLogger("tinyminilm.serve")

_ROUTES = ("/v1/embeddings", "/v1/models", "/embed", "/info", "/health", "/metrics")
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


def _json(value: Any, status: int = 200, headers: dict[str, str] | None = None) -> Response:
    body = json.dumps(value, separators=(",", ":"), ensure_ascii=False).encode("utf-8")
    return Response(body, status_code=status, headers=headers, media_type="application/json")


def _openai_error(e: ApiError) -> Response:
    return _json(openai_body(e), e.status, e.headers)


def _tei_error(e: ApiError) -> Response:
    return _json(tei_body(e), e.status, e.headers)


class Service:
    """The model, its batcher and the handlers of every route."""

    def __init__(self, model: Any, settings: Settings) -> None:
        self.model = model
        self.settings = settings
        self.dim = model.get_embedding_dimension()
        self.names = {settings.model_name, *settings.aliases}
        self.metrics = Metrics()
        self.counter = TokenCounter(model)
        self.batcher = Batcher(model, settings.max_batch_tokens, settings.max_concurrent_requests, self.metrics)
        self._tokenize_pool = ThreadPoolExecutor(settings.tokenization_workers, thread_name_prefix="tinyminilm-tok")

    # -- shared steps ------------------------------------------------------------------------------------------

    async def _body(self, request: Request) -> dict[str, Any]:
        raw = await read_body(request.stream(), request.headers.get("content-length"), self.settings.max_body_bytes)
        return parse_json(raw)

    async def _count(self, texts: list[str], truncate: bool, field: str, single: bool, how: str) -> list[int]:
        args = (texts, truncate, field, single, how)
        if sum(len(t) for t in texts) <= _INLINE_CHARS:
            return self.counter.count(*args)
        return await asyncio.get_running_loop().run_in_executor(self._tokenize_pool, self.counter.count, *args)

    async def _embed(self, texts: list[str], tokens: list[int], raw: bool = False) -> np.ndarray:
        try:
            future = self.batcher.submit(texts, tokens, raw)
        except RuntimeError:
            raise ApiError(503, "the server is shutting down; retry on another instance or later") from None
        return await asyncio.wrap_future(future)

    # -- OpenAI ------------------------------------------------------------------------------------------------

    async def openai_embeddings(self, request: Request) -> Response:
        try:
            body = await self._body(request)
            req = parse_openai(body, self.settings.max_client_batch_size, self.dim)
            if req.model is not None and req.model not in self.names:
                raise ApiError(404, f"The model `{req.model}` does not exist on this server; it serves "
                                    f"`{self.settings.model_name}` (see GET /v1/models)", param="model",
                               code="model_not_found")
            single = isinstance(body.get("input"), str)
            tokens = await self._count(req.texts, self.settings.auto_truncate, "input", single,
                                       "start the server with --auto-truncate")
            vectors = await self._embed(req.texts, tokens)
        except ApiError as e:
            return _openai_error(e)
        if req.dimensions is not None:  # keep the first k, then unit length again
            vectors = self.model.finish(vectors, truncate_dim=req.dimensions, normalize_embeddings=True)
        if req.base64:  # little-endian float32 bytes, as the openai client decodes them
            rows = vectors.astype("<f4", copy=False)
            embeddings = [base64.b64encode(row.tobytes()).decode("ascii") for row in rows]
        else:
            embeddings = vectors.tolist()
        n = sum(tokens)
        return _json({"object": "list",
                      "data": [{"object": "embedding", "index": i, "embedding": e} for i, e in enumerate(embeddings)],
                      "model": self.settings.model_name,
                      "usage": {"prompt_tokens": n, "total_tokens": n}})

    def _model_card(self) -> dict[str, Any]:
        return {"id": self.settings.model_name, "object": "model", "created": self.settings.created,
                "owned_by": "tinyminilm"}

    async def openai_models(self, request: Request) -> Response:
        return _json({"object": "list", "data": [self._model_card()]})

    async def openai_model(self, request: Request) -> Response:
        name = request.path_params["model"]
        if name not in self.names:
            return _openai_error(ApiError(404, f"The model `{name}` does not exist on this server; it serves "
                                               f"`{self.settings.model_name}`", param="model",
                                          code="model_not_found"))
        return _json(self._model_card())

    # -- text-embeddings-inference -----------------------------------------------------------------------------

    async def tei_embed(self, request: Request) -> Response:
        try:
            body = await self._body(request)
            req = parse_tei(body, self.settings.max_client_batch_size, self.dim, self.settings.auto_truncate)
            if not req.normalize and self.model.pooling_mode not in ("mean", "cls"):
                raise ApiError(400, f"`normalize` false is not supported for {self.model.pooling_mode} "
                                    "pooling; send true", param="normalize")
            single = isinstance(body.get("inputs"), str)
            tokens = await self._count(req.texts, req.truncate, "inputs", single, 'send "truncate": true')
            vectors = await self._embed(req.texts, tokens, raw=not req.normalize)
        except ApiError as e:
            return _tei_error(e)
        vectors = self.model.finish(vectors, truncate_dim=req.dimensions, normalize_embeddings=req.normalize)
        return _json(vectors.tolist(), headers={"x-compute-tokens": str(sum(tokens))})

    async def tei_info(self, request: Request) -> Response:
        s = self.settings
        return _json({"model_id": s.model_name, "model_sha": s.model_sha, "model_dtype": "float32",
                      "model_type": {"embedding": {"pooling": self.model.pooling_mode}},
                      "max_concurrent_requests": s.max_concurrent_requests,
                      "max_input_length": self.counter.limit, "max_batch_tokens": s.max_batch_tokens,
                      "max_batch_requests": None, "max_client_batch_size": s.max_client_batch_size,
                      "auto_truncate": s.auto_truncate, "tokenization_workers": s.tokenization_workers,
                      "version": _version(), "sha": None, "docker_label": None})

    # -- operations --------------------------------------------------------------------------------------------

    async def health(self, request: Request) -> Response:
        if self.batcher.alive:
            return _json({"status": "ok"})
        return _json({"status": "unavailable", "error": "the batcher is not running"}, 503)

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
                response = _openai_error(e) if path.startswith("/v1/") else _tei_error(e)
                await response(scope, receive, send_recording)
            else:
                await self.app(scope, receive, send_recording)
        finally:
            self.service.metrics.request(route, status, time.perf_counter() - began)

    def _authorized(self, scope: dict) -> bool:
        for name, value in scope["headers"]:
            if name == b"authorization":
                return hmac.compare_digest(value, self.expected)  # constant time in the key's content
        return False


def create_app(model: Any, settings: Settings) -> Any:
    """The ASGI application serving `model` (a loaded tinyminilm encoder) with `settings`."""
    service = Service(model, settings)

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
                          "GET /v1/models, POST /embed, GET /info, GET /health, GET /metrics")
        return _openai_error(e) if request.url.path.startswith("/v1/") else _tei_error(e)

    async def not_allowed(request: Request, exc: Exception) -> Response:
        e = ApiError(405, f"{request.method} is not allowed on {request.url.path}")
        return _openai_error(e) if request.url.path.startswith("/v1/") else _tei_error(e)

    async def internal(request: Request, exc: Exception) -> Response:
        log.exception("unexpected error on %s", request.url.path, exc_info=exc)
        e = ApiError(500, "internal error; the server's log has the details")
        return _openai_error(e) if request.url.path.startswith("/v1/") else _tei_error(e)

    routes = [
        Route("/v1/embeddings", service.openai_embeddings, methods=["POST"]),
        Route("/v1/models", service.openai_models, methods=["GET"]),
        Route("/v1/models/{model:path}", service.openai_model, methods=["GET"]),
        Route("/embed", service.tei_embed, methods=["POST"]),
        Route("/info", service.tei_info, methods=["GET"]),
        Route("/health", service.health, methods=["GET"]),
        Route("/metrics", service.metrics_route, methods=["GET"]),
    ]
    app = Starlette(routes=routes, lifespan=lifespan,
                    exception_handlers={404: not_found, 405: not_allowed, Exception: internal})
    app.state.service = service
    return _Guard(app, service)
