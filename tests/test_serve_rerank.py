"""`tinyminilm serve --rerank-model`: POST /rerank (text-embeddings-inference) and POST /v1/rerank (Cohere / Jina,
as infinity and vLLM serve it) on a real server process on 127.0.0.1, called with httpx.

The reranker is a random cross-encoder of ms-marco-MiniLM-L6-v2's shape (tests/cross_models.py, the st4-config
variant, whose saved activation is the identity as the real model's is). Every score is checked against
tinyminilm.CrossEncoder's own predict and rank, which tests/test_cross_encoder.py checks against
sentence-transformers.
"""

from __future__ import annotations

import asyncio
import random
import re
import subprocess
import sys

import httpx
import numpy as np
import pytest

import cross_models as cm
from test_serve import AUTH, KEY, WORDS, Server, check_refusal, http  # noqa: F401 - http is a fixture
from tinyminilm import MODEL_ID
from tinyminilm.activations import sigmoid

DOCS = cm.RANK_DOCS  # ties (duplicates), an empty text, a long one, CJK


@pytest.fixture(scope="module")
def folder(reranker_folder):
    return reranker_folder


@pytest.fixture(scope="module")
def server(folder):  # test_serve's `http` fixture, imported above, is a client of this server
    s = Server("--api-key", KEY, "--rerank-model", str(folder))
    yield s
    assert s.stop() == 0


def _pairs(query: str, texts: list[str]) -> list[tuple[str, str]]:
    return [(query, t) for t in texts]


# --------------------------------------------------------------------------------------------------------------
# Both routes give CrossEncoder's scores, in rank's order
# --------------------------------------------------------------------------------------------------------------

def test_tei_rerank_gives_the_sigmoid_of_the_logits_in_rank_s_order(http, reranker):
    logits = reranker.predict(_pairs(cm.RANK_QUERY, DOCS), activation_fn="identity")  # the model's own activation
    order = [r["corpus_id"] for r in reranker.rank(cm.RANK_QUERY, DOCS)]

    r = http.post("/rerank", json={"query": cm.RANK_QUERY, "texts": DOCS})
    assert r.status_code == 200, r.text
    ranks = r.json()
    assert [x["index"] for x in ranks] == order  # sorted, best first; the duplicates in document order
    assert all(set(x) == {"index", "score"} for x in ranks)
    got = np.array([x["score"] for x in ranks], dtype=np.float32)
    np.testing.assert_allclose(got, sigmoid(logits)[order], atol=1e-5, rtol=0)
    np.testing.assert_allclose(got, reranker.predict(_pairs(cm.RANK_QUERY, DOCS), activation_fn="sigmoid")[order],
                               atol=1e-5, rtol=0)
    assert int(r.headers["x-compute-tokens"]) == sum(map(len, reranker.token_ids(_pairs(cm.RANK_QUERY, DOCS))))

    raw = http.post("/rerank", json={"query": cm.RANK_QUERY, "texts": DOCS, "raw_scores": True,
                                     "return_text": True}).json()
    assert [x["index"] for x in raw] == order and [x["text"] for x in raw] == [DOCS[i] for i in order]
    np.testing.assert_allclose([x["score"] for x in raw], logits[order], atol=1e-5, rtol=0)
    assert [x["score"] for x in raw] != [x["score"] for x in ranks]  # raw really is the logit


