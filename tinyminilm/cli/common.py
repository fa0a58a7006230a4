"""What the commands share: their common options, the model, the progress bar, the inputs, the encoding of a
file chunk by chunk, the .npy writer, and how an error becomes one line on stderr and an exit status."""

from __future__ import annotations

import argparse
import os
import signal
import sys
import threading
from collections.abc import Iterable, Iterator
from contextlib import contextmanager
from pathlib import Path

import numpy as np

from ..errors import ArgumentError, InputError, TinyMiniLMError, check_int
from ..files import TextFile, atomic_path, open_input, records, spool_stdin
from ..logs import show_download_messages
from ..progress import stderr_is_terminal

CHUNK_BATCHES = 8  # texts are read and encoded 8 batches at a time; memory is bounded by this, not by the file


# --------------------------------------------------------------------------------------------------------------
# Options
# --------------------------------------------------------------------------------------------------------------

def positive_int(value: str) -> int:
    """argparse `type=` for counts (--batch-size, --top-k, --port, ...): the text as an int of at least 1, checked
    by the package's one integer check; argparse puts the option's name in front of the message."""
    try:
        number: object = int(value)
    except ValueError:
        number = value  # not an integer: check_int refuses it, quoting what was given
    try:
        return check_int(number, "")
    except ArgumentError as e:  # " must be a positive integer, got 0"
        raise argparse.ArgumentTypeError(str(e).strip()) from None


def model_name_options() -> argparse.ArgumentParser:
    """--model and --revision, for every command that loads a model (a parent parser)."""
    p = argparse.ArgumentParser(add_help=False)
    p.add_argument("--model", default=None, metavar="ID_OR_PATH",
                   help="a Hub id or a folder: a sentence-transformers model folder, or a Hub id such as "
                        "BAAI/bge-small-en-v1.5 (a bare name means sentence-transformers/NAME), read from the Hugging "
                        "Face cache or downloaded into it (default: the pinned all-MiniLM-L6-v2)")
    add_revision_option(p)
    return p


def add_revision_option(p: argparse.ArgumentParser) -> None:
    """--revision: which commit of a Hub id, for the commands that load or fetch one."""
    p.add_argument("--revision", default=None, metavar="REV",
                   help="the branch, tag or commit of a Hub id (default main; the pinned model has only its own)")


def model_options() -> argparse.ArgumentParser:
    """--model, --revision and --batch-size, for the commands that run the model on texts (a parent parser)."""
    p = argparse.ArgumentParser(add_help=False, parents=[model_name_options()])
    p.add_argument("--batch-size", type=positive_int, default=32, help="texts per forward pass (default 32)")
    return p


def encoding_options() -> argparse.ArgumentParser:
    """--truncate-dim and --progress, for the commands that encode many texts (a parent parser)."""
    p = argparse.ArgumentParser(add_help=False)
    p.add_argument("--truncate-dim", type=positive_int, default=None, metavar="K",
                   help="keep the first K dimensions of each vector")
    p.add_argument("--progress", action=argparse.BooleanOptionalAction, default=None,
                   help="a progress bar on stderr (default: for file inputs when stderr is a terminal)")
    return p


def reading_options() -> argparse.ArgumentParser:
    """--format, --field and --column, for the commands that read a file of texts (a parent parser)."""
    p = argparse.ArgumentParser(add_help=False)
    p.add_argument("--format", choices=("txt", "jsonl", "csv", "tsv"), default=None,
                   help="input format (default: from the extension; txt for `-`)")
    p.add_argument("--field", default=None, help='the text field of .jsonl records (default "text")')
    p.add_argument("--column", default=None, help='the text column of .csv / .tsv files (default "text")')
    return p


# --------------------------------------------------------------------------------------------------------------
# The model, the progress bar, the inputs, the encoding pipeline
# --------------------------------------------------------------------------------------------------------------

def load_model(args: argparse.Namespace):
    """tinyminilm.load(args.model, revision=args.revision), showing on stderr what is downloaded when the model is
    not on this machine yet."""
    return load_named(args.model, getattr(args, "revision", None))


