"""Chroma: TinyMiniLMEmbeddingFunction in real in-memory and persistent Chroma clients.

chromadb comes with the test extra. No test here may reach the network: telemetry is off in every client, and
Chroma's own default function (which would download an ONNX model) is made to fail loudly should anything call it.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
import textwrap
from pathlib import Path

import chromadb
import numpy as np
import pytest
from chromadb.config import Settings
from chromadb.utils.embedding_functions.onnx_mini_lm_l6_v2 import ONNXMiniLM_L6_V2
from conftest import PROMPT_DOCS, QUERIES

import tinyminilm
from tinyminilm.integrations.chroma import TinyMiniLMEmbeddingFunction, reembed

SETTINGS = dict(anonymized_telemetry=False, allow_reset=True)
# HNSW search is approximate. With Chroma's default ef_search (100), 8 of 30 builds of this 1,000-text index missed a
# true top-5 hit of the out-of-domain query "why is the sky blue" (the other queries: always exact); ef_search=1000
# (>= the collection's size) gave the exact top 5 in 30 of 30 builds. The tests ask for exact results.
EXACT = {"hnsw": {"ef_search": 1000}}


@pytest.fixture(autouse=True)
def no_chroma_default_model(monkeypatch):
    """Chroma's default function downloads an ONNX model on first use: make any such attempt fail the test."""
    def refuse(self):
        raise AssertionError("Chroma's default embedding function was called: it would download its ONNX model")
    monkeypatch.setattr(ONNXMiniLM_L6_V2, "_download_model_if_not_exists", refuse)


@pytest.fixture(scope="module")
def ef(model_dir) -> TinyMiniLMEmbeddingFunction:
    return TinyMiniLMEmbeddingFunction(model_dir)


def assert_same_hits(result: dict, expected: list[list[dict]]) -> None:
    """Chroma's query result (cosine space: distance = 1 - cos) against util.semantic_search's hits."""
    for q, hits in enumerate(expected):
        assert result["ids"][q] == [str(h["corpus_id"]) for h in hits], QUERIES[q]
        np.testing.assert_allclose(result["distances"][q], [1 - h["score"] for h in hits], atol=1e-5, rtol=0)


def fill(collection, docs: list[str]) -> None:
    collection.add(ids=[str(i) for i in range(len(docs))], documents=docs,
                   metadatas=[{"line": 4 * i} for i in range(len(docs))])


def test_vectors_are_encodes(ef, model, odd_texts):
    got = np.stack(ef(odd_texts))
    assert got.dtype == np.float32 and got.shape == (len(odd_texts), 384)
    np.testing.assert_allclose(got, model.encode(odd_texts), atol=1e-6, rtol=0)
    np.testing.assert_allclose(np.stack(ef.embed_query(["", "Québec"])), model.encode(["", "Québec"]), atol=1e-6)


def test_options_are_encodes(model_dir, model):
    texts = ["Zwei Männer stehen am Fluss.", "A short one", ""]
    ef = TinyMiniLMEmbeddingFunction(model_dir, batch_size=2, truncate_dim=64, normalize_embeddings=True)
    got = np.stack(ef(texts))
    assert got.shape == (3, 64)
    np.testing.assert_allclose(got, model.encode(texts, truncate_dim=64, normalize_embeddings=True), atol=1e-6)


def test_bad_input_raises_encodes_errors(ef, model):
    for bad in (["ok", None], ["ok", "fine", 3], [b"bytes"], ["\ud800"]):
        with pytest.raises((TypeError, ValueError)) as ours:
            ef(bad)
        with pytest.raises((TypeError, ValueError)) as theirs:
            model.encode(bad)
        assert type(ours.value) is type(theirs.value) and str(ours.value) == str(theirs.value)
    with pytest.raises(TypeError, match=r"texts\[1\] is NoneType, expected str"):
        ef(["ok", None])


