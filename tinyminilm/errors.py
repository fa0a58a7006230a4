"""tinyminilm's exceptions, and the argument checks the package shares.

Every error tinyminilm raises on purpose about its input is a `TinyMiniLMError` (each class also subclasses the
built-in exception it stands for, so `except ValueError` keeps working). Its message names the file, argument,
field or index, says what is wrong and what to do. Anything else that escapes — a plain ValueError from NumPy, an
AttributeError — is a bug in tinyminilm, and the command line shows it as one (a traceback, exit status 1).
"""

from __future__ import annotations

import re
from collections.abc import Sequence
from typing import Any


class TinyMiniLMError(Exception):
    """Base class of every error tinyminilm raises on purpose."""


class ConfigError(TinyMiniLMError, ValueError):
    """A model folder's JSON configuration is missing, malformed or describes an unsupported model."""


class WeightsError(TinyMiniLMError, ValueError):
    """model.safetensors is corrupt, truncated, or does not match config.json."""


class TokenizerError(TinyMiniLMError, ValueError):
    """tokenizer.json is missing or cannot be loaded, or the tokenizer failed on a text."""


class IntegrityError(TinyMiniLMError, OSError):
    """A model file's SHA-256 differs from the pinned manifest."""


class DownloadError(TinyMiniLMError, OSError):
    """No source could provide the model files."""


class ArgumentError(TinyMiniLMError, ValueError):
    """An argument's value is out of range, unknown, or cannot be honoured (e.g. quantizing a single text)."""


class ArgumentTypeError(TinyMiniLMError, TypeError):
    """An argument, or an item of it, has the wrong type (e.g. bytes or None where text is expected)."""


class InputError(TinyMiniLMError, ValueError):
    """An input file is missing, undecodable, malformed, lacks the requested field or column, or is empty."""


class CorpusError(TinyMiniLMError, ValueError):
    """A corpus file or a batch lacks a column, holds a non-text value, or an output path is already in use."""


class ApiError(TinyMiniLMError):
    """A request `tinyminilm serve` refuses: HTTP status, message, and the field at fault (OpenAI's `param`)."""

    def __init__(self, status: int, message: str, param: str | None = None, code: str | None = None,
                 headers: dict[str, str] | None = None) -> None:
        super().__init__(message)
        self.status = status
        self.message = message
        self.param = param
        self.code = code
        self.headers = headers or {}


# --------------------------------------------------------------------------------------------------------------
# Shared argument checks
# --------------------------------------------------------------------------------------------------------------

def check_int(value: Any, name: str, minimum: int = 1, maximum: int | None = None, note: str = "") -> int:
    """`value` as an int, or an ArgumentError naming the argument: bools and floats are refused, bounds inclusive."""
    import numpy as np

    if (isinstance(value, bool) or not isinstance(value, (int, np.integer)) or value < minimum
            or (maximum is not None and value > maximum)):
        if maximum is not None:
            want = f"an integer from {minimum} to {maximum}{note}"
        else:
            want = "a positive integer" if minimum == 1 else f"an integer >= {minimum}"
        raise ArgumentError(f"{name} must be {want}, got {value!r}")
    return int(value)


def check_choice(value: Any, name: str, choices: Sequence[str]) -> str:
    """`value` if it is one of `choices`, else an ArgumentError listing them."""
    if not isinstance(value, str) or value not in choices:
        raise ArgumentError(f"{name} must be one of {', '.join(repr(c) for c in choices)}; got {value!r}")
    return value


_SURROGATE = re.compile("[\ud800-\udfff]")  # what str allows and UTF-8 (hence the Rust tokenizer) does not


def lone_surrogate(text: str) -> tuple[int, str] | None:
    """(position, character) of the first lone surrogate in `text` (e.g. from a JSON "\\ud800" escape), or None."""
    found = _SURROGATE.search(text)
    return None if found is None else (found.start(), found.group())


def first_bad_text(texts: Sequence[Any]) -> tuple[int, int | None] | None:
    """Where `texts` first holds something that is not text the tokenizer can take: (index, None) for an item that
    is not a str, (index, character position) for a str with a lone surrogate; None when every item is text.

    The one rule behind every front end's check (`check_texts` here, the server's 400s, Ray's corpus errors), each
    of which words the refusal its own way. The whole of each text is checked, so the verdict does not depend on
    where truncation cuts."""
    for i, t in enumerate(texts):
        if not isinstance(t, str):
            return i, None
        bad = lone_surrogate(t)
        if bad is not None:
            return i, bad[0]
    return None


def check_texts(texts: Sequence[Any], name: str = "texts") -> None:
    """Refuse what is not text, by index: a non-str item is an ArgumentTypeError, a lone surrogate an
    ArgumentError (see `first_bad_text`)."""
    found = first_bad_text(texts)
    if found is not None:
        _refuse_text(texts[found[0]], f"{name}[{found[0]}]", found[1])


def check_text(text: Any, name: str = "text") -> str:
    """`text` if it is a str the tokenizer can take, else `check_texts`' error naming `name`."""
    found = first_bad_text([text])
    if found is not None:
        _refuse_text(text, name, found[1])
    return text


def _refuse_text(text: Any, name: str, surrogate_at: int | None) -> None:
    if surrogate_at is None:
        hint = " (decode bytes first, e.g. b.decode('utf-8'))" if isinstance(text, (bytes, bytearray)) else ""
        raise ArgumentTypeError(f"{name} is {type(text).__name__}, expected str{hint}")
    raise ArgumentError(f"{name} is not valid Unicode: a lone surrogate {text[surrogate_at]!r} at character "
                        f"{surrogate_at}; clean it first, e.g. text.encode('utf-8', 'replace').decode('utf-8')")


def check_torch_only_options(device: Any, pool: Any, chunk_size: Any) -> None:
    """sentence-transformers' encode/predict options device, pool and chunk_size, accepted where they change nothing
    here: a device other than the CPU and a multi-process pool are refused with the reason."""
    check_device(device)
    if pool is not None:
        raise ArgumentError("pool: tinyminilm needs no multi-process pool, it runs batches on a thread per core "
                            "(model.threads); drop pool=... and start_multi_process_pool()")
    if chunk_size is not None:
        check_int(chunk_size, "chunk_size")


def check_device(device: Any) -> None:
    """sentence-transformers' `device`: None or "cpu" are accepted (NumPy runs on the CPU), anything else refused."""
    if device is not None and str(device) != "cpu":
        raise ArgumentError(f"device={device!r}: tinyminilm runs on the CPU with NumPy (no torch, no GPU); pass "
                            "device=None or 'cpu'")
