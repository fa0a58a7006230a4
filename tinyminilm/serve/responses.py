"""JSON responses, and an ApiError as each API shapes it (OpenAI's on /v1/ routes, TEI's on the others)."""

from __future__ import annotations

import json
from typing import Any

from starlette.responses import Response

from .errors import ApiError, openai_body, tei_body


def json_response(value: Any, status: int = 200, headers: dict[str, str] | None = None) -> Response:
    """`value` as compact UTF-8 JSON."""
    body = json.dumps(value, separators=(",", ":"), ensure_ascii=False).encode("utf-8")
    return Response(body, status_code=status, headers=headers, media_type="application/json")


def openai_error(e: ApiError) -> Response:
    """`e` in OpenAI's error shape, with its status and headers."""
    return json_response(openai_body(e), e.status, e.headers)


def tei_error(e: ApiError) -> Response:
    """`e` in text-embeddings-inference's error shape, with its status and headers."""
    return json_response(tei_body(e), e.status, e.headers)


def error_for(path: str, e: ApiError) -> Response:
    """`e` shaped for the API `path` belongs to: OpenAI's under /v1/, TEI's elsewhere."""
    return openai_error(e) if path.startswith("/v1/") else tei_error(e)