def test_config_round_trip_and_checks(ef, model_dir):
    config = ef.get_config()
    assert config == {"model": str(Path(model_dir).resolve()), "batch_size": 32, "normalize_embeddings": False,
                      "truncate_dim": None, "threads": None}
    assert json.loads(json.dumps(config)) == config
    again = TinyMiniLMEmbeddingFunction.build_from_config(config)
    assert again.get_config() == config and not again.is_legacy()
    assert again.options.encoder() is ef.options.encoder()  # one loaded model per folder in a process
    assert TinyMiniLMEmbeddingFunction(model_dir, threads=1).options.encoder() is not ef.options.encoder()
    assert ef.name() == "tinyminilm" and ef.default_space() == "cosine"
    assert set(ef.supported_spaces()) == {"cosine", "l2", "ip"}
    with pytest.raises(ValueError, match="unknown keys.*'device'"):
        TinyMiniLMEmbeddingFunction.validate_config({**config, "device": "cpu"})
    with pytest.raises(ValueError, match="batch_size must be a positive integer"):
        TinyMiniLMEmbeddingFunction.validate_config({**config, "batch_size": 0})
    ef.validate_config_update(config, {**config, "model": "/elsewhere", "batch_size": 8})  # allowed
    with pytest.raises(ValueError, match="truncate_dim cannot change"):
        ef.validate_config_update(config, {**config, "truncate_dim": 128})
    with pytest.raises(ValueError, match="truncate_dim must be an integer from 1 to 384"):
        TinyMiniLMEmbeddingFunction(model_dir, truncate_dim=385)


def test_a_hub_id_round_trips_and_another_hub_model_is_refused(ef, tmp_path, monkeypatch):
    """A model named by Hub id is stored as that id (not as the cache's snapshot folder), so a collection reopened
    on another machine finds it in that machine's Hugging Face cache; a config update may move a folder, but not
    swap in another Hub model, whose vectors would not compare with the stored ones."""
    import tiny_bert
    from model_fixtures import hf_cache

    monkeypatch.setenv("HF_HUB_CACHE", str(tmp_path / "hf"))
    monkeypatch.setenv("HF_HUB_OFFLINE", "1")
    snapshot = hf_cache(tmp_path / "hf", "acme/tiny-bert",
                        tiny_bert.make_folder(tmp_path / "m", "pooling_mode_mean_tokens", True))
    hub_ef = TinyMiniLMEmbeddingFunction("acme/tiny-bert")
    config = hub_ef.get_config()
    assert config["model"] == "acme/tiny-bert" and json.loads(json.dumps(config)) == config
    again = TinyMiniLMEmbeddingFunction.build_from_config(config)
    assert again.options.encoder().source.folder == snapshot and again.get_config() == config
    np.testing.assert_array_equal(again(["a cat"])[0], hub_ef(["a cat"])[0])
    hub_ef.validate_config_update(config, {**config, "batch_size": 8})  # allowed
    for other in ("acme/other-bert", None):
        with pytest.raises(ValueError, match=f"model cannot change from 'acme/tiny-bert' to {other!r}"):
            hub_ef.validate_config_update(config, {**config, "model": other})
    default = ef.get_config()
    with pytest.raises(ValueError, match="model cannot change"):
        ef.validate_config_update(default, {**default, "model": "acme/tiny-bert"})


def test_in_memory_collection_ranks_as_semantic_search(ef, docs, doc_vectors, expected_hits):
    client = chromadb.EphemeralClient(settings=Settings(**SETTINGS))
    collection = client.create_collection("docs_memory", embedding_function=ef, configuration=EXACT)
    assert collection.configuration["hnsw"]["space"] == "cosine"  # from default_space()
    fill(collection, docs)
    stored = collection.get(ids=[str(i) for i in range(len(docs))], include=["embeddings"])
    np.testing.assert_allclose(np.asarray(stored["embeddings"]), doc_vectors, atol=1e-6, rtol=0)
    assert_same_hits(collection.query(query_texts=QUERIES, n_results=5), expected_hits)
    client.delete_collection("docs_memory")


