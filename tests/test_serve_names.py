"""`tinyminilm serve --model NAME`: the model is named, and its commit reported, as `hub.resolve` found them.

A real server process (tests/test_serve.py's `Server`), started with the short name that `tinyminilm.load` takes,
or with the Hub id of a model in a Hugging Face cache (offline).
"""

from __future__ import annotations

import os
import subprocess
import sys

import httpx

import tiny_bert
from model_fixtures import hf_cache
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


def test_a_hub_id_is_served_under_its_id_at_the_commit_loaded(tmp_path):
    """`serve --model ID [--revision R]`: read from the Hugging Face cache (offline here); /info's model_id is the
    Hub id and model_sha the exact commit, /v1/models lists the id, and the short name is taken as an alias."""
    repo_id = "sentence-transformers/tiny-test"
    main = hf_cache(tmp_path / "hf", repo_id, tiny_bert.make_folder(tmp_path / "a", "pooling_mode_mean_tokens", True))
    tag = hf_cache(tmp_path / "hf", repo_id, tiny_bert.make_folder(tmp_path / "b", "pooling_mode_cls_token", False),
                   ref="v2")
    env = {"HF_HUB_CACHE": str(tmp_path / "hf"), "HF_HUB_OFFLINE": "1"}
    for args, commit in ((("--model", "tiny-test"), main.name), (("--model", repo_id, "--revision", "v2"), tag.name)):
        server = Server(*args, "--api-key", KEY, env=env)
        try:
            with httpx.Client(base_url=server.url, headers=AUTH, timeout=60) as http:
                info = http.get("/info").json()
                assert (info["model_id"], info["model_sha"]) == (repo_id, commit), args
                assert [m["id"] for m in http.get("/v1/models").json()["data"]] == [repo_id]
                for name in ("tiny-test", repo_id):
                    r = http.post("/v1/embeddings", json={"input": "a cat", "model": name})
                    assert r.status_code == 200 and r.json()["model"] == repo_id, r.text
        finally:
            assert server.stop() == 0


def test_serve_with_an_id_not_in_the_cache_offline_says_how_to_fetch_it(tmp_path):
    run = subprocess.run([sys.executable, "-m", "tinyminilm", "serve", "--model", "acme/absent", "--port", "9"],
                         capture_output=True, text=True, timeout=120,
                         env={**os.environ, "HF_HUB_CACHE": str(tmp_path), "HF_HUB_OFFLINE": "1"})
    assert run.returncode == 2 and run.stdout == ""
    assert run.stderr == (f"tinyminilm: error: acme/absent (revision main) is not in the Hugging Face cache {tmp_path}: "
                          "it has no folder models--acme--absent. HF_HUB_OFFLINE is set, so it was not downloaded: "
                          "fetch it with `tinyminilm download acme/absent` (or huggingface_hub's `hf download "
                          "acme/absent`) on a machine with access to the Hub (into this cache), or unset HF_HUB_OFFLINE\n")
