"""`tinyminilm serve`: a real server process on 127.0.0.1, called by real clients (the openai package, httpx, a
raw socket). One server per module for the API tests; the limits and SIGTERM tests start their own."""

from __future__ import annotations

import asyncio
import base64
import os
import random
import re
import signal
import socket
import subprocess
import sys
import tempfile
import threading
import time

import httpx
import numpy as np
import openai
import pytest

from tinyminilm import MODEL_ID

KEY = "test-key-7f3a"
AUTH = {"Authorization": f"Bearer {KEY}"}
WORDS = ("river stone cloud paper engine garden window bright silent quick yellow music number travel winter "
         "market doctor orange forest simple letter island bridge camera").split()


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


class Server:
    """A `python -m tinyminilm serve` subprocess on a free port, its output in a temporary file."""

    def __init__(self, *args: str, env: dict | None = None) -> None:
        self.port = _free_port()
        self.url = f"http://127.0.0.1:{self.port}"
        self.log = tempfile.NamedTemporaryFile("w+", suffix=".log", delete=False)
        self.proc = subprocess.Popen([sys.executable, "-m", "tinyminilm", "serve", "--port", str(self.port),
                                      "--log-level", "warning", *args],
                                     stdout=self.log, stderr=subprocess.STDOUT, env={**os.environ, **(env or {})})
        deadline = time.monotonic() + 120
        while True:
            if self.proc.poll() is not None:
                raise AssertionError(f"the server exited with {self.proc.returncode}:\n{self.output()}")
            try:
                if httpx.get(self.url + "/health", timeout=2).status_code == 200:
                    return
            except httpx.HTTPError:
                pass
            if time.monotonic() > deadline:
                self.proc.kill()
                raise AssertionError(f"the server did not become healthy in 120 s:\n{self.output()}")
            time.sleep(0.1)

    def output(self) -> str:
        self.log.flush()
        with open(self.log.name, encoding="utf-8", errors="replace") as f:
            return f.read()

    def stop(self) -> int:
        if self.proc.poll() is None:
            self.proc.send_signal(signal.SIGTERM)
        try:
            return self.proc.wait(60)
        finally:
            if self.proc.poll() is None:
                self.proc.kill()
            self.log.close()
            os.unlink(self.log.name)


@pytest.fixture(scope="module")
def server(model_dir):
    s = Server("--api-key", KEY)  # the pinned model, found where the session fixture put it
    yield s
    assert s.stop() == 0


@pytest.fixture(scope="module")
def http(server):
    with httpx.Client(base_url=server.url, headers=AUTH, timeout=60) as c:
        yield c


def _texts(rng: random.Random, n: int, lo: int = 3, hi: int = 12) -> list[str]:
    return [" ".join(rng.choice(WORDS) for _ in range(rng.randint(lo, hi))) for _ in range(n)]


# --------------------------------------------------------------------------------------------------------------
# Both APIs give encode's vectors
# --------------------------------------------------------------------------------------------------------------

def test_openai_client_base64_float_dimensions(server, model):
    texts = ["The quick brown fox jumps over the lazy dog.", "Un café, s'il vous plaît 😀", "", "naïve résumé"]
    expected = model.encode(texts)
    client = openai.OpenAI(base_url=server.url + "/v1", api_key=KEY, max_retries=0)

    r = client.embeddings.create(model=MODEL_ID, input=texts)  # the client asks for base64 by default
    got = np.array([d.embedding for d in r.data], dtype=np.float32)
    assert [d.index for d in r.data] == [0, 1, 2, 3]
    assert np.abs(got - expected).max() <= 1e-6
    assert r.model == MODEL_ID and r.object == "list"
    n_tokens = sum(len(ids) for ids in model.token_ids(texts))
    assert r.usage.prompt_tokens == r.usage.total_tokens == n_tokens

    r = client.embeddings.create(model="all-MiniLM-L6-v2", input=texts, encoding_format="float", dimensions=128)
    got = np.array([d.embedding for d in r.data], dtype=np.float32)
    assert got.shape == (4, 128)
    assert np.abs(got - model.encode(texts, truncate_dim=128, normalize_embeddings=True)).max() <= 1e-6

    r = client.embeddings.create(model=MODEL_ID, input="one text", encoding_format="float")
    assert np.abs(np.array(r.data[0].embedding) - model.encode("one text")).max() <= 1e-6

    assert [m.id for m in client.models.list().data] == [MODEL_ID]
    with pytest.raises(openai.NotFoundError) as e:
        client.embeddings.create(model="text-embedding-3-small", input="x")
    assert e.value.body["code"] == "model_not_found" and "text-embedding-3-small" in e.value.body["message"]
    with pytest.raises(openai.AuthenticationError):
        openai.OpenAI(base_url=server.url + "/v1", api_key="wrong", max_retries=0).embeddings.create(
            model=MODEL_ID, input="x")