def test_persistent_collection_reopens_in_a_fresh_process(ef, docs, expected_hits, tmp_path):
    path = tmp_path / "chroma"
    client = chromadb.PersistentClient(path=str(path), settings=Settings(**SETTINGS))
    collection = client.create_collection("docs", embedding_function=ef, configuration=EXACT)
    fill(collection, docs)
    assert_same_hits(collection.query(query_texts=QUERIES, n_results=5), expected_hits)
    del collection, client

    # A new interpreter: no function is passed; Chroma rebuilds it from the stored name and config, which only
    # needs this module imported (that registers "tinyminilm"). Chroma's default must never run there either.
    script = textwrap.dedent(f"""
        import json, sys
        import chromadb
        from chromadb.config import Settings
        from chromadb.utils.embedding_functions.onnx_mini_lm_l6_v2 import ONNXMiniLM_L6_V2
        import tinyminilm.integrations.chroma

        def refuse(self):
            raise AssertionError("Chroma's default embedding function was called")
        ONNXMiniLM_L6_V2._download_model_if_not_exists = refuse
        client = chromadb.PersistentClient(path=sys.argv[1], settings=Settings(anonymized_telemetry=False))
        collection = client.get_collection("docs")
        function = collection.configuration["embedding_function"]
        result = collection.query(query_texts={QUERIES!r}, n_results=5)
        print(json.dumps({{"function": type(function).__name__, "config": function.get_config(),
                          "count": collection.count(), "ids": result["ids"], "distances": result["distances"],
                          "metadata": result["metadatas"][0][0]}}))
    """)
    env = {**os.environ, "ANONYMIZED_TELEMETRY": "False"}
    done = subprocess.run([sys.executable, "-c", script, str(path)], capture_output=True, text=True, timeout=240,
                          env=env)
    assert done.returncode == 0, done.stderr[-3000:]
    reopened = json.loads(done.stdout.strip().splitlines()[-1])
    assert reopened["function"] == "TinyMiniLMEmbeddingFunction"
    assert reopened["config"] == ef.get_config() and reopened["count"] == len(docs)
    assert reopened["metadata"] == {"line": 4 * int(reopened["ids"][0][0])}
    assert_same_hits(reopened, expected_hits)


def test_a_default_embedded_collection_is_re_embedded_by_copying(ef, model, docs):
    """Chroma refuses our function on a collection made with its default; `reembed` copies into a new one."""
    client = chromadb.EphemeralClient(settings=Settings(**SETTINGS))
    old = client.create_collection("old")  # Chroma's default function; vectors given here, so it never runs
    n = 120
    stand_in = np.random.default_rng(0).standard_normal((n, 384)).astype(np.float32)
    old.add(ids=[f"d{i}" for i in range(n)], documents=docs[:n], embeddings=stand_in,
            metadatas=[{"n": i} for i in range(n)])
    with pytest.raises(ValueError, match="Embedding function conflict"):
        client.get_collection("old", embedding_function=ef)

    new = client.create_collection("new", embedding_function=ef)
    assert reembed(old, new, batch_size=50) == n
    got = new.get(include=["documents", "metadatas", "embeddings"])
    order = np.argsort([int(i[1:]) for i in got["ids"]])
    assert [got["documents"][j] for j in order] == docs[:n]
    assert [got["metadatas"][j] for j in order] == [{"n": i} for i in range(n)]
    np.testing.assert_allclose(np.asarray(got["embeddings"])[order], model.encode(docs[:n]), atol=1e-6, rtol=0)

    old.add(ids=["no-text"], embeddings=stand_in[:1])
    with pytest.raises(ValueError, match="'no-text' has no document"):
        reembed(old, client.create_collection("newer", embedding_function=ef))
    for name in ("old", "new", "newer"):
        client.delete_collection(name)


def test_queries_and_documents_get_the_models_prompts(e5_small):
    """e5-small-v2's shape: documents by encode_document ("passage: "), query_texts by encode_query ("query: ")."""
    model, ef = tinyminilm.load(e5_small), TinyMiniLMEmbeddingFunction(e5_small, normalize_embeddings=True)
    docs = model.encode_document(PROMPT_DOCS, normalize_embeddings=True)
    query = model.encode_query(["a kitten"], normalize_embeddings=True)
    np.testing.assert_allclose(np.stack(ef(PROMPT_DOCS)), docs, atol=1e-6, rtol=0)
    np.testing.assert_allclose(np.stack(ef.embed_query(["a kitten"])), query, atol=1e-6, rtol=0)
    assert not np.allclose(query, model.encode(["a kitten"], normalize_embeddings=True), atol=1e-3)
    client = chromadb.EphemeralClient(Settings(**SETTINGS))
    collection = client.create_collection("prompts", embedding_function=ef, configuration=EXACT)
    collection.add(ids=[str(i) for i in range(len(PROMPT_DOCS))], documents=PROMPT_DOCS)
    found = collection.query(query_texts=["a kitten"], n_results=len(PROMPT_DOCS), include=["distances"])
    cosine = {str(i): float(docs[i] @ query[0]) for i in range(len(PROMPT_DOCS))}
    np.testing.assert_allclose(found["distances"][0], [1 - cosine[i] for i in found["ids"][0]], atol=1e-5, rtol=0)
    client.delete_collection("prompts")
