"""Reading and validating request bodies: the size limit while reading, JSON, and each route's fields (the
embedding routes', then the rerank routes').

Every refusal is an ApiError naming the field and, for a list, the index: `input[3] is an integer ...`.
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from typing import Any, AsyncIterator

from ..errors import ArgumentError, check_int, first_bad_text
from .errors import ApiError


async def read_body(stream: AsyncIterator[bytes], content_length: str | None, limit: int) -> bytes:
    """The request body, refused with 413 as soon as it passes `limit` bytes (before reading the rest)."""
    too_large = ApiError(413, f"the request body is larger than the server's limit of {limit} bytes "
                              "(--max-body-bytes); send fewer or shorter inputs per request", code="payload_too_large")
    if content_length is not None and content_length.isdigit() and int(content_length) > limit:
        raise too_large
    chunks, size = [], 0
    async for chunk in stream:
        size += len(chunk)
        if size > limit:
            raise too_large
        chunks.append(chunk)
    return b"".join(chunks)


def parse_json(body: bytes) -> dict[str, Any]:
    """The body as a JSON object, or a 400 that says where it is malformed."""
    if not body.strip():
        raise ApiError(400, "the request body is empty; send a JSON object such as {\"input\": \"some text\"}")
    try:
        value = json.loads(body)
    except UnicodeDecodeError as e:
        raise ApiError(400, f"the request body is not valid UTF-8 (byte {e.start}); send UTF-8 JSON") from None
    except json.JSONDecodeError as e:
        raise ApiError(400, f"the request body is not valid JSON: {e.msg} at line {e.lineno} column {e.colno}") \
            from None
    except RecursionError:
        raise ApiError(400, "the request body is nested too deeply; send a flat JSON object") from None
    except ValueError as e:  # e.g. an integer of more digits than Python converts
        raise ApiError(400, f"the request body is not valid JSON: {e}") from None
    if not isinstance(value, dict):
        raise ApiError(400, f"the request body is {_json_type(value)}; send a JSON object")
    return value


def _json_type(value: Any) -> str:
    """What a JSON value is, with its article: "null", "a number", "an array", ..."""
    if value is None:
        return "null"
    return {bool: "a boolean", int: "a number", float: "a number", str: "a string", list: "an array",
            dict: "an object"}.get(type(value), type(value).__name__)


def check_texts(value: Any, field: str, max_inputs: int) -> list[str]:
    """A str or a non-empty list of str as a list of texts; token ids, other types and lone surrogates refused."""
    if value is None:
        raise ApiError(400, f"`{field}` is missing; send a string or a list of strings", param=field)
    texts = [value] if isinstance(value, str) else value
    if not isinstance(texts, list):
        raise ApiError(400, f"`{field}` is {_json_type(value)}; send a string or a list of strings", param=field)
    if not texts:
        raise ApiError(400, f"`{field}` is an empty list; send at least one string", param=field, code="empty_input")
    if len(texts) > max_inputs:
        raise ApiError(413, f"`{field}` has {len(texts)} items, more than the server's limit of {max_inputs} per "
                            "request (--max-client-batch-size); split it into several requests", param=field,
                       code="too_many_inputs")
    found = first_bad_text(texts)  # the library's rule of what is text, worded here as a 400 naming the field
    if found is None:
        return texts
    i, surrogate_at = found
    t, name = texts[i], field if texts is not value else f"{field}[{i}]"
    if surrogate_at is not None:  # what json.loads makes of an unpaired "\ud800" escape
        raise ApiError(400, f"`{name}` is not valid Unicode: a lone surrogate \\u{ord(t[surrogate_at]):04x} at "
                            f"character {surrogate_at}; send well-formed UTF-8 text", param=name)
    if isinstance(t, int) and not isinstance(t, bool) or (
            isinstance(t, list) and t and all(isinstance(x, int) and not isinstance(x, bool) for x in t)):
        raise ApiError(400, f"`{name}` is token ids; this server accepts text only (ids made by another "
                            "tokenizer would embed something else): send the strings", param=name)
    raise ApiError(400, f"`{name}` is {_json_type(t)}; send a string", param=name)


def _optional_bool(body: dict, field: str, default: bool) -> bool:
    value = body.get(field)
    if value is None:
        return default
    if not isinstance(value, bool):
        raise ApiError(400, f"`{field}` is {_json_type(value)}; send true or false", param=field)
    return value


def _optional_dimensions(body: dict, dim: int) -> int | None:
    value = body.get("dimensions")
    if value is None:
        return None
    try:
        return check_int(value, "dimensions", 1, dim)  # the library's integer rule, worded here as a 400
    except ArgumentError:
        raise ApiError(400, f"`dimensions` is {json.dumps(value)}; send an integer from 1 to {dim}, "
                            f"or leave it out for all {dim}", param="dimensions") from None


@dataclass
class OpenAIRequest:
    """A validated POST /v1/embeddings body."""

    texts: list[str]
    model: str | None
    base64: bool
    dimensions: int | None


def parse_openai(body: dict[str, Any], max_inputs: int, dim: int) -> OpenAIRequest:
    """Validate an OpenAI embeddings request: input, model, encoding_format, dimensions (user is ignored)."""
    texts = check_texts(body.get("input"), "input", max_inputs)
    model = body.get("model")
    if model is not None and not isinstance(model, str):
        raise ApiError(400, f"`model` is {_json_type(model)}; send the model's name as a string", param="model")
    fmt = body.get("encoding_format")
    if fmt is not None and fmt not in ("float", "base64"):
        raise ApiError(400, f"`encoding_format` is {json.dumps(fmt)}; send \"float\" or \"base64\"",
                       param="encoding_format")
    return OpenAIRequest(texts, model, fmt == "base64", _optional_dimensions(body, dim))


@dataclass
class TEIRequest:
    """A validated POST /embed body."""

    texts: list[str]
    normalize: bool
    truncate: bool
    dimensions: int | None


def parse_tei(body: dict[str, Any], max_inputs: int, dim: int, auto_truncate: bool) -> TEIRequest:
    """Validate a TEI /embed request: inputs, normalize (default true), truncate (default --auto-truncate)."""
    texts = check_texts(body.get("inputs"), "inputs", max_inputs)
    _check_truncation_direction(body)
    for field in ("prompt_name", "prompt"):
        if body.get(field) is not None:
            raise ApiError(400, f"`{field}` is set, but this model has no prompts; leave it out", param=field)
    return TEIRequest(texts, _optional_bool(body, "normalize", True), _optional_bool(body, "truncate", auto_truncate),
                      _optional_dimensions(body, dim))


def _check_truncation_direction(body: dict) -> None:
    """TEI's truncation_direction: "Right" (or absent) only, as sentence-transformers cuts texts and pairs."""
    direction = body.get("truncation_direction")
    if direction is not None and direction not in ("Right", "right"):
        raise ApiError(400, f"`truncation_direction` is {json.dumps(direction)}; this server truncates on the right "
                            "only (as sentence-transformers does): send \"Right\" or leave it out",
                       param="truncation_direction")


