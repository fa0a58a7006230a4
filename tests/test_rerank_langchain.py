"""LangChain: TinyMiniLMCrossEncoder in langchain-classic's real CrossEncoderReranker and ContextualCompressionRetriever
(langchain-classic comes with the test extra), against tinyminilm's own CrossEncoder. The cross-encoders are random
ms-marco-MiniLM-L6-v2-shaped folders (tests/cross_models.py): nothing is downloaded."""

from __future__ import annotations

import asyncio

import cross_models as cm
import numpy as np
import pytest
from conftest import QUERIES
from langchain_classic.retrievers import ContextualCompressionRetriever
from langchain_classic.retrievers.document_compressors import CrossEncoderReranker
from langchain_core.cross_encoders import BaseCrossEncoder
from langchain_core.documents import Document
from langchain_core.vectorstores import InMemoryVectorStore

from tinyminilm import ArgumentError, ArgumentTypeError, ConfigError, CrossEncoder, util
from tinyminilm.activations import sigmoid
from tinyminilm.integrations.langchain import TinyMiniLMCrossEncoder, TinyMiniLMEmbeddings

PAIRS = [(cm.BERLIN, cm.POPULATION), (cm.BERLIN, cm.MUSEUMS), ("", "an empty query"), ("an empty document", ""),
         ("Québec 東京 🎉", cm.LONG_D)]


def test_score_is_predict_with_the_models_activation(cross_folder, rerank_folder, rerank_reference):
    model = TinyMiniLMCrossEncoder(rerank_folder)
    assert isinstance(model, BaseCrossEncoder)
    got = model.score(PAIRS)
    assert isinstance(got, list) and all(type(s) is float for s in got)
    np.testing.assert_allclose(got, rerank_reference.predict(PAIRS), atol=1e-6, rtol=0)
    logits = rerank_reference.predict(PAIRS, activation_fn="identity")
    np.testing.assert_allclose(got, logits, atol=1e-6, rtol=0)  # Identity saved: raw logits, as ms-marco's
    sigmoids = TinyMiniLMCrossEncoder(rerank_folder, activation_fn="torch.nn.Sigmoid").score(PAIRS)
    np.testing.assert_allclose(sigmoids, sigmoid(np.array(got)), atol=1e-6, rtol=0)
    no_key = cross_folder("no-key")  # no activation saved: sigmoid, as sentence-transformers picks it
    np.testing.assert_allclose(TinyMiniLMCrossEncoder(no_key).score(PAIRS), CrossEncoder(no_key).predict(PAIRS),
                               atol=1e-6, rtol=0)
    assert model.score([]) == []


def test_a_model_with_several_labels_scores_its_second_label_as_huggingface_cross_encoder(cross_folder):
    three = cross_folder("three-labels")
    np.testing.assert_allclose(TinyMiniLMCrossEncoder(three).score(PAIRS), CrossEncoder(three).predict(PAIRS)[:, 1],
                               atol=1e-6, rtol=0)


def test_cross_encoder_reranker_returns_ranks_order(rerank_folder, rerank_reference):
    documents = [Document(page_content=text, id=str(i), metadata={"i": i}) for i, text in enumerate(cm.RANK_DOCS)]
    model = TinyMiniLMCrossEncoder(rerank_folder)
    ranked = rerank_reference.rank(cm.RANK_QUERY, cm.RANK_DOCS)  # the duplicates tie: the earlier one first
    for top_n in (3, len(documents), 100):
        reranker = CrossEncoderReranker(model=model, top_n=top_n)
        got = reranker.compress_documents(documents, cm.RANK_QUERY)
        assert [d.id for d in got] == [str(r["corpus_id"]) for r in ranked[:top_n]]
        assert got[0] is documents[ranked[0]["corpus_id"]]  # the documents themselves, metadata and all
    scores = model.score([(cm.RANK_QUERY, d.page_content) for d in documents])
    np.testing.assert_allclose([scores[r["corpus_id"]] for r in ranked], [r["score"] for r in ranked], atol=1e-6,
                               rtol=0)
    assert CrossEncoderReranker(model=model).compress_documents([], cm.RANK_QUERY) == []
    reranker = CrossEncoderReranker(model=model, top_n=3)
    assert asyncio.run(reranker.acompress_documents(documents, cm.RANK_QUERY)) == \
        reranker.compress_documents(documents, cm.RANK_QUERY)


def test_retrieve_then_rerank_pipeline(model_dir, model, docs, rerank_folder, rerank_reference):
    corpus = docs[:200]
    store = InMemoryVectorStore(embedding=TinyMiniLMEmbeddings(model_dir))
    store.add_texts(corpus, ids=[str(i) for i in range(len(corpus))])
    retriever = ContextualCompressionRetriever(
        base_compressor=CrossEncoderReranker(model=TinyMiniLMCrossEncoder(rerank_folder), top_n=3),
        base_retriever=store.as_retriever(search_kwargs={"k": 10}))
    hits = util.semantic_search(model.encode(QUERIES[:4]), model.encode(corpus), top_k=10)
    for query, candidates in zip(QUERIES[:4], hits):  # the pipeline by hand: tinyminilm's search, then rank
        ids = [h["corpus_id"] for h in candidates]
        expected = [ids[r["corpus_id"]] for r in rerank_reference.rank(query, [corpus[i] for i in ids], top_k=3)]
        found = retriever.invoke(query)
        assert [d.id for d in found] == [str(i) for i in expected], query
        assert [d.page_content for d in found] == [corpus[i] for i in expected]


def test_errors_name_the_argument(rerank_folder, tmp_path):
    with pytest.raises(ConfigError, match="no-such-folder"):
        TinyMiniLMCrossEncoder(str(tmp_path / "no-such-folder"))
    with pytest.raises(ConfigError, match="config.json"):
        TinyMiniLMCrossEncoder(tmp_path)  # a folder that is no model
    with pytest.raises(ArgumentError, match="a cross-encoder has no default model"):
        TinyMiniLMCrossEncoder(None)
    for options, message in ((dict(batch_size=0), "batch_size must be a positive integer, got 0"),
                             (dict(threads=1.5), "threads must be a positive integer, got 1.5"),
                             (dict(max_length=2), "max_length must be an integer from 3 to 512"),
                             (dict(activation_fn="relu"), "relu")):
        with pytest.raises(ArgumentError, match=message):
            TinyMiniLMCrossEncoder(rerank_folder, **options)
    model = TinyMiniLMCrossEncoder(rerank_folder)
    reranker = CrossEncoderReranker(model=model, top_n=2)
    with pytest.raises(ArgumentTypeError, match=r"^inputs\[0\]\[0\] is NoneType, expected str$"):
        reranker.compress_documents([Document(page_content="a"), Document(page_content="b")], None)  # no query
    with pytest.raises(ArgumentTypeError, match=r"text_pairs must be a list of \(text, text\) pairs, got one pair"):
        model.score(("a query", "a document"))
    with pytest.raises(ArgumentError, match=r"inputs\[1\] has 3 item\(s\)"):
        model.score([("q", "d"), ("q", "d", "e")])
