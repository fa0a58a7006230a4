"""The command line: `tinyminilm embed`, `tinyminilm download`. The only module that prints."""

from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path

from .errors import TinyMiniLMError


def _model(args: argparse.Namespace):
    import tinyminilm

    return tinyminilm.load(args.model)


def cmd_embed(args: argparse.Namespace) -> int:
    model = _model(args)
    vectors = model.encode(args.texts, batch_size=args.batch_size)
    for v in vectors:
        print(json.dumps([round(float(x), 8) for x in v]))
    return 0


def cmd_download(args: argparse.Namespace) -> int:
    from . import hub

    folder = hub.ensure_model(args.dir)
    print(f"model files verified in {folder}")
    return 0


def build_parser() -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(prog="tinyminilm", description="all-MiniLM-L6-v2 sentence embeddings in NumPy")
    from . import __version__

    p.add_argument("--version", action="version", version=f"tinyminilm {__version__}")
    sub = p.add_subparsers(dest="command", required=True)

    e = sub.add_parser("embed", help="print one JSON array per text, one per line")
    e.add_argument("texts", nargs="+", metavar="TEXT")
    e.add_argument("--model", default=None, help="a local model folder (default: the pinned all-MiniLM-L6-v2)")
    e.add_argument("--batch-size", type=int, default=32)
    e.set_defaults(func=cmd_embed)

    d = sub.add_parser("download", help="fetch and verify the model files")
    d.add_argument("--dir", type=Path, default=None, help="where to put them (default: tinyminilm's cache)")
    d.set_defaults(func=cmd_download)
    return p


def main(argv: list[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    try:
        return args.func(args)
    except (TinyMiniLMError, ValueError, TypeError) as e:
        print(f"tinyminilm: error: {e}", file=sys.stderr)
        return 2
    except KeyboardInterrupt:
        print("tinyminilm: interrupted", file=sys.stderr)
        return 130