def load_named(name: str | None, revision: str | None = None):
    """tinyminilm.load(name, revision=revision) (None: the pinned default), showing on stderr what is downloaded."""
    import tinyminilm

    with show_download_messages():  # the first use of a model fetches it
        return tinyminilm.load(name, revision=revision)


def load_cross_encoder(name: str, user: str | None = None, revision: str | None = None):
    """tinyminilm.CrossEncoder(name, revision=revision), showing on stderr what is downloaded; with `user` (the option
    that named it), refused unless it is a reranker (one label)."""
    from .. import CrossEncoder

    with show_download_messages():  # the first use of a model fetches it
        model = CrossEncoder(name, revision=revision)
    if user is not None:
        model.check_reranker(user)
    return model


def wants_progress(args: argparse.Namespace, file_input: bool = True) -> bool:
    """Whether to draw progress bars on stderr: --progress / --no-progress, else for file inputs when stderr is a
    terminal; False when tqdm is missing and the bar was only a default (ArgumentError when --progress asked)."""
    from ..progress import tqdm_class

    show = args.progress if args.progress is not None else (file_input and stderr_is_terminal())
    if not show:
        return False
    try:
        tqdm_class(option="--progress")
    except ImportError as e:
        if args.progress:
            raise ArgumentError(str(e)) from None
        return False  # the bar was only a default
    return True


def progress(args: argparse.Namespace, total: int, desc: str, file_input: bool = True):
    """A tqdm bar on stderr counted in texts: with --progress, or for file inputs when stderr is a terminal."""
    from ..progress import progress_bar

    return progress_bar(total, desc, option="--progress") if wants_progress(args, file_input) else None


@contextmanager
def text_input(path: str, args: argparse.Namespace, option: str = "--input") -> Iterator[TextFile]:
    """The TextFile for --input / --corpus; standard input (`-`) is spooled to a temporary file first."""
    fmt = getattr(args, "format", None)
    if path != "-":
        yield open_input(path, fmt, args.field, args.column)
        return
    if sys.stdin is None or sys.stdin.isatty():
        raise InputError(f"{option} -: standard input is a terminal; pipe the texts in, e.g. "
                         f"`cat notes.txt | tinyminilm ... {option} -`")
    spooled = spool_stdin(sys.stdin.buffer)
    try:
        yield open_input(spooled, fmt or "txt", args.field, args.column, name="<stdin>")
    finally:
        spooled.unlink(missing_ok=True)


def check_dims(model, args: argparse.Namespace) -> int:
    """The embedding width after --truncate-dim; raises ArgumentError naming the option if it is out of range."""
    dim = model.get_embedding_dimension()
    k = getattr(args, "truncate_dim", None)
    return dim if k is None else check_int(k, "--truncate-dim", 1, dim, " (the model's dimension)")


def encode_chunks(model, items: Iterable[tuple[int | None, str]], *, batch_size: int, truncate_dim: int | None,
                  bar) -> Iterator[tuple[list[int | None], np.ndarray]]:
    """(line numbers, float32 [c, dim]) for consecutive chunks of CHUNK_BATCHES * batch_size texts."""
    lines: list[int | None] = []  # the line numbers of the texts read so far and not yet handed out

    def texts() -> Iterator[str]:
        for line, text in items:
            lines.append(line)
            yield text

    for emb in model.encode_chunks(texts(), batch_size=batch_size, chunk_size=CHUNK_BATCHES * batch_size,
                                   truncate_dim=truncate_dim):  # [c, dim], after reading exactly c more texts
        chunk_lines, lines[:] = lines[:len(emb)], lines[len(emb):]
        yield chunk_lines, emb
        if bar is not None:
            bar.update(len(emb))


def texts_at(src: TextFile, wanted: Iterable[int]) -> dict[int, tuple[int, str]]:
    """{index: (line, text)} for the wanted text indices, read in one pass over the file."""
    wanted = set(int(i) for i in wanted)
    found: dict[int, tuple[int, str]] = {}
    if not wanted:
        return found
    last = max(wanted)
    for i, (line, text) in enumerate(records(src)):
        if i in wanted:
            found[i] = (line, text)
        if i >= last:
            break
    return found


