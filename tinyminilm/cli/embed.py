"""`tinyminilm embed`: texts or a file of texts to vectors — JSON arrays on stdout, a .npy or a .jsonl file."""

from __future__ import annotations

import argparse
import json
import sys
import tempfile
from collections.abc import Iterable, Iterator
from pathlib import Path

import numpy as np

from ..errors import InputError
from ..files import TextFile, atomic_path, check_output, records, scan
from .common import (check_dims, encode_chunks, encoding_options, load_model, model_options, progress,
                     reading_options, text_input, write_npy)


def add_parser(sub: argparse._SubParsersAction) -> None:
    """Register `embed` on the subparsers of tinyminilm's command line."""
    from ..util import PRECISIONS

    e = sub.add_parser("embed", parents=[model_options(), encoding_options(), reading_options()],
                       help="embed texts or a file",
                       description="Embed texts given as arguments (printed as one JSON array per line) or a file.")
    e.add_argument("texts", nargs="*", metavar="TEXT")
    e.add_argument("--input", "-i", default=None, metavar="FILE",
                   help="texts from FILE (.txt/.jsonl/.csv/.tsv, - for stdin)")
    e.add_argument("--output", "-o", type=Path, default=None, metavar="FILE",
                   help=".npy (n x dim array) or .jsonl (id, line, embedding); default JSON arrays on stdout")
    e.add_argument("--precision", choices=PRECISIONS, default="float32", help="quantize the vectors (default float32)")
    e.set_defaults(func=cmd_embed)


def cmd_embed(args: argparse.Namespace) -> int:
    """`tinyminilm embed`: texts or a file to JSON arrays on stdout, .npy or .jsonl."""
    if bool(args.texts) == (args.input is not None):
        raise InputError("embed: give texts as arguments or --input FILE (one of the two)")
    out_kind = None
    if args.output is not None:
        check_output(args.output)
        out_kind = args.output.suffix.lower()
        if out_kind not in (".npy", ".jsonl"):
            raise InputError(f"--output {args.output}: unknown extension {out_kind or '(none)'}; use .npy "
                             "(an n x dim array) or .jsonl (one JSON object per text)")
    if args.input is None:
        return _embed(args, None, [(None, t) for t in args.texts], len(args.texts), out_kind)
    with text_input(args.input, args) as src:
        n, _ = scan(src)  # validates the whole file before the model runs
        return _embed(args, src, records(src), n, out_kind)


def _embed(args: argparse.Namespace, src: TextFile | None, items: Iterable[tuple[int | None, str]], n: int,
           out_kind: str | None) -> int:
    if args.precision in ("int8", "uint8") and n < 2:
        raise InputError(f"--precision {args.precision}: the per-dimension ranges need at least two texts (got {n}); "
                         "embed more texts at once, or use float32 / binary")
    model = load_model(args)
    dim = check_dims(model, args)
    dtype, width = _out_shape(args.precision, dim)
    scratch = args.output.parent if args.output is not None else Path(tempfile.gettempdir())
    bar = progress(args, n, "Embedding", file_input=src is not None)
    try:
        chunks = encode_chunks(model, items, batch_size=args.batch_size, truncate_dim=args.truncate_dim, bar=bar)
        chunks = _quantized_chunks(chunks, n, dim, args.precision, scratch)
        if out_kind == ".npy":
            write_npy(args.output, chunks, n, dtype, width, src.label if src else "texts")
        elif out_kind == ".jsonl":
            _write_jsonl(args.output, chunks)
        else:
            for _, emb in chunks:
                sys.stdout.write("".join(json.dumps(_row_values(row)) + "\n" for row in emb))
    finally:
        if bar is not None:
            bar.close()
    return 0


def _out_shape(precision: str, dim: int) -> tuple[np.dtype, int]:
    """dtype and width of a row of embeddings in `precision` (binary packs 8 dimensions per byte)."""
    if precision == "float32":
        return np.dtype(np.float32), dim
    if precision in ("int8", "uint8"):
        return np.dtype(precision), dim
    return np.dtype(np.int8 if precision == "binary" else np.uint8), (dim + 7) // 8


def _quantized_chunks(chunks: Iterator[tuple[list, np.ndarray]], n: int, dim: int, precision: str,
                      scratch: Path) -> Iterator[tuple[list, np.ndarray]]:
    """The chunks in the output precision.

    binary / ubinary quantize each row alone. int8 / uint8 scale by the min and max of every dimension over all
    texts (as model.encode(all, precision=...) does), so the float32 vectors are staged in a scratch file first
    and quantized in a second pass once the ranges are known.
    """
    from ..util import quantize_embeddings

    if precision == "float32":
        yield from chunks
        return
    if precision in ("binary", "ubinary"):
        for lines, emb in chunks:
            yield lines, quantize_embeddings(emb, precision)
        return
    with tempfile.TemporaryFile(dir=scratch, prefix=".tinyminilm-stage-") as f:  # float32 [n, dim], on disk
        all_lines: list[int | None] = []
        lo = np.full(dim, np.inf, dtype=np.float32)
        hi = np.full(dim, -np.inf, dtype=np.float32)
        pos = 0
        for lines, emb in chunks:
            f.write(np.ascontiguousarray(emb, dtype=np.float32).tobytes())
            lo, hi = np.minimum(lo, emb.min(axis=0)), np.maximum(hi, emb.max(axis=0))
            all_lines.extend(lines)
            pos += len(emb)
        ranges = np.vstack((lo, hi))  # [2, dim] float32, as quantize_embeddings computes it from the whole set
        f.seek(0)
        step = 4096
        for start in range(0, pos, step):
            emb = np.fromfile(f, dtype=np.float32, count=min(step, pos - start) * dim).reshape(-1, dim)
            yield all_lines[start:start + step], quantize_embeddings(emb, precision, ranges=ranges)


def _row_values(row: np.ndarray) -> list:
    if row.dtype == np.float32:
        return np.round(row.astype(np.float64), 8).tolist()  # 8 decimals: below float32 resolution near 1
    return row.tolist()


def _write_jsonl(path: Path, chunks: Iterable[tuple[list, np.ndarray]]) -> None:
    """One {"id", "line", "embedding"} object per text; `id` is the row (from 0), `line` the input line."""
    with atomic_path(path) as tmp, open(tmp, "w", encoding="utf-8") as f:
        i = 0
        for lines, emb in chunks:
            for line, row in zip(lines, emb):
                record = {"id": i} if line is None else {"id": i, "line": line}
                record["embedding"] = _row_values(row)
                f.write(json.dumps(record) + "\n")
                i += 1
