"""LangChain: TinyMiniLMEmbeddings in langchain-core's real InMemoryVectorStore (langchain-core comes with the test
extra)."""

from __future__ import annotations

import asyncio

import numpy as np
import pytest
from conftest import PROMPT_DOCS, QUERIES, run_beside_ticker
from langchain_core.embeddings import Embeddings
from langchain_core.vectorstores import InMemoryVectorStore

import tinyminilm
from tinyminilm.integrations.langchain import TinyMiniLMEmbeddings


@pytest.fixture(scope="module")
def embeddings(model_dir) -> TinyMiniLMEmbeddings:
    return TinyMiniLMEmbeddings(model_dir)


def test_vectors_are_encodes(embeddings, model, odd_texts):
    assert isinstance(embeddings, Embeddings)
    got = embeddings.embed_documents(odd_texts)
    assert isinstance(got, list) and all(isinstance(v, list) and isinstance(v[0], float) for v in got)
    np.testing.assert_allclose(np.array(got), model.encode(odd_texts), atol=1e-6, rtol=0)
    for text in ("", "Québec 東京 🎉"):
        np.testing.assert_allclose(embeddings.embed_query(text), model.encode(text), atol=1e-6, rtol=0)
    assert embeddings.embed_documents([]) == []


def test_options_are_encodes(model_dir, model):
    texts = ["Zwei Männer stehen am Fluss.", "", "A short one"]
    emb = TinyMiniLMEmbeddings(model_dir, batch_size=1, truncate_dim=32, normalize_embeddings=True, threads=1)
    np.testing.assert_allclose(emb.embed_documents(texts),
                               model.encode(texts, truncate_dim=32, normalize_embeddings=True), atol=1e-6, rtol=0)


def test_bad_input_raises_encodes_errors(embeddings, model):
    for bad in (["ok", None], ["ok", "fine", 3], [b"bytes"], ["\ud800"], None):
        with pytest.raises((TypeError, ValueError)) as ours:
            embeddings.embed_documents(bad)
        with pytest.raises((TypeError, ValueError)) as theirs:
            model.encode(bad)
        assert type(ours.value) is type(theirs.value) and str(ours.value) == str(theirs.value)
    with pytest.raises(TypeError, match=r"^text is NoneType, expected str$"):
        embeddings.embed_query(None)
    with pytest.raises(TypeError, match=r"texts must be a list of str, got a single str"):
        embeddings.embed_documents("one text")  # would otherwise embed it as one vector, not a list of them


def test_in_memory_vector_store_ranks_as_semantic_search(embeddings, docs, expected_hits):
    store = InMemoryVectorStore(embedding=embeddings)
    store.add_texts(docs, ids=[str(i) for i in range(len(docs))])
    for query, hits in zip(QUERIES, expected_hits):
        found = store.similarity_search_with_score(query, k=5)
        assert [d.id for d, _ in found] == [str(h["corpus_id"]) for h in hits], query
        assert [d.page_content for d, _ in found] == [docs[h["corpus_id"]] for h in hits]
        np.testing.assert_allclose([s for _, s in found], [h["score"] for h in hits], atol=1e-5, rtol=0)


def test_async_methods_give_the_same_vectors_without_blocking_the_loop(embeddings, docs):
    texts = docs[:200]
    vectors = run_beside_ticker(lambda: embeddings.aembed_documents(texts), min_ticks=5)
    assert vectors == embeddings.embed_documents(texts)  # the same floats, bit for bit
    assert run_beside_ticker(lambda: embeddings.aembed_query(texts[0])) == embeddings.embed_query(texts[0])


def test_queries_and_documents_get_the_models_prompts(e5_small):
    """e5-small-v2's shape: queries by encode_query ("query: "), documents by encode_document ("passage: ")
    (compared normalized: the model's own vectors have norms ~20)."""
    model, emb = tinyminilm.load(e5_small), TinyMiniLMEmbeddings(e5_small, normalize_embeddings=True)
    docs = model.encode_document(PROMPT_DOCS, normalize_embeddings=True)
    np.testing.assert_allclose(emb.embed_documents(PROMPT_DOCS), docs, atol=1e-6, rtol=0)
    np.testing.assert_allclose(asyncio.run(emb.aembed_documents(PROMPT_DOCS)), docs, atol=1e-6, rtol=0)
    for query in ("a kitten", ""):
        want = model.encode_query(query, normalize_embeddings=True)
        np.testing.assert_allclose(emb.embed_query(query), want, atol=1e-6, rtol=0)
        np.testing.assert_allclose(asyncio.run(emb.aembed_query(query)), want, atol=1e-6, rtol=0)
        assert not np.allclose(want, model.encode(query, normalize_embeddings=True), atol=1e-3)  # the prompt