def test_plain_http_openai_base64_is_little_endian_float32(http, model):
    r = http.post("/v1/embeddings", json={"input": ["alpha", "beta"], "model": MODEL_ID, "encoding_format": "base64"})
    assert r.status_code == 200, r.text
    rows = [np.frombuffer(base64.b64decode(d["embedding"]), dtype="<f4") for d in r.json()["data"]]
    assert np.abs(np.stack(rows) - model.encode(["alpha", "beta"])).max() <= 1e-6


def test_tei_embed_normalize_and_info(http, model):
    texts = ["What is deep learning?", "a b c", "Ünïcödé text"]
    r = http.post("/embed", json={"inputs": texts})
    assert r.status_code == 200, r.text
    assert np.abs(np.array(r.json(), dtype=np.float32) - model.encode(texts)).max() <= 1e-6
    r = http.post("/embed", json={"inputs": texts[0]})
    assert np.array(r.json()).shape == (1, 384)

    raw = np.array(http.post("/embed", json={"inputs": texts, "normalize": False}).json(), dtype=np.float32)
    pooled = np.stack([t.mean(axis=0) for t in model.encode(texts, output_value="token_embeddings")])
    assert np.abs(raw - pooled).max() <= 1e-6
    assert not np.allclose(np.linalg.norm(raw, axis=1), 1.0, atol=1e-3)  # really unnormalized

    info = http.get("/info").json()
    assert info["model_id"] == MODEL_ID and info["max_input_length"] == model.max_seq_length == 256
    assert info["model_type"] == {"embedding": {"pooling": "mean"}} and info["model_dtype"] == "float32"
    for key in ("max_batch_tokens", "max_concurrent_requests", "max_client_batch_size", "auto_truncate", "version"):
        assert key in info


def test_too_long_input_is_413_unless_truncated(http, model):
    exact = "a " * (model.max_seq_length - 2)  # exactly max_seq_length tokens with [CLS] and [SEP]
    long = "word " * 400
    assert len(model.token_ids([exact])[0]) == model.max_seq_length

    r = http.post("/embed", json={"inputs": ["short", long]})
    assert r.status_code == 413 and r.json()["error_type"] == "Validation"
    assert "`inputs[1]` has 402 tokens" in r.json()["error"] and "256" in r.json()["error"]
    r = http.post("/embed", json={"inputs": ["short", long], "truncate": True})
    assert r.status_code == 200
    assert np.abs(np.array(r.json(), dtype=np.float32) - model.encode(["short", long])).max() <= 1e-6
    assert http.post("/embed", json={"inputs": exact}).status_code == 200

    r = http.post("/v1/embeddings", json={"input": long, "model": MODEL_ID})
    assert r.status_code == 413
    err = r.json()["error"]
    assert err["param"] == "input" and err["code"] == "input_too_long" and "--auto-truncate" in err["message"]


# --------------------------------------------------------------------------------------------------------------
# Dynamic batching: many clients at once, each gets its own vectors
# --------------------------------------------------------------------------------------------------------------

def test_64_concurrent_clients_get_their_own_vectors(server, model):
    rng = random.Random(11)
    pool = sorted(set(_texts(rng, 300, 1, 6)))  # short texts keep the ~16,000 per run cheap
    reference = dict(zip(pool, model.encode(pool)))
    plans = [[rng.sample(pool, rng.randint(1, 50)) for _ in range(10)] for _ in range(64)]

    async def client(requests: list[list[str]], api: str) -> list[tuple[int, list[str], object]]:
        out = []
        async with httpx.AsyncClient(base_url=server.url, headers=AUTH, timeout=300) as c:
            for texts in requests:
                if api == "openai":
                    r = await c.post("/v1/embeddings", json={"input": texts, "model": MODEL_ID,
                                                             "encoding_format": "float"})
                    body = r.json()
                    vectors = [d["embedding"] for d in body["data"]] if r.status_code == 200 else body
                else:
                    r = await c.post("/embed", json={"inputs": texts})
                    vectors = r.json()
                out.append((r.status_code, texts, vectors))
        return out

    async def main():
        return await asyncio.gather(*(client(p, "openai" if i % 2 else "tei") for i, p in enumerate(plans)))

    results = [x for per_client in asyncio.run(main()) for x in per_client]
    assert len(results) == 640
    assert [s for s, _, _ in results if s != 200] == []
    worst = 0.0
    for _, texts, vectors in results:
        got = np.array(vectors, dtype=np.float32)
        assert got.shape == (len(texts), 384)
        worst = max(worst, float(np.abs(got - np.stack([reference[t] for t in texts])).max()))
    assert worst <= 1e-6


