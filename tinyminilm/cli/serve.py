"""`tinyminilm serve`: the HTTP server's options; the server itself (tinyminilm.serve) is imported when it runs."""

from __future__ import annotations

import argparse
import logging

from ..logs import show_download_messages, show_records
from .common import error, model_name_options, positive_int


def add_parser(sub: argparse._SubParsersAction) -> None:
    """Register `serve` on the subparsers of tinyminilm's command line."""
    v = sub.add_parser("serve", parents=[model_name_options()],
                       help="an HTTP embedding server (OpenAI and text-embeddings-inference APIs)",
                       description="Serve embeddings over HTTP: POST /v1/embeddings (OpenAI), POST /embed and "
                                   "GET /info (text-embeddings-inference), GET /v1/models, /health, /metrics; with "
                                   "--rerank-model, also POST /rerank (text-embeddings-inference) and POST /v1/rerank "
                                   "(Cohere / Jina). Needs the serve extra: pip install 'tinyminilm[serve]'.")
    v.add_argument("--host", default="127.0.0.1", help="address to bind (default 127.0.0.1)")
    v.add_argument("--port", type=positive_int, default=8080, help="port (default 8080)")
    v.add_argument("--model-name", default=None, metavar="NAME",
                   help="the model name clients send and see (default: the Hub id, or the folder's name); /info "
                        "still reports the Hub id's commit as model_sha")
    v.add_argument("--rerank-model", default=None, metavar="ID_OR_FOLDER",
                   help="also serve this one-label cross-encoder (a folder, or a Hub id such as "
                        "cross-encoder/ms-marco-MiniLM-L6-v2) on POST /rerank and /v1/rerank (default: none)")
    v.add_argument("--api-key", default=None, metavar="KEY",
                   help="require `Authorization: Bearer KEY` on every route but /health (default: "
                        "$TINYMINILM_API_KEY; none)")
    v.add_argument("--max-batch-tokens", type=positive_int, default=4096, metavar="N",
                   help="padded tokens (texts x longest) per model batch (default 4096)")
    v.add_argument("--max-concurrent-requests", type=positive_int, default=512, metavar="N",
                   help="requests queued or running at once; more get 429 (default 512)")
    v.add_argument("--max-client-batch-size", type=positive_int, default=2048, metavar="N",
                   help="inputs per request; more get 413 (default 2048, OpenAI's limit)")
    v.add_argument("--max-body-bytes", type=positive_int, default=2_000_000, metavar="N",
                   help="request body size; larger get 413 (default 2000000)")
    v.add_argument("--auto-truncate", action="store_true",
                   help="truncate inputs longer than the model's limit instead of answering 413 (OpenAI routes, "
                        "and /embed and /rerank when the request does not say)")
    v.add_argument("--graceful-timeout", type=positive_int, default=None, metavar="S",
                   help="on SIGTERM, wait at most S seconds for requests in flight (default: until they finish)")
    v.add_argument("--log-level", default="info", choices=("critical", "error", "warning", "info", "debug"))
    v.set_defaults(func=cmd_serve)


def cmd_serve(args: argparse.Namespace) -> int:
    """`tinyminilm serve`: run the HTTP server until SIGTERM or Ctrl-C (exit 0 once the requests in flight end).
    The server's start-up warnings (e.g. no API key on a public address) are shown on stderr."""
    try:
        from ..serve import server
    except ImportError as e:
        return error(f"`tinyminilm serve` needs the serve extra ({e.name} is missing): "
                     "pip install 'tinyminilm[serve]'")
    from .. import hub

    with show_download_messages():  # a model not on this machine yet is fetched before the server starts
        args.model = hub.resolve(args.model, revision=args.revision)
        if args.rerank_model is not None:  # the reranker too, as CrossEncoder names it (a bare name: cross-encoder/)
            args.rerank_model = hub.resolve(args.rerank_model, namespace="cross-encoder")
    with show_records(server.log.name, logging.WARNING, "tinyminilm serve: warning: %(message)s"):
        return server.run(args)
