"""`tinyminilm info`: where the model is, its files' SHA-256s, its shape, NumPy's BLAS and threads."""

from __future__ import annotations

import argparse
import os
from pathlib import Path

import numpy as np

from ..errors import TinyMiniLMError


def add_parser(sub: argparse._SubParsersAction) -> None:
    """Register `info` on the subparsers of tinyminilm's command line."""
    i = sub.add_parser("info", help="where the model is, its files' hashes, dimension, BLAS and threads")
    i.add_argument("--model", default=None, metavar="PATH", help="inspect this model folder instead")
    i.set_defaults(func=cmd_info)


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

    from .. import __version__, hub

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
