"""`tinyminilm download`: fetch and verify the pinned model's files."""

from __future__ import annotations

import argparse
from pathlib import Path

from ..logs import show_download_messages


def add_parser(sub: argparse._SubParsersAction) -> None:
    """Register `download` on the subparsers of tinyminilm's command line."""
    dl = sub.add_parser("download", help="fetch and verify the model files")
    dl.add_argument("--dir", type=Path, default=None, help="where to put them (default: tinyminilm's cache)")
    dl.set_defaults(func=cmd_download)


def cmd_download(args: argparse.Namespace) -> int:
    """`tinyminilm download`: fetch and verify the model files."""
    from .. import hub

    with show_download_messages():
        folder = hub.ensure_model(args.dir)
    print(f"model files verified in {folder}")
    return 0
