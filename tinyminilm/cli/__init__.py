"""The command line — the only code that writes to the terminal. One module per command:

    tinyminilm embed TEXT...                       one JSON array per text on stdout               (cli/embed.py)
    tinyminilm embed --input notes.txt --output notes.npy [--precision int8] [--truncate-dim 128]
    tinyminilm search --corpus notes.txt "a query" [--top-k 5]     (corpus embeddings cached)     (cli/search.py)
    tinyminilm rerank "a query" --input hits.txt [--top-k 5]       (a cross-encoder's ranking)    (cli/rerank.py)
    tinyminilm dedup --input notes.txt [--threshold 0.9]           (groups of near-duplicates)     (cli/dedup.py)
    tinyminilm similarity "text a" "text b"                                                  (cli/similarity.py)
    tinyminilm evaluate DIR [--model M]... [--rerank-model ID] [--failures N]   BEIR retrieval metrics (cli/evaluate.py)
    tinyminilm download [--dir DIR]                                                            (cli/download.py)
    tinyminilm info                                                                                (cli/info.py)
    tinyminilm explain TEXT [--svg FILE]           tokens, hidden states, attention             (cli/explain.py)
    tinyminilm serve [--host H] [--port P]         the HTTP server                                (cli/serve.py)

Inputs: .txt (one text per line, blank lines skipped), .jsonl (--field, default "text"), .csv / .tsv (--column,
default "text"), or `-` for standard input (--format says which, default txt). Files are validated and counted
before the model runs, then streamed chunk by chunk (8 batches at a time), so memory is bounded by the batch and
not by the file; .npy outputs get their header for the counted shape first, then rows as they are computed.

Outputs are written to a temporary file in the destination's folder and renamed at the end: an error, Ctrl-C or
SIGTERM leaves no partial file, and an existing output is left untouched. Bad input is reported in one line naming
the file and line, with exit status 2; an interrupt exits with 130. (cli/common.py holds what the commands share.)
"""

from __future__ import annotations

import argparse

from . import dedup, download, embed, evaluate, explain, info, rerank, search, serve, similarity
from .common import run


def build_parser() -> argparse.ArgumentParser:
    """The `tinyminilm` parser: each command module registers its subcommand, in the order `--help` lists them."""
    from .. import __version__

    p = argparse.ArgumentParser(prog="tinyminilm", description="all-MiniLM-L6-v2 sentence embeddings in NumPy")
    p.add_argument("--version", action="version", version=f"tinyminilm {__version__}")
    sub = p.add_subparsers(dest="command", required=True)
    for command in (embed, search, rerank, dedup, similarity, evaluate, download, info, explain, serve):
        command.add_parser(sub)
    return p


def main(argv: list[str] | None = None) -> int:
    """Run the command line with `argv` (default sys.argv[1:]); return the exit status."""
    try:
        args = build_parser().parse_args(argv)
    except SystemExit as e:  # --help, --version, or a usage error argparse has already printed
        return e.code if isinstance(e.code, int) else 0 if e.code is None else 2
    return run(args)
