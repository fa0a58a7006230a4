"""Reading texts from the files people have, and writing outputs that are never half-written.

Inputs (`TextFile`): one text per line (.txt, and any other extension), JSON Lines with a string field (.jsonl,
.ndjson), or a column of a CSV / TSV file with a header row (.csv, .tsv). Files are read as bytes and decoded
line by line, so an undecodable byte is reported with its line number; `scan` validates the whole file, counts
its texts and hashes them before any model work starts, and `records` then streams them, one at a time.

Outputs (`atomic_path`): written to a temporary file in the destination's folder and renamed over it only when
the writing block finished, so an error, Ctrl-C or SIGTERM leaves no partial file and an existing file untouched.
The file gets the mode an ordinary open() gives (0644 under umask 022), never mkstemp's 0600. Every file
tinyminilm writes goes through here: CLI outputs, search caches, SVGs and the downloaded model files.

Library code: it raises `InputError` (or OSError naming the user's path) and never prints.
"""

from __future__ import annotations

import codecs
import csv
import hashlib
import json
import os
import secrets
import tempfile
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path

from .errors import InputError, lone_surrogate

FORMATS = ("txt", "jsonl", "csv", "tsv")


@dataclass(frozen=True)
class TextFile:
    """Where the texts are and how to read them.

    path: the file; fmt: one of FORMATS; field: the JSON key of .jsonl records; column: the header name of the
    .csv / .tsv column; name: how errors refer to the file (e.g. "<stdin>" for a spooled standard input).
    """

    path: Path
    fmt: str
    field: str = "text"
    column: str = "text"
    name: str = ""

    @property
    def label(self) -> str:
        return self.name or str(self.path)


def detect_format(path: str | Path) -> str:
    """The input format implied by a file name: .jsonl/.ndjson, .csv, .tsv/.tab, else txt (one text per line)."""
    suffix = Path(path).suffix.lower()
    if suffix in (".jsonl", ".ndjson"):
        return "jsonl"
    if suffix == ".csv":
        return "csv"
    if suffix in (".tsv", ".tab"):
        return "tsv"
    if suffix == ".json":
        raise InputError(f"{path}: a .json file is not read (one JSON document cannot be streamed); write one "
                         "JSON object per line as .jsonl, or pass --format")
    return "txt"


def open_input(path: str | Path, fmt: str | None = None, field: str | None = None,
               column: str | None = None, name: str = "") -> TextFile:
    """Describe an input file, checking that it exists and that --field / --column fit its format."""
    path = Path(path)
    label = name or str(path)
    fmt = fmt or detect_format(path)
    if fmt not in FORMATS:
        raise InputError(f"--format {fmt!r}: unknown; use one of {', '.join(FORMATS)}")
    if field is not None and fmt != "jsonl":
        raise InputError(f"{label}: --field applies to .jsonl inputs; this file is read as {fmt}"
                         + (" (use --column)" if fmt in ("csv", "tsv") else ""))
    if column is not None and fmt not in ("csv", "tsv"):
        raise InputError(f"{label}: --column applies to .csv / .tsv inputs; this file is read as {fmt}"
                         + (" (use --field)" if fmt == "jsonl" else ""))
    if not path.exists():
        raise InputError(f"{label}: no such file")
    if path.is_dir():
        raise InputError(f"{label}: is a folder, not a file")
    return TextFile(path, fmt, field or "text", column or "text", name)


def numbered_lines(src: TextFile) -> Iterator[tuple[int, str]]:
    """(line number from 1, decoded line with its newline) for every line, failing at the first bad byte."""
    try:
        f = open(src.path, "rb")
    except OSError as e:
        raise InputError(f"{src.label}: cannot be opened ({e.strerror})") from None
    with f:
        for n, raw in enumerate(f, 1):
            if n == 1 and raw.startswith(codecs.BOM_UTF8):  # as written by Excel and Notepad
                raw = raw[len(codecs.BOM_UTF8):]
            try:
                yield n, raw.decode("utf-8")
            except UnicodeDecodeError as e:
                raise InputError(f"{src.label}:{n}: not valid UTF-8 (byte 0x{raw[e.start]:02x} at column "
                                 f"{e.start + 1}); convert the file to UTF-8, e.g. iconv -f latin1 -t utf-8") from None