def test_v1_rerank_gives_relevance_scores_top_n_and_documents(http, reranker, folder):
    expected = reranker.rank(cm.RANK_QUERY, DOCS, activation_fn="sigmoid", return_documents=True)

    r = http.post("/v1/rerank", json={"model": folder.name, "query": cm.RANK_QUERY, "documents": DOCS, "top_n": 3,
                                      "return_documents": True})
    assert r.status_code == 200, r.text
    body = r.json()
    assert body["model"] == folder.name and body["id"].startswith("rerank-")
    assert [x["index"] for x in body["results"]] == [e["corpus_id"] for e in expected[:3]]
    assert [x["document"] for x in body["results"]] == [{"text": e["text"]} for e in expected[:3]]
    np.testing.assert_allclose([x["relevance_score"] for x in body["results"]], [e["score"] for e in expected[:3]],
                               atol=1e-5, rtol=0)
    n = sum(map(len, reranker.token_ids(_pairs(cm.RANK_QUERY, DOCS))))
    assert body["usage"] == {"prompt_tokens": n, "total_tokens": n}

    every = http.post("/v1/rerank", json={"query": cm.RANK_QUERY, "documents": DOCS, "top_n": 50}).json()  # no model
    assert [x["index"] for x in every["results"]] == [e["corpus_id"] for e in expected]
    assert all(set(x) == {"index", "relevance_score"} for x in every["results"])  # no documents unless asked

    cohere = http.post("/v1/rerank", json={"query": "q", "documents": [{"text": "a"}, "b"]}).json()  # Cohere's form
    assert sorted(x["index"] for x in cohere["results"]) == [0, 1]
    np.testing.assert_allclose(sorted(x["relevance_score"] for x in cohere["results"]),
                               sorted(reranker.predict([("q", "a"), ("q", "b")], activation_fn="sigmoid")), atol=1e-5)

    r = http.post("/v1/rerank", json={"model": MODEL_ID, "query": "q", "documents": ["a"]})  # the embedding model
    assert r.status_code == 404
    err = r.json()["error"]
    assert err["code"] == "model_not_found" and err["param"] == "model" and folder.name in err["message"]


def test_too_long_pairs_are_413_unless_truncated(http, reranker):
    exact, over = "a " * 508, "a " * 509  # with the query "q": [CLS] q [SEP] a×508 [SEP] is 512 tokens, the limit
    assert reranker.untruncated_length(("q", exact)) == reranker.max_length == 512
    assert http.post("/rerank", json={"query": "q", "texts": [exact]}).status_code == 200

    r = http.post("/rerank", json={"query": "q", "texts": ["short", over]})
    assert r.status_code == 413 and r.json()["error_type"] == "Validation"
    assert "`texts[1]` with the query has 513 tokens, more than the model's limit of 512" in r.json()["error"]
    assert '"truncate": true' in r.json()["error"]

    long = [cm.POPULATION, cm.LONG_D + cm.LONG_Q, cm.HUGE_D]
    r = http.post("/rerank", json={"query": cm.BERLIN, "texts": long, "truncate": True, "raw_scores": True})
    assert r.status_code == 200, r.text
    got = {x["index"]: x["score"] for x in r.json()}  # the pairs cut "longest_first", as predict cuts them
    np.testing.assert_allclose([got[i] for i in range(3)], reranker.predict(_pairs(cm.BERLIN, long),
                                                                            activation_fn="identity"), atol=1e-5)

    r = http.post("/v1/rerank", json={"query": "q", "documents": ["short", over]})
    assert r.status_code == 413
    err = r.json()["error"]
    assert err["param"] == "documents[1]" and err["code"] == "input_too_long" and "--auto-truncate" in err["message"]

    r = http.post("/rerank", json={"query": "q", "texts": ["x"], "truncation_direction": "Right"})
    assert r.status_code == 200


# --------------------------------------------------------------------------------------------------------------
# Bad requests: 4xx naming the field and index
# --------------------------------------------------------------------------------------------------------------

