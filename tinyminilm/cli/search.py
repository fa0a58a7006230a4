"""`tinyminilm search`: rank a corpus file's texts against queries, with the corpus embeddings cached beside it."""

from __future__ import annotations

import argparse
import json
import os
import sys
from pathlib import Path

import numpy as np

from ..files import TextFile, atomic_path, check_output, records, scan
from .common import (check_dims, encode_chunks, encoding_options, load_model, model_options, positive_int,
                     progress, reading_options, text_input, texts_at, write_npy)

CACHE_SUFFIX = ".tinyminilm.npy"  # default corpus-embeddings cache of `search`: notes.txt -> notes.txt.tinyminilm.npy
CACHE_FORMAT = "tinyminilm-corpus-embeddings/1"


def add_parser(sub: argparse._SubParsersAction) -> None:
    """Register `search` on the subparsers of tinyminilm's command line."""
    s = sub.add_parser("search", parents=[model_options(), encoding_options(), reading_options()],
                       help="rank a corpus's texts by similarity",
                       description="Rank the texts of a corpus file by cosine similarity to each query. The corpus "
                                   f"embeddings are cached in CORPUS{CACHE_SUFFIX} (or --embeddings) and reused while "
                                   "the corpus, the model and the options are unchanged.")
    s.add_argument("queries", nargs="+", metavar="QUERY")
    s.add_argument("--corpus", "-c", required=True, metavar="FILE", help="the texts to search (.txt/.jsonl/.csv/.tsv)")
    s.add_argument("--embeddings", type=Path, default=None, metavar="FILE.npy",
                   help=f"where to cache the corpus embeddings (default: CORPUS{CACHE_SUFFIX})")
    s.add_argument("--top-k", "-k", type=positive_int, default=5, help="hits per query (default 5)")
    s.add_argument("--json", action="store_true", help="one JSON object per query instead of a table")
    s.set_defaults(func=cmd_search)


def cmd_search(args: argparse.Namespace) -> int:
    """`tinyminilm search`: the top-k corpus texts for each query, the corpus embeddings cached."""
    from ..util import semantic_search

    with text_input(args.corpus, args, "--corpus") as src:
        n, texts_sha = scan(src)
        model = load_model(args)
        corpus = _corpus_embeddings(args, model, src, n, texts_sha)  # [n, dim]
        queries = model.encode(args.queries, batch_size=args.batch_size, truncate_dim=args.truncate_dim)  # [q, dim]
        results = semantic_search(queries, corpus, top_k=args.top_k)
        texts = texts_at(src, (hit["corpus_id"] for hits in results for hit in hits))
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
# The corpus-embeddings cache
# --------------------------------------------------------------------------------------------------------------

def _model_fingerprint(model) -> str:
    """Which weights and tokenizer made a vector: the pinned revision if the folder verifies; a Hub model's id and
    commit (a commit's files never change), without reading them; else the files' hashes."""
    import hashlib

    from .. import hub
    from ..errors import IntegrityError

    source = model.source
    if source.repo_id not in (None, hub.MODEL_ID) and source.revision:
        return f"{source.repo_id}@{source.revision}"

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
    dim = check_dims(model, args)
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
    bar = progress(args, n, "Embedding corpus")
    try:
        chunks = encode_chunks(model, records(src), batch_size=args.batch_size, truncate_dim=args.truncate_dim,
                               bar=bar)
        if cache is None:
            return np.concatenate([emb for _, emb in chunks])  # [n, dim]
        sidecar = Path(str(cache) + ".json")
        sidecar.unlink(missing_ok=True)  # first, so an old sidecar can never vouch for a new array
        write_npy(cache, chunks, n, np.dtype(np.float32), dim, src.label)
        with atomic_path(sidecar) as tmp:
            meta = {**key, "dim": dim, "dtype": "float32", "corpus": str(src.path.resolve())}
            tmp.write_text(json.dumps(meta, indent=1), encoding="utf-8")
    finally:
        if bar is not None:
            bar.close()
    return np.load(cache, mmap_mode="r")