# --------------------------------------------------------------------------------------------------------------
# Bad requests: 4xx with a message naming the field, never a 5xx
# --------------------------------------------------------------------------------------------------------------

BAD = [  # (route, body, status, text in the message, OpenAI param)
    ("/v1/embeddings", b'{"input": "x",', 400, "not valid JSON", None),
    ("/v1/embeddings", b"", 400, "body is empty", None),
    ("/v1/embeddings", b"[1, 2]", 400, "the request body is an array; send a JSON object", None),
    ("/v1/embeddings", b'{"input": "\xff\xfe"}', 400, "not valid UTF-8", None),
    ("/v1/embeddings", b'{"model": "all-MiniLM-L6-v2"}', 400, "`input` is missing", "input"),
    ("/v1/embeddings", b'{"input": 5}', 400, "`input` is a number", "input"),
    ("/v1/embeddings", b'{"input": []}', 400, "`input` is an empty list", "input"),
    ("/v1/embeddings", b'{"input": ["ok", null]}', 400, "`input[1]` is null", "input[1]"),
    ("/v1/embeddings", b'{"input": [101, 2023, 102]}', 400, "`input[0]` is token ids", "input[0]"),
    ("/v1/embeddings", b'{"input": ["ok", [101, 102]]}', 400, "`input[1]` is token ids", "input[1]"),
    ("/v1/embeddings", b'{"input": ["ok", "bad \\ud800 here"]}', 400, "`input[1]` is not valid Unicode: a lone "
                                                                      "surrogate \\ud800 at character 4", "input[1]"),
    ("/v1/embeddings", b'{"input": "\\udfff"}', 400, "`input` is not valid Unicode", "input"),
    ("/v1/embeddings", b'{"input": "x", "encoding_format": "int8"}', 400, "`encoding_format`", "encoding_format"),
    ("/v1/embeddings", b'{"input": "x", "dimensions": 0}', 400, "`dimensions` is 0", "dimensions"),
    ("/v1/embeddings", b'{"input": "x", "dimensions": 385}', 400, "from 1 to 384", "dimensions"),
    ("/v1/embeddings", b'{"input": "x", "dimensions": "8"}', 400, "`dimensions`", "dimensions"),
    ("/v1/embeddings", b'{"input": "x", "dimensions": 1' + b"0" * 5000 + b"}", 400, "not valid JSON", None),
    ("/v1/embeddings", b'{"input": ' + b"[" * 100000 + b"]" * 100000 + b"}", 400, "nested too deeply", None),
    ("/v1/embeddings", b'{"input": "x", "model": 3}', 400, "`model` is a number", "model"),
    ("/v1/embeddings", b'{"input": "x", "model": "gpt-4"}', 404, "`gpt-4` does not exist", "model"),
    ("/v1/nothing", b"{}", 404, "no route", None),
    ("/embed", b'{"inputs": []}', 400, "`inputs` is an empty list", None),
    ("/embed", b'{"input": "x"}', 400, "`inputs` is missing", None),
    ("/embed", b'{"inputs": ["a", {"t": 1}]}', 400, "`inputs[1]` is an object", None),
    ("/embed", b'{"inputs": "x", "normalize": "yes"}', 400, "`normalize` is a string", None),
    ("/embed", b'{"inputs": "x", "truncate": 1}', 400, "`truncate` is a number", None),
    ("/embed", b'{"inputs": "x", "truncation_direction": "Left"}', 400, "right only", None),
    ("/embed", b'{"inputs": ["a", "\\ud83d"]}', 400, "`inputs[1]` is not valid Unicode", None),
    ("/embed", b"nul", 400, "not valid JSON", None),
    ("/nothing", b"{}", 404, "no route", None),
]