BAD = [  # (route, body, status, text in the message, OpenAI param)
    ("/rerank", b"{}", 400, "`query` is missing", None),
    ("/rerank", b'{"texts": ["a"]}', 400, "`query` is missing", None),
    ("/rerank", b'{"query": 5, "texts": ["a"]}', 400, "`query` is a number", None),
    ("/rerank", b'{"query": ["q"], "texts": ["a"]}', 400, "`query` is an array", None),
    ("/rerank", b'{"query": "\\udfff", "texts": ["a"]}', 400, "`query` is not valid Unicode", None),
    ("/rerank", b'{"query": "q"}', 400, "`texts` is missing", None),
    ("/rerank", b'{"query": "q", "texts": "a"}', 400, "`texts` is a string; send a list of strings", None),
    ("/rerank", b'{"query": "q", "texts": []}', 400, "`texts` is an empty list", None),
    ("/rerank", b'{"query": "q", "texts": ["a", 3.5]}', 400, "`texts[1]` is a number", None),
    ("/rerank", b'{"query": "q", "texts": ["a", null]}', 400, "`texts[1]` is null", None),
    ("/rerank", b'{"query": "q", "texts": ["a", "b \\ud800"]}', 400, "`texts[1]` is not valid Unicode", None),
    ("/rerank", b'{"query": "q", "texts": [[101, 102]]}', 400, "`texts[0]` is token ids", None),
    ("/rerank", b'{"query": "q", "texts": ["a"], "raw_scores": "yes"}', 400, "`raw_scores` is a string", None),
    ("/rerank", b'{"query": "q", "texts": ["a"], "return_text": 1}', 400, "`return_text` is a number", None),
    ("/rerank", b'{"query": "q", "texts": ["a"], "truncate": "no"}', 400, "`truncate` is a string", None),
    ("/rerank", b'{"query": "q", "texts": ["a"], "truncation_direction": "Left"}', 400,
     "`truncation_direction` is \"Left\"; this server truncates on the right only", None),
    ("/rerank", b'{"query": "q", "texts": ["a"]', 400, "not valid JSON", None),
    ("/v1/rerank", b'{"documents": ["a"]}', 400, "`query` is missing", "query"),
    ("/v1/rerank", b'{"query": null, "documents": ["a"]}', 400, "`query` is missing", "query"),
    ("/v1/rerank", b'{"query": {"text": "q"}, "documents": ["a"]}', 400, "`query` is an object", "query"),
    ("/v1/rerank", b'{"query": "q"}', 400, "`documents` is missing", "documents"),
    ("/v1/rerank", b'{"query": "q", "documents": 7}', 400, "`documents` is a number", "documents"),
    ("/v1/rerank", b'{"query": "q", "documents": []}', 400, "`documents` is an empty list", "documents"),
    ("/v1/rerank", b'{"query": "q", "documents": ["a", true]}', 400, "`documents[1]` is a boolean", "documents[1]"),
    ("/v1/rerank", b'{"query": "q", "documents": ["a", {"txt": "b"}]}', 400,
     "`documents[1]` is an object without a string `text`", "documents[1]"),
    ("/v1/rerank", b'{"query": "q", "documents": ["a", "\\ud83d"]}', 400, "`documents[1]` is not valid Unicode",
     "documents[1]"),
    *[("/v1/rerank", b'{"query": "q", "documents": ["a"], "top_n": %s}' % n.encode(), 400,
       f"`top_n` is {n}; send a positive integer", "top_n") for n in ("0", "-2", "1.5", '"2"', "true")],
    ("/v1/rerank", b'{"query": "q", "documents": ["a"], "return_documents": "yes"}', 400,
     "`return_documents` is a string", "return_documents"),
    ("/v1/rerank", b'{"query": "q", "documents": ["a"], "model": 3}', 400, "`model` is a number", "model"),
    ("/v1/rerank", b"[]", 400, "the request body is an array", None),
]


@pytest.mark.parametrize("route, body, status, message, param", BAD)
def test_bad_request(http, route, body, status, message, param):
    r = http.post(route, content=body, headers={"Content-Type": "application/json"})
    check_refusal(r, route, status, message, param)
    assert route.startswith("/v1/") or r.json()["error_type"] == "Validation"


def test_wrong_method_and_health_after_bad_requests(http):
    assert http.get("/rerank").status_code == 405
    assert http.get("/v1/rerank").json()["error"]["message"] == "GET is not allowed on /v1/rerank"
    assert http.get("/health").status_code == 200
    assert http.post("/rerank", json={"query": "q", "texts": ["still fine"]}).status_code == 200


# --------------------------------------------------------------------------------------------------------------
# Auth, metrics, /info and /v1/models, as for the embedding routes
# --------------------------------------------------------------------------------------------------------------

def test_auth(server):
    bodies = {"/rerank": {"query": "q", "texts": ["a"]}, "/v1/rerank": {"query": "q", "documents": ["a"]}}
    with httpx.Client(base_url=server.url, timeout=60) as c:
        for route, body in bodies.items():
            for headers in ({}, {"Authorization": "Bearer wrong"}, {"Authorization": KEY}):
                r = c.post(route, json=body, headers=headers)
                assert r.status_code == 401, (route, headers)
                assert r.headers["WWW-Authenticate"] == "Bearer"
                msg = r.json()["error"]["message"] if route.startswith("/v1/") else r.json()["error"]
                assert ("requires an API key" in msg) == (not headers)
            assert c.post(route, json=body, headers=AUTH).status_code == 200


