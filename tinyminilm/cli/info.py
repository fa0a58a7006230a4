"""`tinyminilm info`: which model (Hub id and commit), where it is, the pinned model's SHA-256s, its shape, NumPy's
BLAS and threads."""

from __future__ import annotations

import argparse
import os
from pathlib import Path

import numpy as np

from ..errors import TinyMiniLMError
from .common import model_name_options


def add_parser(sub: argparse._SubParsersAction) -> None:
    """Register `info` on the subparsers of tinyminilm's command line."""
    i = sub.add_parser("info", parents=[model_name_options()],
                       help="which model, where it is, its files' hashes, dimension, BLAS and threads",
                       description="Report the model (its Hub id and the commit found, never downloading it), its "
                                   "folder, the pinned model's files re-hashed, its shape, and NumPy's BLAS.")
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


def _check_manifest(folder: Path, strict: bool) -> bool:
    """Print each of the pinned model's files in `folder` re-hashed against its manifest; False if `strict` (the
    folder is the pinned model's) and any file is missing or differs — another model's folder is not an error."""
    from .. import hub

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
    verdict = f"{pinned}/{len(hub.MANIFEST)} files match"
    print(f"verified        {verdict} {hub.MODEL_ID} at revision {hub.REVISION} (SHA-256, re-hashed now)")
    return not strict or pinned == len(hub.MANIFEST)


def cmd_info(args: argparse.Namespace) -> int:
    """`tinyminilm info`: the model (Hub id and commit, read from disk only), its folder, the pinned model's files
    re-hashed, its shape, NumPy's BLAS and threads. Exit status 1 if the model is missing or damaged."""
    import platform

    import tinyminilm

    from .. import __version__, hub

    print(f"tinyminilm      {__version__} (Python {platform.python_version()}, NumPy {np.__version__})")
    ok = True
    loaded = None
    try:  # never a download: info reports what this machine has
        source = hub.resolve(args.model, revision=args.revision, local_files_only=True)
    except TinyMiniLMError as e:
        source = None
        ok = False
        print(f"model           {e}")
    if source is not None:
        folder = source.folder
        if source.repo_id is not None:
            print(f"model           {source.repo_id} at revision {source.revision}")
        print(f"folder          {folder.resolve()}")
        if source.repo_id in (None, hub.MODEL_ID):  # the pinned model, or a folder that may be a copy of it
            ok = _check_manifest(folder, strict=source.repo_id == hub.MODEL_ID) and ok
        try:
            m = loaded = tinyminilm.load(source)
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
