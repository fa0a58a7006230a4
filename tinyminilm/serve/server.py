"""Running the server: settings from the command line, the model, uvicorn, and a clean exit on SIGTERM."""

from __future__ import annotations

import logging
import os
import signal
from typing import Any

from .app import Settings, create_app

_LOOPBACK = ("127.0.0.1", "localhost", "::1")
log = logging.getLogger(__name__)  # "tinyminilm.serve.server": start-up warnings, shown by `tinyminilm serve`


def run(args: Any) -> int:
    """Serve until SIGTERM or Ctrl-C, then finish the requests in flight and return 0.

    args: the parsed `tinyminilm serve` options (host, port, model — a name, or the ModelSource the command line
    resolved — revision, model_name, rerank_model, api_key, max_batch_tokens, max_concurrent_requests,
    max_client_batch_size, max_body_bytes, auto_truncate, log_level).
    """
    import uvicorn

    import tinyminilm

    api_key = args.api_key or os.environ.get("TINYMINILM_API_KEY") or None
    if args.host not in _LOOPBACK and not api_key:
        log.warning("listening on %s with no API key: anyone who can reach this address can use the server "
                    "(set --api-key or TINYMINILM_API_KEY)", args.host)
    model = tinyminilm.load(args.model, revision=getattr(args, "revision", None))
    source = model.source  # what hub.resolve found: the Hub id (else the folder's name) is served, and its commit
    name, aliases = source.name, source.aliases
    if args.model_name:
        name, aliases = args.model_name, (name, *aliases)
    reranker = None
    if args.rerank_model:  # a cross-encoder beside the embedding model, on POST /rerank and /v1/rerank
        from .rerank import load_reranker

        reranker = load_reranker(args.rerank_model)
    settings = Settings(model_name=name, aliases=aliases, model_sha=source.revision, api_key=api_key,
                        max_batch_tokens=args.max_batch_tokens, max_concurrent_requests=args.max_concurrent_requests,
                        max_client_batch_size=args.max_client_batch_size, max_body_bytes=args.max_body_bytes,
                        auto_truncate=args.auto_truncate, tokenization_workers=max(1, min(2, os.cpu_count() or 1)))
    app = create_app(model, settings, reranker)
    config = uvicorn.Config(app, host=args.host, port=args.port, log_level=args.log_level, access_log=False,
                            timeout_graceful_shutdown=args.graceful_timeout, server_header=False)
    server = uvicorn.Server(config)
    # uvicorn catches SIGTERM/SIGINT, shuts down gracefully, then raises the signal again for the handler that
    # was there before: make that one a no-op, so a graceful shutdown ends with status 0.
    previous = {s: signal.signal(s, lambda signum, frame: None) for s in (signal.SIGTERM, signal.SIGINT)}
    try:
        server.run()
    finally:
        for s, handler in previous.items():
            signal.signal(s, handler)
    return 0 if server.started else 1