def test_metrics_info_and_models(http, folder):
    http.post("/rerank", json={"query": "q", "texts": ["m1", "m2"]})
    http.post("/v1/rerank", json={"query": "q", "documents": []})
    text = http.get("/metrics").text
    assert re.search(r'tinyminilm_requests_total\{route="/rerank",status="200"\} [1-9]', text)
    assert re.search(r'tinyminilm_requests_total\{route="/v1/rerank",status="400"\} [1-9]', text)

    info = http.get("/info").json()
    assert info["model_id"] == MODEL_ID and info["model_type"] == {"embedding": {"pooling": "mean"}}
    assert info["reranker"] == {"model_id": folder.name, "model_sha": None, "model_dtype": "float32",
                                "model_type": {"reranker": {"id2label": {"0": "LABEL_0"}, "label2id": {"LABEL_0": 0}}},
                                "max_input_length": 512}
    assert [m["id"] for m in http.get("/v1/models").json()["data"]] == [MODEL_ID, folder.name]
    assert http.get(f"/v1/models/{folder.name}").json()["id"] == folder.name
    assert http.get("/v1/models/all-MiniLM-L6-v2").json()["id"] == MODEL_ID


# --------------------------------------------------------------------------------------------------------------
# Dynamic batching: pairs of concurrent requests share forward passes, beside embedding requests
# --------------------------------------------------------------------------------------------------------------

def test_concurrent_rerank_and_embed_clients_get_their_own_results(server, reranker, model):
    rng = random.Random(21)
    pool = sorted({" ".join(rng.choice(WORDS) for _ in range(rng.randint(1, 8))) for _ in range(200)})
    queries = pool[:6]
    logits = {q: dict(zip(pool, reranker.predict(_pairs(q, pool), activation_fn="identity"))) for q in queries}
    vectors = dict(zip(pool, model.encode(pool)))
    plans = [[(rng.choice(queries), rng.sample(pool, rng.randint(1, 20))) for _ in range(6)] for _ in range(24)]

    async def client(i: int, requests: list) -> list:
        out = []
        async with httpx.AsyncClient(base_url=server.url, headers=AUTH, timeout=300) as c:
            for query, texts in requests:
                route = ("/rerank", "/v1/rerank", "/embed")[i % 3]
                body = {"inputs": texts} if route == "/embed" else {"query": query, "texts": texts,
                                                                      "documents": texts, "raw_scores": True}
                r = await c.post(route, json=body)
                out.append((route, query, texts, r.status_code, r.json()))
        return out

    async def main():
        return await asyncio.gather(*(client(i, p) for i, p in enumerate(plans)))

    results = [x for per_client in asyncio.run(main()) for x in per_client]
    assert [r[3] for r in results] == [200] * len(results)
    worst = 0.0
    for route, query, texts, _, body in results:
        if route == "/embed":
            got, want = np.array(body, dtype=np.float32), np.stack([vectors[t] for t in texts])
        elif route == "/rerank":
            got = np.array([x["score"] for x in sorted(body, key=lambda x: x["index"])])
            want = np.array([logits[query][t] for t in texts])
        else:
            got = np.array([x["relevance_score"] for x in sorted(body["results"], key=lambda x: x["index"])])
            want = sigmoid(np.array([logits[query][t] for t in texts], dtype=np.float32))
        worst = max(worst, float(np.abs(got - want).max()))
    assert worst <= 1e-5


def test_one_batcher_merges_equal_jobs_only(reranker, model):
    """Queued before the worker starts, jobs run in arrival order: consecutive jobs of one kind share a model call
    (within the token budget), jobs of another kind are never mixed in, and each gets its own rows."""
    from tinyminilm.serve.batcher import Batcher, Encode, Score

    calls = []

    class Recorder:
        def batch(self, items, padded_tokens, seconds):
            calls.append((items, padded_tokens))

        def queue(self, items, jobs):
            pass

    score, encode = Score(reranker), Encode(model)
    assert Score(reranker) == score and Encode(model, raw=True) != encode
    jobs = [(score, _pairs("q", ["a", "b c", "d"])), (Score(reranker), _pairs("r", ["e", "f"])),
            (encode, ["g", "h i"]), (score, _pairs("s", ["j"] * 9))]
    batcher = Batcher(max_batch_tokens=30, max_concurrent_requests=8, metrics=Recorder())
    tokens = [[len(x) for x in run.model.token_ids(items)] for run, items in jobs]
    futures = [batcher.submit(run, items, t) for (run, items), t in zip(jobs, tokens)]
    batcher.start()
    try:
        got = [f.result(timeout=120) for f in futures]
    finally:
        batcher.stop(timeout=60)
    assert [n for n, _ in calls] == [5, 2, 6, 3]  # jobs 1+2 together; 3 alone; 4 split by the 30-token budget
    assert all(padded <= 30 for _, padded in calls)
    for (run, items), rows in zip(jobs, got):
        want = model.encode(items) if run is encode else reranker.predict(items, activation_fn="identity")
        assert rows.shape == want.shape
        np.testing.assert_allclose(rows, want, atol=1e-5, rtol=0)


