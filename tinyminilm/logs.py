"""Showing tinyminilm's log records on a stream while a block runs: how a front end lets the library speak.

Library code never prints. What a user may want to see goes through `logging` instead: the fetch of the default
model (logger "tinyminilm", INFO: what, how big, from where, to where), the server's start-up warnings (logger
"tinyminilm.serve.server", WARNING). A front end that owns a terminal — the command line — wraps a call in
`show_records(...)` to show those records there for as long as the call runs, and no longer.
"""

from __future__ import annotations

import logging
import sys
from collections.abc import Iterator
from contextlib import AbstractContextManager, contextmanager
from typing import TextIO


@contextmanager
def show_records(logger: str, level: int, fmt: str, stream: TextIO | None = None) -> Iterator[None]:
    """While the block runs, write the records `logger` (or a child of it) passes to `stream` (default: sys.stderr
    as it is on entry), formatted by `fmt`. The logger's level is lowered to `level` if it was higher (so records
    of `level` and above pass), and restored afterwards."""
    log = logging.getLogger(logger)
    handler = logging.StreamHandler(sys.stderr if stream is None else stream)
    handler.setFormatter(logging.Formatter(fmt))
    previous = log.level
    if log.getEffectiveLevel() > level:
        log.setLevel(level)
    log.addHandler(handler)
    try:
        yield
    finally:
        log.removeHandler(handler)
        log.setLevel(previous)


def show_download_messages(stream: TextIO | None = None) -> AbstractContextManager[None]:
    """While a block may fetch the model, show the library's INFO records (logger "tinyminilm": what is fetched,
    how big, from where, to where) on `stream` (default stderr), each line prefixed "tinyminilm: ". The progress
    bar is pip's or huggingface_hub's own, drawn when stderr is a terminal."""
    return show_records("tinyminilm", logging.INFO, "tinyminilm: %(message)s", stream)
