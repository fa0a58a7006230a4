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
    """(the BLAS library NumPy itself calls, with the CPU kernel it picked; the threads it uses now), as
    tinyminilm.blas finds it — never another BLAS loaded beside it (SciPy's OpenBLAS, say)."""
    from .. import blas

    d = blas.describe()
    env = [f"{v}={os.environ[v]}" for v in ("OMP_NUM_THREADS", "OPENBLAS_NUM_THREADS", "MKL_NUM_THREADS",
                                             "OPENBLAS_CORETYPE") if v in os.environ]
    if d["library"] is None:
        return "unknown (NumPy's BLAS library could not be identified)", f"unknown (of {os.cpu_count()} CPUs)"
    name = f"{d['library']} {d['version'] or ''}".strip()
    if d["kernel"]:
        name += f" (kernel {d['kernel']}, {d['threading'] or '?'} threading)"
    detail = f"{d['threads'] if d['threads'] is not None else 'unknown'} (of {os.cpu_count()} CPUs"
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
            d = m.describe()
            print(f"dimension       {d['dim']}")
            print(f"max_seq_length  {d['max_seq_length']}")
            print(f"architecture    {d['layers']} layers, hidden {d['hidden_size']}, {d['heads']} heads, "
                  f"vocab {d['vocab_size']}, pooling {d['pooling']}, normalize {d['normalize']}")
        except TinyMiniLMError as e:
            ok = False
            print(f"model           cannot be loaded: {e}")
    blas, threads = _blas()
    print(f"BLAS            {blas}")
    print(f"BLAS threads    {threads}")
    if loaded is not None and getattr(loaded, "threads", None) is not None:
        print(f"encode threads  {loaded.threads} (with more than 1, batches run in parallel, BLAS on 1 thread each)")
    return 0 if ok else 1
