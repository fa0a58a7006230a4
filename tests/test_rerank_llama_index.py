"""LlamaIndex: TinyMiniLMRerank as a real node postprocessor and in a VectorStoreIndex query engine, against
tinyminilm's own CrossEncoder. The cross-encoders are random ms-marco-MiniLM-L6-v2-shaped folders
(tests/cross_models.py): nothing is downloaded. No LLM but LlamaIndex's MockLLM, and no default model is resolved."""

from __future__ import annotations

import asyncio

import cross_models as cm
import numpy as np
import pytest
from conftest import QUERIES
from llama_index.core import Document, VectorStoreIndex
from llama_index.core.callbacks import CallbackManager, CBEventType, LlamaDebugHandler
from llama_index.core.llms import MockLLM
from llama_index.core.postprocessor.types import BaseNodePostprocessor
from llama_index.core.schema import MetadataMode, NodeWithScore, TextNode

from tinyminilm import ArgumentError, ArgumentTypeError, ConfigError, util
from tinyminilm.integrations.llama_index import TinyMiniLMEmbedding, TinyMiniLMRerank

pytestmark = pytest.mark.usefixtures("no_llama_index_defaults")  # nothing may fall back to OpenAI's models


def make_nodes() -> list[NodeWithScore]:
    """cm.RANK_DOCS as retrieved nodes, with retrieval scores; node 1 has metadata, which the reranker reads too."""
    nodes = [NodeWithScore(node=TextNode(text=text, id_=str(i)), score=1 - i / 10)
             for i, text in enumerate(cm.RANK_DOCS)]
    nodes[1].node.metadata = {"title": "Berlin"}
    return nodes


def test_postprocess_nodes_returns_ranks_order_and_scores(rerank_folder, rerank_reference):
    rerank = TinyMiniLMRerank(top_n=3, model=rerank_folder)
    assert isinstance(rerank, BaseNodePostprocessor) and rerank.class_name() == "TinyMiniLMRerank"
    nodes = make_nodes()
    texts = [n.node.get_content(metadata_mode=MetadataMode.EMBED) for n in nodes]
    assert texts[1] != cm.RANK_DOCS[1] and "Berlin" in texts[1]  # what SentenceTransformerRerank scores
    ranked = rerank_reference.rank(cm.RANK_QUERY, texts)  # the duplicates tie: the earlier one first
    got = rerank.postprocess_nodes(nodes, query_str=cm.RANK_QUERY)
    assert [n.node.node_id for n in got] == [str(r["corpus_id"]) for r in ranked[:3]]
    assert got[0] is nodes[ranked[0]["corpus_id"]]
    by_id = {r["corpus_id"]: r["score"] for r in ranked}  # every node gets its score, not only the top_n
    np.testing.assert_allclose([n.score for n in nodes], [by_id[i] for i in range(len(nodes))], atol=1e-6, rtol=0)
    assert all(type(n.score) is float for n in nodes)
    assert all("retrieval_score" not in n.node.metadata for n in nodes)
    assert rerank.postprocess_nodes([], query_str=cm.RANK_QUERY) == []
    everything = TinyMiniLMRerank(top_n=100, model=rerank_folder).postprocess_nodes(make_nodes(),
                                                                                    query_str=cm.RANK_QUERY)
    assert [n.node.node_id for n in everything] == [str(r["corpus_id"]) for r in ranked]


def test_keep_retrieval_score_async_and_the_callback_event(rerank_folder):
    debug = LlamaDebugHandler()
    rerank = TinyMiniLMRerank(top_n=2, model=rerank_folder, keep_retrieval_score=True,
                              callback_manager=CallbackManager([debug]))
    nodes = make_nodes()
    got = rerank.postprocess_nodes(nodes, query_str=cm.RANK_QUERY)
    assert [n.node.metadata["retrieval_score"] for n in nodes] == [1 - i / 10 for i in range(len(nodes))]
    (start, end), = debug.get_event_pairs(CBEventType.RERANKING)
    assert start.payload["model_name"] == rerank.model and start.payload["top_k"] == 2
    assert end.payload["nodes"] == got
    again = asyncio.run(rerank.apostprocess_nodes(make_nodes(), query_str=cm.RANK_QUERY))
    assert [(n.node.node_id, n.score) for n in again] == [(n.node.node_id, n.score) for n in got]