def check_refusal(r: httpx.Response, route: str, status: int, message: str, param: str | None) -> None:
    """`r` is a `status` in the route's API shape (OpenAI's under /v1/, TEI's elsewhere) whose message holds
    `message`, naming `param` on OpenAI's routes."""
    assert r.status_code == status, r.text
    if route.startswith("/v1/"):
        err = r.json()["error"]
        assert set(err) == {"message", "type", "param", "code"}
        assert message in err["message"] and err["param"] == param, err
    else:
        assert message in r.json()["error"] and "error_type" in r.json(), r.json()


@pytest.mark.parametrize("route, body, status, message, param", BAD)
def test_bad_request(http, route, body, status, message, param):
    check_refusal(http.post(route, content=body, headers={"Content-Type": "application/json"}), route, status,
                  message, param)


def test_wrong_method_and_health_after_bad_requests(http):
    assert http.get("/embed").status_code == 405
    assert http.get("/health").status_code == 200
    assert http.post("/embed", json={"inputs": "still fine"}).status_code == 200


def test_auth(server):
    with httpx.Client(base_url=server.url, timeout=30) as c:
        assert c.get("/health").status_code == 200  # no key needed
        for route, method in (("/v1/embeddings", "POST"), ("/embed", "POST"), ("/info", "GET"),
                              ("/metrics", "GET"), ("/v1/models", "GET")):
            body = {"input": "x", "inputs": "x"}
            for headers in ({}, {"Authorization": "Bearer wrong"}, {"Authorization": KEY}):
                r = c.request(method, route, json=body, headers=headers)
                assert r.status_code == 401, (route, headers)
                msg = r.json()["error"]["message"] if route.startswith("/v1/") else r.json()["error"]
                assert ("requires an API key" in msg) == (not headers)
            assert c.request(method, route, json=body, headers=AUTH).status_code == 200


def test_metrics(http):
    http.post("/embed", json={"inputs": ["m1", "m2"]})
    text = http.get("/metrics").text
    assert re.search(r'tinyminilm_requests_total\{route="/embed",status="200"\} [1-9]', text)
    assert re.search(r'tinyminilm_requests_total\{route="/v1/embeddings",status="400"\} [1-9]', text)
    assert re.search(r"tinyminilm_batch_texts_count [1-9]", text)
    assert re.search(r"tinyminilm_batch_padded_tokens_sum [1-9]", text)
    assert "tinyminilm_queue_texts" in text and "tinyminilm_request_duration_seconds_bucket" in text


# --------------------------------------------------------------------------------------------------------------
# Limits, overload, shutdown: servers of their own
# --------------------------------------------------------------------------------------------------------------

def test_limits_and_overload(model):
    s = Server("--max-concurrent-requests", "2", "--max-client-batch-size", "8", "--max-body-bytes", "65536",
               "--max-batch-tokens", "512")
    try:
        with httpx.Client(base_url=s.url, timeout=120) as c:
            r = c.post("/embed", json={"inputs": ["x"] * 9})
            assert r.status_code == 413 and "9 items" in r.json()["error"] and "8" in r.json()["error"]
            r = c.post("/v1/embeddings", json={"input": ["y" * 70000]})
            assert r.status_code == 413 and "65536 bytes" in r.json()["error"]["message"]
        _body_limit_while_reading(s.port)

        rng = random.Random(5)
        bodies = [{"inputs": _texts(rng, 8, 40, 60)} for _ in range(40)]

        async def main():
            async with httpx.AsyncClient(base_url=s.url, timeout=300) as c:
                return await asyncio.gather(*(c.post("/embed", json=b) for b in bodies))

        responses = asyncio.run(main())
        statuses = [r.status_code for r in responses]
        assert statuses.count(429) > 0 and statuses.count(200) > 0, statuses
        assert set(statuses) <= {200, 429}
        limited = next(r for r in responses if r.status_code == 429)
        assert limited.headers["Retry-After"] == "1" and limited.json()["error_type"] == "Overloaded"
        for r, b in zip(responses, bodies):
            if r.status_code == 200:
                assert np.abs(np.array(r.json(), dtype=np.float32) - model.encode(b["inputs"])).max() <= 1e-6

        with httpx.Client(base_url=s.url, timeout=120) as c:
            assert c.get("/health").status_code == 200
            for b in bodies[:3]:
                assert c.post("/embed", json=b).status_code == 200
    finally:
        assert s.stop() == 0


