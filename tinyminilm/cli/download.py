"""`tinyminilm download [ID]`: fetch the pinned model's files and verify them, or any Hub id into the Hugging Face
cache."""

from __future__ import annotations

import argparse
from pathlib import Path

from ..logs import show_download_messages
from .common import add_revision_option


def add_parser(sub: argparse._SubParsersAction) -> None:
    """Register `download` on the subparsers of tinyminilm's command line."""
    dl = sub.add_parser("download", help="fetch a model: the pinned one (verified), or any Hub id",
                        description="Fetch the pinned all-MiniLM-L6-v2 and verify its files (SHA-256), or fetch the "
                                    "model a Hub id names into the Hugging Face cache, where `--model ID` and "
                                    "sentence-transformers find it, offline too.")
    dl.add_argument("id", nargs="?", default=None, metavar="ID",
                    help="a Hub id such as BAAI/bge-small-en-v1.5; a bare name means sentence-transformers/NAME "
                         "(default: the pinned all-MiniLM-L6-v2)")
    add_revision_option(dl)
    dl.add_argument("--dir", type=Path, default=None,
                    help="where to put them: the pinned model's folder (default: tinyminilm's cache), or the Hugging "
                         "Face cache for another id (default: $HF_HUB_CACHE, else $HF_HOME/hub, else "
                         "~/.cache/huggingface/hub)")
    dl.set_defaults(func=cmd_download)


def cmd_download(args: argparse.Namespace) -> int:
    """`tinyminilm download [ID]`: fetch (or refresh) the model files and say where they are."""
    from .. import hub

    with show_download_messages():
        source = hub.download(args.id, revision=args.revision, folder=args.dir)
    if source.repo_id == hub.MODEL_ID:
        print(f"model files verified in {source.folder}")
    else:
        print(f"{source.repo_id} at commit {source.revision} in {source.folder}")
    return 0