def write_npy(path: Path, chunks: Iterable[tuple[list, np.ndarray]], n: int, dtype: np.dtype, width: int,
              label: str) -> None:
    """Write an [n, width] .npy chunk by chunk: the header for the counted shape, then the rows as they come.

    Plain appends to a temporary file renamed at the end: equivalent to filling numpy.lib.format.open_memmap, but
    written pages do not stay mapped into the process (its resident memory stays bounded for huge files).
    """
    from numpy.lib import format as npy

    with atomic_path(path) as tmp, open(tmp, "wb") as f:
        npy.write_array_header_1_0(f, {"descr": npy.dtype_to_descr(dtype), "fortran_order": False,
                                       "shape": (n, width)})
        pos = 0
        for _, emb in chunks:
            if pos + len(emb) > n:
                raise InputError(f"{label}: the file changed while it was read (more texts than counted); run again")
            f.write(np.ascontiguousarray(emb, dtype=dtype).tobytes())  # rows pos .. pos + len(emb), C order
            pos += len(emb)
        if pos != n:
            raise InputError(f"{label}: the file changed while it was read ({pos} texts, {n} counted); run again")


# --------------------------------------------------------------------------------------------------------------
# Errors and signals -> one line on stderr and an exit status
# --------------------------------------------------------------------------------------------------------------

class _Terminated(BaseException):
    """SIGTERM, turned into an exception so that temporary files are cleaned up on the way out."""


@contextmanager
def _sigterm_raises() -> Iterator[None]:
    """While running a command, SIGTERM raises _Terminated, so temporary files are removed as on Ctrl-C."""
    if threading.current_thread() is not threading.main_thread():
        yield
        return

    def handler(signum, frame):
        raise _Terminated()

    previous = signal.signal(signal.SIGTERM, handler)
    try:
        yield
    finally:
        signal.signal(signal.SIGTERM, previous)


def _what_is_left(args: argparse.Namespace) -> str:
    """What an interrupt leaves: files are written whole or not at all; standard output gets rows as they come."""
    if args.command == "embed" and args.output is None:
        return " (the rows already printed to standard output are only part of the output)"
    return " (no partial output file is left)"


def error(message: str) -> int:
    """Print `message` as tinyminilm's one-line error on stderr; return the exit status for it (2)."""
    print(f"tinyminilm: error: {message}", file=sys.stderr)
    return 2


def run(args: argparse.Namespace) -> int:
    """Run the parsed command `args.func(args)` and return its exit status: 2 with one line on stderr for bad
    input, files or model folder; 0 when the reader of standard output left; 130 on Ctrl-C, 143 on SIGTERM; 1 with
    a traceback for anything else (a bug in tinyminilm)."""
    try:
        with _sigterm_raises():
            return args.func(args)
    except TinyMiniLMError as e:  # raised on purpose about the user's input, files or model folder
        return error(str(e))
    except OSError as e:
        if isinstance(e, BrokenPipeError):  # e.g. `tinyminilm embed ... | head`: the reader left, no error
            try:
                os.dup2(os.open(os.devnull, os.O_WRONLY), sys.stdout.fileno())
            except (OSError, ValueError, AttributeError):
                pass
            return 0
        where = f"{e.filename}: " if e.filename else ""
        return error(f"{where}{e.strerror or e}")
    except KeyboardInterrupt:
        print(f"tinyminilm: interrupted{_what_is_left(args)}", file=sys.stderr)
        return 130
    except _Terminated:
        print(f"tinyminilm: terminated{_what_is_left(args)}", file=sys.stderr)
        return 143
    except Exception:  # anything else is a bug in tinyminilm, not bad input: show where it happened
        import traceback

        traceback.print_exc()
        print(f"tinyminilm: internal error in `tinyminilm {args.command}` (the traceback above is a bug in "
              "tinyminilm, not a problem with your input; please report it)", file=sys.stderr)
        return 1
