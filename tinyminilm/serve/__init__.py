"""`tinyminilm serve`: an HTTP embedding server with the OpenAI and text-embeddings-inference APIs.

Imported only by the `serve` command (it needs the `serve` extra: starlette, uvicorn, prometheus_client).
One module per job:

- `errors.py`   the API errors and how each API shapes them (OpenAI's `{"error": {...}}`, TEI's `{"error", ...}`)
- `inputs.py`   reading the body under a size limit, parsing and validating the JSON of each route
- `batcher.py`  the dynamic batching queue: one thread owns the model and merges concurrent requests
- `metrics.py`  the Prometheus metrics
- `app.py`      the Starlette routes, authentication and metrics middleware
- `server.py`   settings, loading the model, running uvicorn, graceful shutdown
"""