def check_unicode(src: TextFile, n: int, text: str) -> str:
    """`text` (line n of src) unless it holds a lone surrogate, which is an InputError naming the file and line."""
    bad = lone_surrogate(text)  # only JSON escapes like "\ud800" can produce one
    if bad is not None:
        raise InputError(f"{src.label}:{n}: the text holds a lone surrogate escape ({bad[1]!r} at character "
                         f"{bad[0]}), which is not valid Unicode; fix the JSON")
    return text


def _txt(src: TextFile) -> Iterator[tuple[int, str]]:
    for n, line in numbered_lines(src):
        text = line.rstrip("\r\n")
        if text.strip():  # blank lines separate paragraphs; they are not texts
            yield n, text


def _jsonl(src: TextFile) -> Iterator[tuple[int, str]]:
    for n, line in numbered_lines(src):
        if not line.strip():
            continue
        try:
            record = json.loads(line.rstrip("\r\n"))
        except ValueError as e:
            msg = getattr(e, "msg", str(e))
            col = f", column {e.colno}" if hasattr(e, "colno") else ""
            raise InputError(f"{src.label}:{n}: malformed JSON ({msg}{col}); each line must be one JSON "
                             "object") from None
        if not isinstance(record, dict):
            raise InputError(f"{src.label}:{n}: expected a JSON object with a {src.field!r} field, got "
                             f"{type(record).__name__}")
        if src.field not in record:
            keys = ", ".join(map(repr, list(record)[:8])) or "none"
            raise InputError(f"{src.label}:{n}: no field {src.field!r} (this record has: {keys}); "
                             "pass --field NAME")
        text = record[src.field]
        if not isinstance(text, str):
            raise InputError(f"{src.label}:{n}: field {src.field!r} is {type(text).__name__}, expected a string")
        yield n, check_unicode(src, n, text)


def _table(src: TextFile) -> Iterator[tuple[int, str]]:
    lines = numbered_lines(src)
    # strict: an unterminated quote is an error at the end of the file (not a last text that swallowed every line
    # after the quote), and so is text after a closing quote
    reader = csv.reader((line for _, line in lines), delimiter="\t" if src.fmt == "tsv" else ",", strict=True)
    start = 1  # the line the current row begins on
    try:
        header = next(reader, None)
        if header is None:
            return
        if src.column not in header:
            cols = ", ".join(map(repr, header[:12]))
            raise InputError(f"{src.label}:{reader.line_num}: no column {src.column!r} in the header (columns: "
                             f"{cols}); pass --column NAME")
        idx = header.index(src.column)
        start = reader.line_num + 1
        for row in reader:
            n, start = start, reader.line_num + 1
            if not row:  # a blank line
                continue
            if idx >= len(row):
                raise InputError(f"{src.label}:{n}: the row has {len(row)} field(s), so no {src.column!r} value "
                                 f"(column {idx + 1} of the header)")
            yield n, row[idx]
    except csv.Error as e:
        if "unexpected end of data" in str(e):
            raise InputError(f"{src.label}:{start}: malformed {src.fmt.upper()}: the quote opened in the row "
                             f"starting on line {start} is never closed (the file ends inside it); close it, "
                             'or double a quote meant literally ("")') from None
        raise InputError(f"{src.label}:{reader.line_num}: malformed {src.fmt.upper()} ({e})") from None


_READERS = {"txt": _txt, "jsonl": _jsonl, "csv": _table, "tsv": _table}


def records(src: TextFile) -> Iterator[tuple[int, str]]:
    """Stream (line number, text) for every text of the file, in file order. Raises InputError on bad input."""
    return _READERS[src.fmt](src)


def scan(src: TextFile) -> tuple[int, str]:
    """Validate the whole file: return (number of texts, SHA-256 of the texts); raise InputError if it has none."""
    h = hashlib.sha256()
    count = 0
    for _, text in records(src):
        data = text.encode("utf-8")
        h.update(len(data).to_bytes(8, "little"))  # length-prefixed, so texts holding newlines hash unambiguously
        h.update(data)
        count += 1
    if count == 0:
        what = {"txt": "no non-blank line", "jsonl": "no JSON record", "csv": "no data row", "tsv": "no data row"}
        raise InputError(f"{src.label}: empty input ({what[src.fmt]}); give it at least one text")
    return count, h.hexdigest()