# --------------------------------------------------------------------------------------------------------------
# The rerank routes: a query and the texts to rank by their relevance to it
# --------------------------------------------------------------------------------------------------------------

def _check_query(body: dict) -> str:
    query = body.get("query")
    if query is None:
        raise ApiError(400, "`query` is missing; send the query as a string", param="query")
    if not isinstance(query, str):
        raise ApiError(400, f"`query` is {_json_type(query)}; send the query as a string", param="query")
    return check_texts(query, "query", 1)[0]  # a lone surrogate is refused here


def _check_documents(value: Any, field: str, max_inputs: int) -> list[str]:
    """A non-empty list of texts to rank (a {"text": ...} object stands for its text, as Cohere and Jina allow)."""
    if value is None:
        raise ApiError(400, f"`{field}` is missing; send a list of strings", param=field)
    if not isinstance(value, list):
        raise ApiError(400, f"`{field}` is {_json_type(value)}; send a list of strings", param=field)
    texts = []
    for i, item in enumerate(value):
        if isinstance(item, dict):
            if not isinstance(item.get("text"), str):
                raise ApiError(400, f"`{field}[{i}]` is an object without a string `text`; send a string, or "
                                    "{\"text\": \"...\"}", param=f"{field}[{i}]")
            item = item["text"]
        texts.append(item)
    return check_texts(texts, field, max_inputs)


@dataclass
class TEIRerankRequest:
    """A validated POST /rerank body."""

    query: str
    texts: list[str]
    raw_scores: bool
    return_text: bool
    truncate: bool


def parse_tei_rerank(body: dict[str, Any], max_inputs: int, auto_truncate: bool) -> TEIRerankRequest:
    """Validate a TEI /rerank request: query, texts, raw_scores and return_text (default false), truncate (default
    --auto-truncate), truncation_direction (right only)."""
    query = _check_query(body)
    texts = _check_documents(body.get("texts"), "texts", max_inputs)
    _check_truncation_direction(body)
    return TEIRerankRequest(query, texts, _optional_bool(body, "raw_scores", False),
                            _optional_bool(body, "return_text", False), _optional_bool(body, "truncate", auto_truncate))


@dataclass
class CohereRerankRequest:
    """A validated POST /v1/rerank body."""

    query: str
    documents: list[str]
    model: str | None
    top_n: int | None
    return_documents: bool


def parse_cohere_rerank(body: dict[str, Any], max_inputs: int) -> CohereRerankRequest:
    """Validate a Cohere / Jina /v1/rerank request: query, documents, model, top_n (default all), return_documents
    (default false)."""
    query = _check_query(body)
    documents = _check_documents(body.get("documents"), "documents", max_inputs)
    model = body.get("model")
    if model is not None and not isinstance(model, str):
        raise ApiError(400, f"`model` is {_json_type(model)}; send the model's name as a string", param="model")
    top_n = body.get("top_n")
    if top_n is not None:
        try:
            top_n = check_int(top_n, "top_n")  # the library's integer rule, worded here as a 400
        except ArgumentError:
            raise ApiError(400, f"`top_n` is {json.dumps(top_n)}; send a positive integer, or leave it out for "
                                "every document", param="top_n") from None
    return CohereRerankRequest(query, documents, model, top_n, _optional_bool(body, "return_documents", False))
