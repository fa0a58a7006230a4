"""The command line — the only module that prints.

    tinyminilm embed TEXT...                       one JSON array per text on stdout
    tinyminilm embed --input notes.txt --output notes.npy [--precision int8] [--truncate-dim 128]
    tinyminilm search --corpus notes.txt "a query" [--top-k 5]     (corpus embeddings cached beside the corpus)
    tinyminilm dedup --input notes.txt [--threshold 0.9]           (groups of near-duplicates, JSON lines)
    tinyminilm similarity "text a" "text b"
    tinyminilm download [--dir DIR]
    tinyminilm info

Inputs: .txt (one text per line, blank lines skipped), .jsonl (--field, default "text"), .csv / .tsv (--column,
default "text"), or `-` for standard input (--format says which, default txt). Files are validated and counted
before the model runs, then streamed chunk by chunk (8 batches at a time), so memory is bounded by the batch and
not by the file; .npy outputs get their header for the counted shape first, then rows as they are computed.

Outputs are written to a temporary file in the destination's folder and renamed at the end: an error, Ctrl-C or
SIGTERM leaves no partial file, and an existing output is left untouched. Bad input is reported in one line naming
the file and line, with exit status 2; an interrupt exits with 130.
"""

from __future__ import annotations

import argparse
import json
import logging
import os
import signal
import sys
import tempfile
import threading
from collections.abc import Iterable, Iterator
from contextlib import contextmanager
from pathlib import Path

import numpy as np

from .errors import ArgumentError, InputError, TinyMiniLMError, check_int
from .files import TextFile, atomic_path, check_output, open_input, records, scan, spool_stdin

CHUNK_BATCHES = 8  # texts are read and encoded 8 batches at a time; memory is bounded by this, not by the file
CACHE_SUFFIX = ".tinyminilm.npy"  # default corpus-embeddings cache of `search`: notes.txt -> notes.txt.tinyminilm.npy
CACHE_FORMAT = "tinyminilm-corpus-embeddings/1"


class _Terminated(BaseException):
    """SIGTERM, turned into an exception so that temporary files are cleaned up on the way out."""


# --------------------------------------------------------------------------------------------------------------
# Shared pieces: the model, the progress bar, the inputs, the encoding pipeline
# --------------------------------------------------------------------------------------------------------------

@contextmanager
def show_download_messages() -> Iterator[None]:
    """While a command may fetch the model, show the library's log records (logger "tinyminilm": what is fetched,
    how big, from where, to where) on stderr. The progress bar is pip's or huggingface_hub's own, drawn when stderr is
    a terminal."""
    logger = logging.getLogger("tinyminilm")
    handler = logging.StreamHandler(sys.stderr)
    handler.setFormatter(logging.Formatter("tinyminilm: %(message)s"))
    previous = logger.level
    if logger.getEffectiveLevel() > logging.INFO:
        logger.setLevel(logging.INFO)
    logger.addHandler(handler)
    try:
        yield
    finally:
        logger.removeHandler(handler)
        logger.setLevel(previous)


def _model(args: argparse.Namespace):
    import tinyminilm

    with show_download_messages():  # the first use of the default model fetches it
        return tinyminilm.load(args.model)


def _progress(args: argparse.Namespace, total: int, desc: str, file_input: bool = True):
    """A tqdm bar on stderr counted in texts: with --progress, or for file inputs when stderr is a terminal."""
    from .progress import progress_bar

    show = args.progress if args.progress is not None else (file_input and sys.stderr.isatty())
    if not show:
        return None
    try:
        return progress_bar(total, desc, option="--progress")
    except ImportError as e:
        if args.progress:
            raise ArgumentError(str(e)) from None
        return None  # the bar was only a default


@contextmanager
def _input(path: str, args: argparse.Namespace, option: str = "--input") -> Iterator[TextFile]:
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


def _check_dims(model, args: argparse.Namespace) -> int:
    """The embedding width after --truncate-dim; raises ArgumentError naming the option if it is out of range."""
    dim = model.get_embedding_dimension()
    k = getattr(args, "truncate_dim", None)
    return dim if k is None else check_int(k, "--truncate-dim", 1, dim, " (the model's dimension)")