def _body_limit_while_reading(port: int) -> None:
    """A chunked body that passes the limit and never ends gets its 413 at once: the limit applies while reading."""
    with socket.create_connection(("127.0.0.1", port), timeout=30) as sock:
        sock.sendall(b"POST /embed HTTP/1.1\r\nHost: x\r\nContent-Type: application/json\r\n"
                     b"Transfer-Encoding: chunked\r\n\r\n")
        chunk = b'{"inputs": "' + b"z" * 16000
        for _ in range(6):  # 96 kB, more than the 64 kB limit; no closing chunk is ever sent
            sock.sendall(b"%x\r\n%s\r\n" % (len(chunk), chunk))
            chunk = b"z" * 16000
        reply = b""
        while b"\r\n\r\n" not in reply:
            data = sock.recv(4096)
            assert data, "the server closed the connection without an answer"
            reply += data
    assert reply.startswith(b"HTTP/1.1 413"), reply[:200]


def test_sigterm_finishes_requests_in_flight(model):
    """A long request first holds the batcher (FIFO), so the 20 after it are surely all in flight at SIGTERM."""
    s = Server("--max-batch-tokens", "1024", env={"TINYMINILM_API_KEY": KEY})  # the key from the environment
    rng = random.Random(7)
    bodies = [_texts(rng, 64, 300, 300)] + [_texts(rng, 16, 25, 40) for _ in range(20)]  # 64 x 256 tokens first
    results: list = [None] * len(bodies)

    def call(i: int) -> None:
        try:
            r = httpx.post(s.url + "/embed", json={"inputs": bodies[i], "truncate": True}, headers=AUTH, timeout=300)
            results[i] = (r.status_code, r.json())
        except Exception as e:  # noqa: BLE001 - reported by the assertion below
            results[i] = (None, repr(e))

    def wait_in_flight(n: int) -> None:
        deadline = time.monotonic() + 120
        while time.monotonic() < deadline:  # received, and queued or running
            text = httpx.get(s.url + "/metrics", headers=AUTH).text
            m = re.search(r"^tinyminilm_queue_requests (\S+)", text, re.M)
            if m and float(m.group(1)) >= n:
                return
            time.sleep(0.02)
        raise AssertionError(f"never {n} requests in flight together:\n{s.output()}")

    threads = [threading.Thread(target=call, args=(i,)) for i in range(len(bodies))]
    try:
        assert httpx.get(s.url + "/metrics").status_code == 401  # TINYMINILM_API_KEY is in force
        threads[0].start()
        wait_in_flight(1)
        for t in threads[1:]:
            t.start()
        wait_in_flight(21)
        s.proc.send_signal(signal.SIGTERM)
        for t in threads:
            t.join(300)
        code = s.proc.wait(120)
    finally:
        output = s.output()
        s.stop()
    assert [r[0] for r in results] == [200] * 21, (results, output)
    for body, (_, vectors) in zip(bodies, results):
        assert np.abs(np.array(vectors, dtype=np.float32) - model.encode(body)).max() <= 1e-6
    assert code == 0, output


@pytest.mark.parametrize("flag", ["pooling_mode_max_tokens", "pooling_mode_cls_token", "pooling_mode_mean_tokens",
                                  "pooling_mode_mean_sqrt_len_tokens"])
def test_unnormalized_vectors_follow_the_models_pooling(tmp_path, flag):
    """TEI's normalize=false gives the pooled vector before the Normalize module, for every pooling mode."""
    import tiny_bert
    import tinyminilm
    from tinyminilm.serve.batcher import Batcher, Encode

    model = tinyminilm.load(tiny_bert.make_folder(tmp_path / "m", flag, True))
    texts = ["the cat sat on the mat.", "hello world", "a quick brown fox jumps over the lazy dog!"]
    batcher = Batcher(max_batch_tokens=1024, max_concurrent_requests=4)
    batcher.start()
    try:
        tokens = [len(x) for x in model.token_ids(texts)]
        raw = batcher.submit(Encode(model, raw=True), texts, tokens).result(timeout=60)
    finally:
        batcher.stop(timeout=60)
    norms = np.linalg.norm(raw, axis=1, keepdims=True)
    np.testing.assert_allclose(raw / norms, model.encode(texts), atol=1e-6)  # the same direction as encode's
    from tinyminilm.model import pool  # and each text's own token vectors pooled by the textbook, one by one
    alone = [pool(t[None], np.ones((1, len(t)), np.int64), model.pooling_mode)[0]
             for t in model.encode(texts, output_value="token_embeddings")]
    np.testing.assert_allclose(raw, np.stack(alone), atol=1e-6)
