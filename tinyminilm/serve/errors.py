"""The errors the server answers with, and their JSON shape on each API.

OpenAI routes answer `{"error": {"message", "type", "param", "code"}}`, as api.openai.com does; the
text-embeddings-inference (TEI) routes answer `{"error", "error_type"}`, as TEI does. Every message names the field
(and index) at fault, says what is wrong and what to do.
"""

from __future__ import annotations

from typing import Any

# TEI's error_type for each status (text-embeddings-inference router: Validation -> 413, Empty -> 400,
# Tokenizer -> 422, Overloaded -> 429, Unhealthy -> 503); others get the closest.
_TEI_TYPES = {400: "Validation", 401: "Unauthorized", 404: "NotFound", 413: "Validation", 422: "Tokenizer",
              429: "Overloaded", 503: "Unhealthy", 500: "Backend"}
# OpenAI's `type` for each status.
_OPENAI_TYPES = {401: "invalid_request_error", 429: "requests", 500: "server_error", 503: "server_error"}


class ApiError(Exception):
    """A request the server refuses: HTTP status, message, and the field at fault (OpenAI's `param`)."""

    def __init__(self, status: int, message: str, param: str | None = None, code: str | None = None,
                 headers: dict[str, str] | None = None) -> None:
        super().__init__(message)
        self.status = status
        self.message = message
        self.param = param
        self.code = code
        self.headers = headers or {}

    def openai_body(self) -> dict[str, Any]:
        """The body in OpenAI's error shape."""
        return {"error": {"message": self.message, "type": _OPENAI_TYPES.get(self.status, "invalid_request_error"),
                          "param": self.param, "code": self.code}}

    def tei_body(self) -> dict[str, Any]:
        """The body in text-embeddings-inference's error shape."""
        return {"error": self.message, "error_type": _TEI_TYPES.get(self.status, "Validation")}


def overloaded(limit: int) -> ApiError:
    """429: the queue already holds `limit` requests."""
    return ApiError(429, f"the server is at its limit of {limit} requests in flight (--max-concurrent-requests); "
                         "retry after the time in the Retry-After header", code="rate_limit_exceeded",
                    headers={"Retry-After": "1"})
