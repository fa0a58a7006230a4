"""`tinyminilm rerank`: texts ranked by a cross-encoder's score with a query (CrossEncoder.rank), best first."""

from __future__ import annotations

import argparse
import json

from ..errors import ArgumentError, InputError
from ..files import records, scan
from .common import add_revision_option, load_cross_encoder, positive_int, reading_options, text_input

DEFAULT_MODEL = "cross-encoder/ms-marco-MiniLM-L6-v2"  # the one sentence-transformers' docs rerank with


def add_parser(sub: argparse._SubParsersAction) -> None:
    """Register `rerank` on the subparsers of tinyminilm's command line."""
    r = sub.add_parser("rerank", parents=[reading_options()], help="rank texts by a cross-encoder's score",
                       description="Score each text with the query by a cross-encoder and print them best first, as "
                                   "sentence-transformers' CrossEncoder.rank does. The scores are the model's own "
                                   "(raw logits for ms-marco-MiniLM-L6-v2) unless --activation says otherwise.")
    r.add_argument("query", metavar="QUERY")
    r.add_argument("docs", nargs="*", metavar="DOC", help="the texts to rank (or --input FILE)")
    r.add_argument("--input", "-i", default=None, metavar="FILE",
                   help="texts from FILE (.txt/.jsonl/.csv/.tsv, - for stdin)")
    r.add_argument("--model", default=DEFAULT_MODEL, metavar="ID_OR_FOLDER",
                   help=f"a Hub id or a folder of a cross-encoder (a bare name means cross-encoder/NAME; default "
                        f"{DEFAULT_MODEL})")
    add_revision_option(r)
    r.add_argument("--batch-size", type=positive_int, default=32, help="pairs per forward pass (default 32)")
    r.add_argument("--top-k", "-k", type=positive_int, default=None, help="print the best K (default all)")
    r.add_argument("--max-length", type=positive_int, default=None, metavar="N",
                   help="cut longer (query, text) pairs to N tokens (default: the model's)")
    r.add_argument("--activation", choices=("sigmoid", "identity"), default=None,
                   help="the activation on the logits, as rank's activation_fn (default: the model's own; "
                        "sigmoid gives text-embeddings-inference's /rerank scores)")
    r.add_argument("--json", action="store_true",
                   help="one JSON object per text (rank, score, index, line, text) instead of a table")
    r.set_defaults(func=cmd_rerank)


def cmd_rerank(args: argparse.Namespace) -> int:
    """`tinyminilm rerank`: the texts ranked by their score with the query, as a table or JSON lines."""
    if bool(args.docs) == (args.input is not None):
        raise InputError("rerank: give the texts as arguments after the query or --input FILE (one of the two)")
    if args.input is None:
        lines, docs = [None] * len(args.docs), args.docs
        return _rerank(args, lines, docs)
    with text_input(args.input, args) as src:
        scan(src)  # validates the whole file (errors name the file and line) before the model is loaded
        lines, docs = zip(*records(src))
    return _rerank(args, list(lines), list(docs))


def _load(args: argparse.Namespace):
    """The cross-encoder of --model at --max-length; shows on stderr what is downloaded."""
    model = load_cross_encoder(args.model, revision=args.revision)
    if args.max_length is not None:
        try:
            model.max_length = args.max_length
        except ArgumentError as e:
            raise ArgumentError(f"--max-length: {e}") from None
    return model


def _rerank(args: argparse.Namespace, lines: list[int | None], docs: list[str]) -> int:
    model = _load(args)
    hits = model.rank(args.query, docs, top_k=args.top_k, batch_size=args.batch_size, activation_fn=args.activation)
    for rank, hit in enumerate(hits, 1):
        i = hit["corpus_id"]
        if args.json:
            print(json.dumps({"rank": rank, "score": round(hit["score"], 6), "index": i, "line": lines[i],
                              "text": docs[i]}, ensure_ascii=False))
        else:
            where = f"doc {i}" if lines[i] is None else f"line {lines[i]}"
            print(f"{rank:4d}  {hit['score']:9.4f}  {where:<11} {docs[i]}")
    return 0