def _encode_chunks(model, items: Iterable[tuple[int | None, str]], *, batch_size: int, truncate_dim: int | None,
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
    from .util import quantize_embeddings

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


def _write_npy(path: Path, chunks: Iterable[tuple[list, np.ndarray]], n: int, dtype: np.dtype, width: int,
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


# --------------------------------------------------------------------------------------------------------------
# embed
# --------------------------------------------------------------------------------------------------------------

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
    with _input(args.input, args) as src:
        n, _ = scan(src)  # validates the whole file before the model runs
        return _embed(args, src, records(src), n, out_kind)


def _embed(args: argparse.Namespace, src: TextFile | None, items: Iterable[tuple[int | None, str]], n: int,
           out_kind: str | None) -> int:
    if args.precision in ("int8", "uint8") and n < 2:
        raise InputError(f"--precision {args.precision}: the per-dimension ranges need at least two texts (got {n}); "
                         "embed more texts at once, or use float32 / binary")
    model = _model(args)
    dim = _check_dims(model, args)
    dtype, width = _out_shape(args.precision, dim)
    scratch = args.output.parent if args.output is not None else Path(tempfile.gettempdir())
    bar = _progress(args, n, "Embedding", file_input=src is not None)
    try:
        chunks = _encode_chunks(model, items, batch_size=args.batch_size, truncate_dim=args.truncate_dim, bar=bar)
        chunks = _quantized_chunks(chunks, n, dim, args.precision, scratch)
        if out_kind == ".npy":
            _write_npy(args.output, chunks, n, dtype, width, src.label if src else "texts")
        elif out_kind == ".jsonl":
            _write_jsonl(args.output, chunks)
        else:
            for _, emb in chunks:
                sys.stdout.write("".join(json.dumps(_row_values(row)) + "\n" for row in emb))
    finally:
        if bar is not None:
            bar.close()
    return 0


# --------------------------------------------------------------------------------------------------------------
# search, with the corpus-embeddings cache
# --------------------------------------------------------------------------------------------------------------

def _model_fingerprint(model) -> str:
    """Which weights and tokenizer made a vector: the pinned revision if the folder verifies, else file hashes."""
    import hashlib

    from . import hub
    from .errors import IntegrityError

    try:
        hub.verify(model.folder)  # cheap when already verified (size + mtime stamp)
        return f"{hub.MODEL_ID}@{hub.REVISION}"
    except (IntegrityError, OSError):
        pass
    h = hashlib.sha256()
    for name in ("config.json", "sentence_bert_config.json", "modules.json", "1_Pooling/config.json",
                 "tokenizer.json", "model.safetensors"):
        path = model.folder / name
        if path.is_file():
            h.update(f"{name}:{hub.sha256_file(path)}\n".encode())
    return f"sha256:{h.hexdigest()}"


def _cache_key(model, n: int, texts_sha: str, truncate_dim: int | None) -> dict:
    return {"format": CACHE_FORMAT, "texts": n, "texts_sha256": texts_sha, "model": _model_fingerprint(model),
            "max_seq_length": model.max_seq_length, "truncate_dim": truncate_dim}


def _load_cache(path: Path, key: dict, n: int, dim: int) -> np.ndarray | None:
    """The cached [n, dim] float32 embeddings if the sidecar matches `key` exactly, else None."""
    try:
        meta = json.loads(Path(str(path) + ".json").read_text(encoding="utf-8"))
        if not isinstance(meta, dict) or {k: meta.get(k) for k in key} != key:
            return None
        emb = np.load(path, mmap_mode="r")
    except (OSError, ValueError):
        return None
    if emb.shape != (n, dim) or emb.dtype != np.float32:
        return None
    return emb


def _corpus_embeddings(args: argparse.Namespace, model, src: TextFile, n: int, texts_sha: str) -> np.ndarray:
    """[n, dim] float32 corpus embeddings: from the cache when the corpus, model and options are unchanged."""
    dim = _check_dims(model, args)
    if args.embeddings is not None:
        cache = check_output(args.embeddings, "--embeddings")
    elif src.name != "<stdin>":
        cache = Path(str(src.path) + CACHE_SUFFIX)
    else:
        cache = None  # standard input has no place for a cache; pass --embeddings to keep one
    if cache is not None and args.embeddings is None and not os.access(cache.parent, os.W_OK):
        print(f"tinyminilm: note: {cache.parent} is not writable, so the corpus embeddings are not cached; "
              "pass --embeddings FILE to keep them", file=sys.stderr)
        cache = None
    key = _cache_key(model, n, texts_sha, args.truncate_dim)
    if cache is not None:
        emb = _load_cache(cache, key, n, dim)
        if emb is not None:
            return emb
    bar = _progress(args, n, "Embedding corpus")
    try:
        chunks = _encode_chunks(model, records(src), batch_size=args.batch_size, truncate_dim=args.truncate_dim,
                                bar=bar)
        if cache is None:
            return np.concatenate([emb for _, emb in chunks])  # [n, dim]
        sidecar = Path(str(cache) + ".json")
        sidecar.unlink(missing_ok=True)  # first, so an old sidecar can never vouch for a new array
        _write_npy(cache, chunks, n, np.dtype(np.float32), dim, src.label)
        with atomic_path(sidecar) as tmp:
            meta = {**key, "dim": dim, "dtype": "float32", "corpus": str(src.path.resolve())}
            tmp.write_text(json.dumps(meta, indent=1), encoding="utf-8")
    finally:
        if bar is not None:
            bar.close()
    return np.load(cache, mmap_mode="r")


def _texts_at(src: TextFile, wanted: Iterable[int]) -> dict[int, tuple[int, str]]:
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


def cmd_search(args: argparse.Namespace) -> int:
    """`tinyminilm search`: the top-k corpus texts for each query, the corpus embeddings cached."""
    from .util import semantic_search

    with _input(args.corpus, args, "--corpus") as src:
        n, texts_sha = scan(src)
        model = _model(args)
        corpus = _corpus_embeddings(args, model, src, n, texts_sha)  # [n, dim]
        queries = model.encode(args.queries, batch_size=args.batch_size, truncate_dim=args.truncate_dim)  # [q, dim]
        results = semantic_search(queries, corpus, top_k=args.top_k)
        texts = _texts_at(src, (hit["corpus_id"] for hits in results for hit in hits))
    for query, hits in zip(args.queries, results):
        rows = [{"rank": r, "score": round(float(h["score"]), 6), "index": int(h["corpus_id"]),
                 "line": texts[int(h["corpus_id"])][0], "text": texts[int(h["corpus_id"])][1]}
                for r, h in enumerate(hits, 1)]
        if args.json:
            print(json.dumps({"query": query, "hits": rows}, ensure_ascii=False))
            continue
        print(f"query: {query}")
        for row in rows:
            print(f"{row['rank']:4d}  {row['score']:.4f}  line {row['line']:<6d} {row['text']}")
    return 0


# --------------------------------------------------------------------------------------------------------------
# dedup, similarity
# --------------------------------------------------------------------------------------------------------------

def cmd_dedup(args: argparse.Namespace) -> int:
    """`tinyminilm dedup`: groups of near-duplicate texts (community detection, min size 2), as JSON lines."""
    from .util import community_detection

    if not -1.0 <= args.threshold <= 1.0:
        raise InputError(f"--threshold {args.threshold}: a cosine similarity, from -1 to 1 (e.g. 0.9)")
    with _input(args.input, args) as src:
        n, _ = scan(src)
        model = _model(args)
        _check_dims(model, args)
        bar = _progress(args, n, "Embedding")
        try:
            emb = np.concatenate([e for _, e in _encode_chunks(
                model, records(src), batch_size=args.batch_size, truncate_dim=args.truncate_dim, bar=bar)])
        finally:
            if bar is not None:
                bar.close()
        groups = community_detection(emb, threshold=args.threshold, min_community_size=2)
        texts = _texts_at(src, (i for g in groups for i in g))
    for k, group in enumerate(groups):
        members = sorted(int(i) for i in group)
        print(json.dumps({"group": k, "size": len(members), "center": int(group[0]), "indices": members,
                          "lines": [texts[i][0] for i in members], "texts": [texts[i][1] for i in members]},
                         ensure_ascii=False))
    return 0


def cmd_similarity(args: argparse.Namespace) -> int:
    """`tinyminilm similarity`: the cosine similarity of two texts."""
    from .util import cos_sim

    model = _model(args)
    emb = model.encode([args.text_a, args.text_b], batch_size=2)  # [2, dim]
    print(f"{float(np.asarray(cos_sim(emb[:1], emb[1:]))[0, 0]):.6f}")
    return 0


# --------------------------------------------------------------------------------------------------------------
# download, info
# --------------------------------------------------------------------------------------------------------------

def cmd_download(args: argparse.Namespace) -> int:
    """`tinyminilm download`: fetch and verify the model files."""
    from . import hub

    with show_download_messages():
        folder = hub.ensure_model(args.dir)
    print(f"model files verified in {folder}")
    return 0


def _blas() -> tuple[str, str]:
    """(the BLAS library NumPy uses with the CPU kernel it picked, the threads it uses now), from threadpoolctl."""
    from threadpoolctl import threadpool_info

    libs = [lib for lib in threadpool_info() if lib.get("user_api") == "blas"]
    env = [f"{v}={os.environ[v]}" for v in ("OMP_NUM_THREADS", "OPENBLAS_NUM_THREADS", "MKL_NUM_THREADS",
                                             "OPENBLAS_CORETYPE") if v in os.environ]
    if not libs:
        return "unknown (threadpoolctl finds no BLAS library loaded)", f"unknown (of {os.cpu_count()} CPUs)"
    lib = libs[0]  # NumPy's
    name = f"{lib.get('internal_api', '?')} {lib.get('version') or ''}".strip()
    if lib.get("architecture"):
        name += f" (kernel {lib['architecture']}, {lib.get('threading_layer', '?')} threading)"
    detail = f"{lib.get('num_threads', 'unknown')} (of {os.cpu_count()} CPUs"
    return name, detail + (", " + ", ".join(env) if env else "") + ")"


def cmd_info(args: argparse.Namespace) -> int:
    """`tinyminilm info`: the model folder, its files re-hashed, its shape, NumPy's BLAS and threads.
    Exit status 1 if the default model is missing or damaged."""
    import platform

    from . import __version__, hub

    print(f"tinyminilm      {__version__} (Python {platform.python_version()}, NumPy {np.__version__})")
    ok = True
    loaded = None
    if args.model is not None:
        folder = Path(args.model).expanduser()
    else:
        try:
            folder = hub.ensure_model(download=False)
        except TinyMiniLMError as e:
            folder = None
            ok = False
            print(f"model           {e}")
    if folder is not None:
        print(f"folder          {folder.resolve()}")
        pinned = 0
        for name, digest in hub.MANIFEST.items():
            path = folder / name
            actual = hub.sha256_file(path) if path.is_file() else None
            if actual is None:
                status = "missing"
            elif actual == digest:
                status, pinned = "ok", pinned + 1
            else:
                status = "differs"
            print(f"  {status:<8} {actual or '-':<64}  {name}")
        if args.model is None and pinned != len(hub.MANIFEST):
            ok = False  # the default model must be intact; a custom folder is simply another model
        verdict = f"{pinned}/{len(hub.MANIFEST)} files match"
        print(f"verified        {verdict} {hub.MODEL_ID} at revision {hub.REVISION} (SHA-256, re-hashed now)")
        try:
            import tinyminilm

            m = loaded = tinyminilm.SentenceEncoder.from_folder(folder)
            b = m.config.bert
            print(f"dimension       {m.get_embedding_dimension()}")
            print(f"max_seq_length  {m.max_seq_length}")
            print(f"architecture    {b.num_hidden_layers} layers, hidden {b.hidden_size}, "
                  f"{b.num_attention_heads} heads, vocab {b.vocab_size}, pooling {m.config.pooling_mode}, "
                  f"normalize {m.config.normalize}")
        except TinyMiniLMError as e:
            ok = False
            print(f"model           cannot be loaded: {e}")
    blas, threads = _blas()
    print(f"BLAS            {blas}")
    print(f"BLAS threads    {threads}")
    if loaded is not None and getattr(loaded, "threads", None) is not None:
        print(f"encode threads  {loaded.threads} (with more than 1, batches run in parallel, BLAS on 1 thread each)")
    return 0 if ok else 1


# --------------------------------------------------------------------------------------------------------------
# The parser and the entry point
# --------------------------------------------------------------------------------------------------------------

def _positive_int(value: str) -> int:
    try:
        k = int(value)
    except ValueError:
        raise argparse.ArgumentTypeError(f"{value!r} is not an integer") from None
    if k < 1:
        raise argparse.ArgumentTypeError(f"{value} must be at least 1")
    return k


def build_parser() -> argparse.ArgumentParser:
    from . import __version__
    from .util import PRECISIONS

    p = argparse.ArgumentParser(prog="tinyminilm", description="all-MiniLM-L6-v2 sentence embeddings in NumPy")
    p.add_argument("--version", action="version", version=f"tinyminilm {__version__}")
    sub = p.add_subparsers(dest="command", required=True)

    model = argparse.ArgumentParser(add_help=False)
    model.add_argument("--model", default=None, metavar="PATH",
                       help="a local sentence-transformers model folder (default: the pinned all-MiniLM-L6-v2)")
    model.add_argument("--batch-size", type=_positive_int, default=32, help="texts per forward pass (default 32)")

    encoding = argparse.ArgumentParser(add_help=False)
    encoding.add_argument("--truncate-dim", type=_positive_int, default=None, metavar="K",
                          help="keep the first K dimensions of each vector")
    encoding.add_argument("--progress", action=argparse.BooleanOptionalAction, default=None,
                          help="a progress bar on stderr (default: for file inputs when stderr is a terminal)")

    reading = argparse.ArgumentParser(add_help=False)
    reading.add_argument("--format", choices=("txt", "jsonl", "csv", "tsv"), default=None,
                         help="input format (default: from the extension; txt for `-`)")
    reading.add_argument("--field", default=None, help='the text field of .jsonl records (default "text")')
    reading.add_argument("--column", default=None, help='the text column of .csv / .tsv files (default "text")')

    e = sub.add_parser("embed", parents=[model, encoding, reading], help="embed texts or a file",
                       description="Embed texts given as arguments (printed as one JSON array per line) or a file.")
    e.add_argument("texts", nargs="*", metavar="TEXT")
    e.add_argument("--input", "-i", default=None, metavar="FILE",
                   help="texts from FILE (.txt/.jsonl/.csv/.tsv, - for stdin)")
    e.add_argument("--output", "-o", type=Path, default=None, metavar="FILE",
                   help=".npy (n x dim array) or .jsonl (id, line, embedding); default JSON arrays on stdout")
    e.add_argument("--precision", choices=PRECISIONS, default="float32", help="quantize the vectors (default float32)")
    e.set_defaults(func=cmd_embed)

    s = sub.add_parser("search", parents=[model, encoding, reading], help="rank a corpus's texts by similarity",
                       description="Rank the texts of a corpus file by cosine similarity to each query. The corpus "
                                   f"embeddings are cached in CORPUS{CACHE_SUFFIX} (or --embeddings) and reused while "
                                   "the corpus, the model and the options are unchanged.")
    s.add_argument("queries", nargs="+", metavar="QUERY")
    s.add_argument("--corpus", "-c", required=True, metavar="FILE", help="the texts to search (.txt/.jsonl/.csv/.tsv)")
    s.add_argument("--embeddings", type=Path, default=None, metavar="FILE.npy",
                   help=f"where to cache the corpus embeddings (default: CORPUS{CACHE_SUFFIX})")
    s.add_argument("--top-k", "-k", type=_positive_int, default=5, help="hits per query (default 5)")
    s.add_argument("--json", action="store_true", help="one JSON object per query instead of a table")
    s.set_defaults(func=cmd_search)

    d = sub.add_parser("dedup", parents=[model, encoding, reading], help="find groups of near-duplicate texts",
                       description="Print groups of near-duplicates (community detection: every member is at least "
                                   "--threshold similar to the group's center), one JSON object per line.")
    d.add_argument("--input", "-i", required=True, metavar="FILE",
                   help="the texts (.txt/.jsonl/.csv/.tsv, - for stdin)")
    d.add_argument("--threshold", "-t", type=float, default=0.9, help="cosine similarity (default 0.9)")
    d.set_defaults(func=cmd_dedup)

    m = sub.add_parser("similarity", parents=[model], help="the cosine similarity of two texts")
    m.add_argument("text_a", metavar="TEXT_A")
    m.add_argument("text_b", metavar="TEXT_B")
    m.set_defaults(func=cmd_similarity)

    dl = sub.add_parser("download", help="fetch and verify the model files")
    dl.add_argument("--dir", type=Path, default=None, help="where to put them (default: tinyminilm's cache)")
    dl.set_defaults(func=cmd_download)

    i = sub.add_parser("info", help="where the model is, its files' hashes, dimension, BLAS and threads")
    i.add_argument("--model", default=None, metavar="PATH", help="inspect this model folder instead")
    i.set_defaults(func=cmd_info)

    from .explain import add_parser as _add_explain  # the `explain` command lives in its own module
    _add_explain(sub)
    _add_serve(sub)
    return p


def _add_serve(sub) -> None:
    """The `serve` subcommand: its options only; the server (tinyminilm.serve) is imported when it runs."""
    v = sub.add_parser("serve", help="an HTTP embedding server (OpenAI and text-embeddings-inference APIs)",
                       description="Serve embeddings over HTTP: POST /v1/embeddings (OpenAI), POST /embed and "
                                   "GET /info (text-embeddings-inference), GET /v1/models, /health, /metrics. "
                                   "Needs the serve extra: pip install 'tinyminilm[serve]'.")
    v.add_argument("--host", default="127.0.0.1", help="address to bind (default 127.0.0.1)")
    v.add_argument("--port", type=_positive_int, default=8080, help="port (default 8080)")
    v.add_argument("--model", default=None, metavar="PATH",
                   help="a local sentence-transformers model folder (default: the pinned all-MiniLM-L6-v2)")
    v.add_argument("--model-name", default=None, metavar="NAME",
                   help="the model name clients send and see (default: the Hub id, or the folder's name)")
    v.add_argument("--api-key", default=None, metavar="KEY",
                   help="require `Authorization: Bearer KEY` on every route but /health (default: "
                        "$TINYMINILM_API_KEY; none)")
    v.add_argument("--max-batch-tokens", type=_positive_int, default=4096, metavar="N",
                   help="padded tokens (texts x longest) per model batch (default 4096)")
    v.add_argument("--max-concurrent-requests", type=_positive_int, default=512, metavar="N",
                   help="requests queued or running at once; more get 429 (default 512)")
    v.add_argument("--max-client-batch-size", type=_positive_int, default=2048, metavar="N",
                   help="inputs per request; more get 413 (default 2048, OpenAI's limit)")
    v.add_argument("--max-body-bytes", type=_positive_int, default=2_000_000, metavar="N",
                   help="request body size; larger get 413 (default 2000000)")
    v.add_argument("--auto-truncate", action="store_true",
                   help="truncate inputs longer than the model's limit instead of answering 413 (OpenAI route, "
                        "and /embed when the request does not say)")
    v.add_argument("--graceful-timeout", type=_positive_int, default=None, metavar="S",
                   help="on SIGTERM, wait at most S seconds for requests in flight (default: until they finish)")
    v.add_argument("--log-level", default="info", choices=("critical", "error", "warning", "info", "debug"))
    v.set_defaults(func=cmd_serve)


def cmd_serve(args: argparse.Namespace) -> int:
    """`tinyminilm serve`: run the HTTP server until SIGTERM or Ctrl-C (exit 0 once the requests in flight end)."""
    try:
        from .serve.server import run
    except ImportError as e:
        return _error(f"`tinyminilm serve` needs the serve extra ({e.name} is missing): "
                      "pip install 'tinyminilm[serve]'")
    return run(args)


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
    if args.func is cmd_embed and args.output is None:
        return " (the rows already printed to standard output are only part of the output)"
    return " (no partial output file is left)"


def _error(message: str) -> int:
    print(f"tinyminilm: error: {message}", file=sys.stderr)
    return 2


def main(argv: list[str] | None = None) -> int:
    """Run the command line with `argv` (default sys.argv[1:]); return the exit status."""
    try:
        args = build_parser().parse_args(argv)
    except SystemExit as e:  # --help, --version, or a usage error argparse has already printed
        return e.code if isinstance(e.code, int) else 0 if e.code is None else 2
    try:
        with _sigterm_raises():
            return args.func(args)
    except TinyMiniLMError as e:  # raised on purpose about the user's input, files or model folder
        return _error(str(e))
    except OSError as e:
        if isinstance(e, BrokenPipeError):  # e.g. `tinyminilm embed ... | head`: the reader left, no error
            try:
                os.dup2(os.open(os.devnull, os.O_WRONLY), sys.stdout.fileno())
            except (OSError, ValueError, AttributeError):
                pass
            return 0
        where = f"{e.filename}: " if e.filename else ""
        return _error(f"{where}{e.strerror or e}")
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
