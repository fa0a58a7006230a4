"""`tinyminilm serve --model NAME`: the model is named, and its commit reported, as `hub.resolve` found them.

A real server process (tests/test_serve.py's `Server`), started with the short name that `tinyminilm.load` takes.
"""

from __future__ import annotations

import httpx

from test_serve import AUTH, KEY, Server
from tinyminilm import MODEL_ID, REVISION


def test_the_short_name_serves_the_hub_id_at_its_revision(model_dir):
    """`serve --model all-MiniLM-L6-v2` reported model_sha null in /info and named the model after its folder:
    the server matched only the full id. The name and the commit now come from hub.resolve."""
    server = Server("--model", "all-MiniLM-L6-v2", "--api-key", KEY)
    try:
        with httpx.Client(base_url=server.url, headers=AUTH, timeout=60) as http:
            info = http.get("/info").json()
            assert info["model_id"] == MODEL_ID and info["model_sha"] == REVISION
            assert [m["id"] for m in http.get("/v1/models").json()["data"]] == [MODEL_ID]
            for name in ("all-MiniLM-L6-v2", MODEL_ID):  # either name may be asked for; the answer names the id
                r = http.post("/v1/embeddings", json={"input": "a cat", "model": name, "encoding_format": "float"})
                assert r.status_code == 200 and r.json()["model"] == MODEL_ID, r.text
    finally:
        assert server.stop() == 0