def spool_stdin(stream, folder: str | None = None) -> Path:
    """Copy a binary stream (standard input) to a temporary file and return its path; the caller deletes it."""
    fd, name = tempfile.mkstemp(prefix="tinyminilm-stdin-", dir=folder)
    try:
        with os.fdopen(fd, "wb") as f:
            for block in iter(lambda: stream.read(1 << 20), b""):
                f.write(block)
    except BaseException:
        Path(name).unlink(missing_ok=True)
        raise
    return Path(name)


def check_output(path: str | Path, option: str = "--output") -> Path:
    """Raise InputError unless `path` can be written: its folder exists and it is not itself a folder."""
    path = Path(path)
    if path.is_dir():
        raise InputError(f"{option} {path}: is a folder; give a file name")
    parent = path.parent if str(path.parent) else Path(".")
    if not parent.is_dir():
        # the nearest ancestor that exists says which: a missing folder, or a file where a folder should be
        blocker = next((p for p in (parent, *parent.parents) if p.exists() or p.is_symlink()), None)
        if blocker is not None and blocker.exists() and not blocker.is_dir():
            raise InputError(f"{option} {path}: {blocker} is a file, not a folder; give a path inside a folder")
        raise InputError(f"{option} {path}: the folder {parent} does not exist; create it first")
    return path


def _create_new(path: Path, suffix: str) -> tuple[int, Path]:
    """Create and open a new, empty temporary file beside `path`: (descriptor, its path).

    Mode 0o666 passed to os.open, so the kernel applies the process umask (and any default ACL of the folder)
    exactly as for an ordinary open(): under umask 022 the file is 0644. tempfile.mkstemp would make it 0600, and
    reading the umask to chmod afterwards would mean setting it (os.umask), which races with every other thread
    that creates a file meanwhile. O_EXCL with a random name makes the name ours alone.
    """
    folder = path.parent if str(path.parent) else Path(".")
    flags = os.O_WRONLY | os.O_CREAT | os.O_EXCL | getattr(os, "O_CLOEXEC", 0) | getattr(os, "O_BINARY", 0)
    for _ in range(100):
        tmp = folder / f".{path.name}.{secrets.token_hex(4)}{suffix}"
        try:
            return os.open(tmp, flags, 0o666), tmp
        except FileExistsError:
            continue
        except OSError as e:  # name the file the user asked for, not our temporary (e.g. a read-only folder)
            raise type(e)(e.errno, e.strerror, str(path)) from None
    raise FileExistsError(f"{path}: could not find a free temporary name beside it")


@contextmanager
def atomic_path(path: str | Path, *, suffix: str = ".tmp") -> Iterator[Path]:
    """Yield a new temporary file in `path`'s folder; rename it onto `path` when the block completes.

    The one way tinyminilm writes a file (CLI outputs, search caches, SVGs, downloaded model files). The file gets
    the mode an ordinary open() would give: 0o666 less the umask for a new file, or the mode of the file it
    replaces. On any exception, KeyboardInterrupt included, the temporary file is deleted and `path` is left as it
    was — so a caller can check what it wrote (a download's SHA-256, say) and raise to discard it. Errors about the
    temporary file name `path`, which is what the user gave.
    """
    path = Path(path)
    fd, tmp = _create_new(path, suffix)
    try:
        try:
            if path.exists():  # replacing a file keeps its mode, as open(path, "w") would
                os.chmod(tmp, path.stat().st_mode & 0o7777)
        finally:
            os.close(fd)
        yield tmp
        try:
            os.replace(tmp, path)
        except OSError as e:
            raise type(e)(e.errno, e.strerror, str(path)) from None
    finally:
        tmp.unlink(missing_ok=True)


__all__ = ["FORMATS", "InputError", "TextFile", "detect_format", "open_input", "records", "scan", "spool_stdin",
           "check_output", "atomic_path"]
