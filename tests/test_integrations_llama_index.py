"""LlamaIndex: TinyMiniLMEmbedding in a real VectorStoreIndex, with no LLM (llama-index-core comes with the test
extra). Nothing may fall back to LlamaIndex's defaults, which are OpenAI's models."""

from __future__ import annotations

import asyncio
from pathlib import Path

import numpy as np
import pytest
from conftest import PROMPT_DOCS, QUERIES, run_beside_ticker
from llama_index.core import Document, VectorStoreIndex
from llama_index.core.base.embeddings.base import BaseEmbedding

import tinyminilm
from tinyminilm.integrations.llama_index import TinyMiniLMEmbedding


@pytest.fixture(scope="module")
def embed_model(model_dir) -> TinyMiniLMEmbedding:
    return TinyMiniLMEmbedding(model_dir)


pytestmark = pytest.mark.usefixtures("no_llama_index_defaults")  # nothing may fall back to OpenAI's models


def test_vectors_are_encodes(embed_model, model, odd_texts):
    assert isinstance(embed_model, BaseEmbedding) and embed_model.class_name() == "TinyMiniLMEmbedding"
    expected = model.encode(odd_texts)
    np.testing.assert_allclose(embed_model.get_text_embedding_batch(odd_texts), expected, atol=1e-6, rtol=0)
    np.testing.assert_allclose(embed_model.get_text_embedding(odd_texts[2]), expected[2], atol=1e-6, rtol=0)
    np.testing.assert_allclose(embed_model.get_query_embedding(""), expected[0], atol=1e-6, rtol=0)
    assert embed_model.model == str(Path(embed_model.model).resolve()) == embed_model.model_name


def test_options_are_encodes(model_dir, model):
    texts = ["Zwei Männer stehen am Fluss.", "", "A short one"]
    emb = TinyMiniLMEmbedding(model_dir, batch_size=2, truncate_dim=16, normalize_embeddings=True,
                              embed_batch_size=2)  # LlamaIndex hands over 2 texts per call
    assert emb.truncate_dim == 16 and emb.embed_batch_size == 2  # the options are pydantic fields too
    assert TinyMiniLMEmbedding.from_dict(emb.to_dict()).to_dict() == emb.to_dict()  # LlamaIndex's serialization
    np.testing.assert_allclose(emb.get_text_embedding_batch(texts),
                               model.encode(texts, truncate_dim=16, normalize_embeddings=True), atol=1e-6, rtol=0)


def test_bad_input_raises_encodes_errors(model_dir, model):
    emb = TinyMiniLMEmbedding(model_dir, embed_batch_size=2)  # the bad item lies in LlamaIndex's second piece
    for bad in (["ok", "fine", None], ["ok", "fine", 3], ["a", "b", b"bytes"]):
        with pytest.raises(TypeError) as ours:
            emb.get_text_embedding_batch(bad)
        with pytest.raises(TypeError) as theirs:
            model.encode(bad)
        assert str(ours.value) == str(theirs.value)  # texts[2]: the index in the whole list
        with pytest.raises(TypeError, match=r"texts\[2\]"):
            asyncio.run(emb.aget_text_embedding_batch(bad))
    with pytest.raises(TypeError, match=r"^query is NoneType, expected str$"):
        emb.get_query_embedding(None)


def test_vector_store_index_retrieves_as_semantic_search(embed_model, docs, expected_hits):
    documents = [Document(text=text, id_=str(i)) for i, text in enumerate(docs)]
    index = VectorStoreIndex.from_documents(documents, embed_model=embed_model)  # default splitter, no LLM
    retriever = index.as_retriever(similarity_top_k=5)
    for query, hits in zip(QUERIES, expected_hits):
        found = retriever.retrieve(query)
        assert [n.node.ref_doc_id for n in found] == [str(h["corpus_id"]) for h in hits], query
        assert [n.node.get_content() for n in found] == [docs[h["corpus_id"]] for h in hits]
        np.testing.assert_allclose([n.score for n in found], [h["score"] for h in hits], atol=1e-5, rtol=0)


def test_async_methods_give_the_same_vectors_without_blocking_the_loop(embed_model, docs):
    texts = docs[:200]
    batch = run_beside_ticker(lambda: embed_model.aget_text_embedding_batch(texts), min_ticks=5)
    assert batch == embed_model.get_text_embedding_batch(texts)  # the same floats, bit for bit
    one = run_beside_ticker(lambda: embed_model.aget_text_embedding(texts[1]))
    query = run_beside_ticker(lambda: embed_model.aget_query_embedding(texts[2]))
    assert one == embed_model.get_text_embedding(texts[1]) and query == embed_model.get_query_embedding(texts[2])
    np.testing.assert_allclose([one, query], [batch[1], batch[2]], atol=1e-6, rtol=0)  # alone vs in a batch


def test_queries_and_documents_get_the_models_prompts(e5_small):
    """e5-small-v2's shape: queries by encode_query ("query: "), texts by encode_document ("passage: "). (Its vectors
    are not normalized by the model and have norms ~20: compared normalized, as a batch and one text alone differ by
    float32 rounding of the norm's size.)"""
    model, embed_model = tinyminilm.load(e5_small), TinyMiniLMEmbedding(e5_small, normalize_embeddings=True)
    docs = model.encode_document(PROMPT_DOCS, normalize_embeddings=True)
    np.testing.assert_allclose(embed_model.get_text_embedding_batch(PROMPT_DOCS), docs, atol=1e-6, rtol=0)
    np.testing.assert_allclose(embed_model.get_text_embedding(PROMPT_DOCS[1]), docs[1], atol=1e-6, rtol=0)
    np.testing.assert_allclose(asyncio.run(embed_model.aget_text_embedding_batch(PROMPT_DOCS)), docs, atol=1e-6,
                               rtol=0)
    query = model.encode_query("a kitten", normalize_embeddings=True)
    np.testing.assert_allclose(embed_model.get_query_embedding("a kitten"), query, atol=1e-6, rtol=0)
    np.testing.assert_allclose(asyncio.run(embed_model.aget_query_embedding("a kitten")), query, atol=1e-6, rtol=0)
    assert not np.allclose(query, model.encode("a kitten", normalize_embeddings=True), atol=1e-3)  # the prompt
