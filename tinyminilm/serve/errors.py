"""The errors the server answers with, and their JSON shape on each API.

OpenAI routes answer `{"error": {"message", "type", "param", "code"}}`, as api.openai.com does; the
text-embeddings-inference (TEI) routes answer `{"error", "error_type"}`, as TEI does. Every message names the field
(and index) at fault, says what is wrong and what to do.
"""

from __future__ import annotations

from typing import Any

from ..errors import ApiError  # defined with the package's other exceptions

# TEI's error_type for each status (text-embeddings-inference router: Validation -> 413, Empty -> 400,
# Tokenizer -> 422, Overloaded -> 429, Unhealthy -> 503, Backend -> 424, e.g. /rerank without a reranker);
# others get the closest.
_TEI_TYPES = {400: "Validation", 401: "Unauthorized", 404: "NotFound", 413: "Validation", 422: "Tokenizer",
              424: "Backend", 429: "Overloaded", 503: "Unhealthy", 500: "Backend"}
# OpenAI's `type` for each status.
_OPENAI_TYPES = {401: "invalid_request_error", 429: "requests", 500: "server_error", 503: "server_error"}


def overloaded(limit: int) -> ApiError:
    """429: the queue already holds `limit` requests."""
    return ApiError(429, f"the server is at its limit of {limit} requests in flight (--max-concurrent-requests); "
                         "retry after the time in the Retry-After header", code="rate_limit_exceeded",
                    headers={"Retry-After": "1"})


def openai_body(e: ApiError) -> dict[str, Any]:
    """The body of `e` in OpenAI's error shape."""
    return {"error": {"message": e.message, "type": _OPENAI_TYPES.get(e.status, "invalid_request_error"),
                      "param": e.param, "code": e.code}}


def tei_body(e: ApiError) -> dict[str, Any]:
    """The body of `e` in text-embeddings-inference's error shape."""
    return {"error": e.message, "error_type": _TEI_TYPES.get(e.status, "Validation")}
