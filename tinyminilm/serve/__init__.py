"""`tinyminilm serve`: an HTTP embedding server with the OpenAI and text-embeddings-inference APIs.

Imported only by the `serve` command (it needs the `serve` extra: starlette, uvicorn, prometheus_client).
One module per job:

- `errors.py`     the API errors and how each API shapes them (OpenAI's `{"error": {...}}`, TEI's `{"error", ...}`)
- `responses.py`  JSON responses, and an error in the shape of the route's API
- `inputs.py`     reading the body under a size limit, parsing and validating the JSON of each route
- `counting.py`   token counts of texts and pairs, and the too-long refusal
- `batcher.py`    the dynamic batching queue: one thread owns the models and merges concurrent requests
- `metrics.py`    the Prometheus metrics
- `app.py`        the Starlette routes, authentication and metrics middleware
- `rerank.py`     the rerank routes (TEI's /rerank, Cohere's /v1/rerank) for a cross-encoder beside the model
- `server.py`     settings, loading the model, running uvicorn, graceful shutdown
"""