# --------------------------------------------------------------------------------------------------------------
# Limits and overload; no reranker; a reranker that is not one
# --------------------------------------------------------------------------------------------------------------

def test_limits_and_overload(folder, reranker):
    s = Server("--rerank-model", str(folder), "--max-concurrent-requests", "2", "--max-client-batch-size", "8",
               "--max-body-bytes", "65536")
    try:
        with httpx.Client(base_url=s.url, timeout=120) as c:
            r = c.post("/rerank", json={"query": "q", "texts": ["x"] * 9})
            assert r.status_code == 413 and "`texts` has 9 items" in r.json()["error"] and "8" in r.json()["error"]
            r = c.post("/v1/rerank", json={"query": "q", "documents": ["y" * 70000]})
            assert r.status_code == 413 and "65536 bytes" in r.json()["error"]["message"]

        rng = random.Random(5)
        bodies = [{"query": cm.BERLIN, "texts": [" ".join(rng.choice(WORDS) for _ in range(60)) for _ in range(8)]}
                  for _ in range(30)]

        async def main():
            async with httpx.AsyncClient(base_url=s.url, timeout=300) as c:
                return await asyncio.gather(*(c.post("/rerank", json=b) for b in bodies))

        responses = asyncio.run(main())
        statuses = [r.status_code for r in responses]
        assert statuses.count(429) > 0 and statuses.count(200) > 0 and set(statuses) <= {200, 429}, statuses
        limited = next(r for r in responses if r.status_code == 429)
        assert limited.headers["Retry-After"] == "1" and limited.json()["error_type"] == "Overloaded"
        for r, b in zip(responses, bodies):
            if r.status_code == 200:
                got = [x["score"] for x in sorted(r.json(), key=lambda x: x["index"])]
                want = reranker.predict(_pairs(b["query"], b["texts"]), activation_fn="sigmoid")
                np.testing.assert_allclose(got, want, atol=1e-5, rtol=0)
        with httpx.Client(base_url=s.url, timeout=120) as c:
            assert c.post("/rerank", json=bodies[0]).status_code == 200
    finally:
        assert s.stop() == 0


def test_without_a_reranker_both_routes_say_how_to_start_one():
    s = Server()
    try:
        with httpx.Client(base_url=s.url, timeout=60) as c:
            r = c.post("/rerank", json={"query": "q", "texts": ["a"]})
            assert r.status_code == 424 and r.json()["error_type"] == "Backend"
            assert "no reranker: start it with --rerank-model" in r.json()["error"]
            r = c.post("/v1/rerank", json={"query": "q", "documents": ["a"]})
            assert r.status_code == 424 and r.json()["error"]["code"] == "no_reranker"
            assert "--rerank-model" in r.json()["error"]["message"]
            assert c.get("/info").json()["reranker"] is None
            assert [m["id"] for m in c.get("/v1/models").json()["data"]] == [MODEL_ID]
            assert c.post("/embed", json={"inputs": "still embeds"}).status_code == 200
    finally:
        assert s.stop() == 0


def test_a_model_of_several_labels_is_refused_at_start(model_dir, tmp_path):
    three = cm.make_folder("three-labels", model_dir, tmp_path / "three")
    run = subprocess.run([sys.executable, "-m", "tinyminilm", "serve", "--rerank-model", str(three), "--port", "1"],
                         capture_output=True, text=True, timeout=300, check=False)
    assert run.returncode == 2, run.stderr
    assert f"--rerank-model {three}: this cross-encoder has 3 labels" in run.stderr and "Traceback" not in run.stderr