def test_arguments_are_sentence_transformer_reranks(rerank_folder, tmp_path, monkeypatch):
    monkeypatch.chdir(rerank_folder.parent)
    rerank = TinyMiniLMRerank(3, rerank_folder.name, "cpu", True, max_length=64, batch_size=4, threads=1)
    assert rerank.model == str(rerank_folder.resolve())  # stored absolute: the same model from any cwd
    assert (rerank.top_n, rerank.device, rerank.keep_retrieval_score, rerank.trust_remote_code) == \
        (3, "cpu", True, True)
    assert rerank._model.max_length == 64 and rerank._model.threads == 1
    monkeypatch.chdir(tmp_path)
    again = TinyMiniLMRerank.from_dict(rerank.to_dict())  # LlamaIndex's serialization
    assert again.to_dict() == rerank.to_dict() and again._model is rerank._model


def test_query_engine_retrieves_then_reranks(model_dir, model, docs, rerank_folder, rerank_reference):
    corpus = docs[:200]
    index = VectorStoreIndex.from_documents([Document(text=text, id_=str(i)) for i, text in enumerate(corpus)],
                                            embed_model=TinyMiniLMEmbedding(model_dir))
    engine = index.as_query_engine(llm=MockLLM(), similarity_top_k=10,
                                   node_postprocessors=[TinyMiniLMRerank(top_n=3, model=rerank_folder)])
    hits = util.semantic_search(model.encode(QUERIES[:4]), model.encode(corpus), top_k=10)
    for query, candidates in zip(QUERIES[:4], hits):  # the pipeline by hand: tinyminilm's search, then rank
        ids = [h["corpus_id"] for h in candidates]
        expected = rerank_reference.rank(query, [corpus[i] for i in ids], top_k=3)
        found = engine.query(query).source_nodes
        assert [n.node.ref_doc_id for n in found] == [str(ids[r["corpus_id"]]) for r in expected], query
        np.testing.assert_allclose([n.score for n in found], [r["score"] for r in expected], atol=1e-6, rtol=0)


def test_errors_name_the_argument(rerank_folder, cross_folder, tmp_path):
    with pytest.raises(ConfigError, match="no-such-folder"):
        TinyMiniLMRerank(model=str(tmp_path / "no-such-folder"))
    with pytest.raises(ArgumentError, match="device='cuda'"):
        TinyMiniLMRerank(model=rerank_folder, device="cuda")
    for options, message in ((dict(top_n=0), "top_n must be a positive integer, got 0"),
                             (dict(batch_size=1.5), "batch_size must be a positive integer, got 1.5"),
                             (dict(max_length=1000), "max_length must be an integer from 3 to 512")):
        with pytest.raises(ArgumentError, match=message):
            TinyMiniLMRerank(model=rerank_folder, **options)
    rerank = TinyMiniLMRerank(model=rerank_folder)
    with pytest.raises(ArgumentError, match=r"needs the query: call postprocess_nodes\(nodes, query_str=...\)"):
        rerank.postprocess_nodes(make_nodes())  # a ValueError, as SentenceTransformerRerank's
    with pytest.raises(ArgumentTypeError, match="^query is int, expected str$"):
        rerank.postprocess_nodes(make_nodes(), query_str=3)
    three = TinyMiniLMRerank(model=cross_folder("three-labels"))
    with pytest.raises(ArgumentError, match="rank: this cross-encoder has 3 labels"):
        three.postprocess_nodes(make_nodes(), query_str=cm.RANK_QUERY)
