"""What `tinyminilm evaluate` reports, as library code (no printing): a model's retrieval run on a BEIR folder, the
same run reranked by a cross-encoder, the queries whose right document ranks worst, and the table's columns.

    queries, corpus, relevant_docs = load_beir("my-folder")
    ev = report_evaluator(queries, corpus, relevant_docs)      # sentence-transformers' k lists, plus recall@100
    first = retrieve(ev, model)                                # first.metrics == ev(model); first.hits per query
    second = rerank(ev, first, tinyminilm.CrossEncoder("ms-marco-MiniLM-L6-v2"), top_k=100)
    failures(ev, second, 5)                                    # where the worst queries' right documents land

Every ranking here is the one the metrics see: by score, best first, equal scores by ascending corpus id
(information_retrieval.ranked). A reranked run holds only the top_k documents it rescored, so its metrics at a
cutoff above top_k count those alone; its keys are the first run's.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

from ..errors import ArgumentError, check_int
from .information_retrieval import InformationRetrievalEvaluator, ranked
from .reranking import predict_scores

# sentence-transformers' default k lists, but recall (and precision) also at 100: the ceiling of a reranker that
# rescores the top 100, and of any cutoff a pipeline after retrieval can use
PRECISION_RECALL_AT_K = (1, 3, 5, 10, 100)

# (header, metric key): the columns a retrieval person reads first, in that order. nDCG@10 is BEIR's and MTEB's
# headline score (graded by position, every relevant document counts); MRR@10 says how far down the first right
# document is (what a user who reads the top hit feels); Recall@10 and Recall@100 say how many relevant documents a
# RAG context of 10, or a reranker over 100, gets to see at all; MAP@100 rewards ranking all of them high;
# Accuracy@1 is the share of queries whose top hit is right.
TABLE_COLUMNS = (("nDCG@10", "ndcg@10"), ("MRR@10", "mrr@10"), ("Recall@10", "recall@10"),
                 ("Recall@100", "recall@100"), ("MAP@100", "map@100"), ("Acc@1", "accuracy@1"))


@dataclass
class Run:
    """One row of the report: a model's (or a model and a reranker's) metrics and ranked documents.

    metrics: the evaluator's result dict ({"{name}_{function}_{metric}@{k}": float});
    score_function: the function whose hits these are (the model's similarity_fn_name, e.g. "cosine");
    hits: per evaluated query, in ev.queries_ids order, [{"corpus_id", "score"}, ...] best first;
    depth: how many documents were ranked per query (ev.max_k, or the reranker's top_k).
    """

    metrics: dict[str, float]
    score_function: str
    hits: list[list[dict[str, Any]]]
    depth: int


def report_evaluator(queries: Mapping[Any, str], corpus: Mapping[Any, str], relevant_docs: Mapping[Any, Any],
                     **kwargs: Any) -> InformationRetrievalEvaluator:
    """The InformationRetrievalEvaluator `tinyminilm evaluate` runs: sentence-transformers' defaults with
    precision_recall_at_k=PRECISION_RECALL_AT_K (so the keys are a superset of the defaults'); kwargs as there."""
    return InformationRetrievalEvaluator(queries, corpus, relevant_docs,
                                         **{"precision_recall_at_k": PRECISION_RECALL_AT_K, **kwargs})


def retrieve(ev: InformationRetrievalEvaluator, model: Any) -> Run:
    """Search the corpus with `model` once: the Run with ev(model)'s metrics and each query's ev.max_k best hits."""
    found = ev.search(model)
    metrics = ev(model, search_results=found)
    function = _score_function(ev)
    return Run(metrics, function, found[function], ev.max_k)


def _score_function(ev: InformationRetrievalEvaluator) -> str:
    """The one score function whose hits a Run reports (after a call, which names the model's own)."""
    if ev.main_score_function is not None:
        return ev.main_score_function
    if len(ev.score_function_names) != 1:
        raise ArgumentError(f"the evaluator has the score functions {ev.score_function_names}; give it "
                            "main_score_function= to say whose ranking to report")
    return ev.score_function_names[0]


def check_top_k(ev: InformationRetrievalEvaluator, top_k: Any, name: str = "top_k") -> int:
    """top_k as an int from 1 to ev.max_k (a run keeps no more documents per query), else ArgumentError naming
    `name`."""
    return check_int(top_k, name, 1, ev.max_k, " (the deepest cutoff of the metrics: no more documents are kept)")


def rerank(ev: InformationRetrievalEvaluator, run: Run, cross_encoder: Any, top_k: int = 100, batch_size: int = 32,
           show_progress_bar: bool = False) -> Run:
    """The run's top_k documents of each query rescored by cross_encoder.predict([query, document text]) in one
    call, re-ranked by those scores, and their metrics (ev.compute_metrics, under the run's keys)."""
    top_k = check_top_k(ev, top_k)
    texts = dict(zip(ev.corpus_ids, ev.corpus))
    candidates = [hits[:top_k] for hits in run.hits]
    pairs = [(query, texts[hit["corpus_id"]]) for query, hits in zip(ev.queries, candidates) for hit in hits]
    scores = predict_scores(cross_encoder, pairs, batch_size=check_int(batch_size, "batch_size"),
                            show_progress_bar=show_progress_bar).tolist()  # [n_pairs]
    reranked, start = [], 0
    for hits in candidates:
        reranked.append(ranked([{"corpus_id": hit["corpus_id"], "score": score}
                                for hit, score in zip(hits, scores[start:start + len(hits)])]))
        start += len(hits)
    metrics = ev.flatten_metrics({run.score_function: ev.compute_metrics(reranked)})
    return Run(metrics, run.score_function, reranked, top_k)


def failures(ev: InformationRetrievalEvaluator, run: Run, n: int) -> list[dict[str, Any]]:
    """The n queries whose first relevant document ranks worst in `run` (not within run.depth first, then the
    lowest rank; ties in query order); queries with a relevant document at rank 1 are not failures.

    Each: {"query_id", "query", "rank": rank from 1 of the first relevant document or None when it is not within
    the first run.depth, "depth", "relevant": {"corpus_id", "score" (None when not ranked), "text"},
    "top_hit": {"corpus_id", "score", "text"}}; "relevant" is the first relevant document ranked, else the
    relevant id that sorts first."""
    n = check_int(n, "n")
    texts = dict(zip(ev.corpus_ids, ev.corpus))
    found = []
    for order, (qid, query, hits) in enumerate(zip(ev.queries_ids, ev.queries, run.hits)):
        hits = ranked(hits)[:run.depth]
        relevant = ev.relevant_docs[qid]
        rank = next((r for r, hit in enumerate(hits, 1) if hit["corpus_id"] in relevant), None)
        if rank == 1 or not hits:
            continue
        if rank is None:
            expected = {"corpus_id": min(relevant, key=lambda d: (d not in texts, str(d))), "score": None}
        else:
            expected = dict(hits[rank - 1])
        expected["text"] = texts.get(expected["corpus_id"], "")
        found.append(((rank is not None, -(rank or 0), order),
                      {"query_id": qid, "query": query, "rank": rank, "depth": run.depth, "relevant": expected,
                       "top_hit": {**hits[0], "text": texts[hits[0]["corpus_id"]]}}))
    found.sort(key=lambda item: item[0])
    return [failure for _, failure in found[:n]]


def table_values(ev: InformationRetrievalEvaluator, run: Run) -> list[float]:
    """The run's values of TABLE_COLUMNS, in that order (ev: a report_evaluator, or one with those cutoffs)."""
    prefix = f"{ev.name}_" if ev.name else ""
    keys = [f"{prefix}{run.score_function}_{key}" for _, key in TABLE_COLUMNS]
    missing = [key for key in keys if key not in run.metrics]
    if missing:
        raise ArgumentError(f"the run has no {missing[0]!r}; make the evaluator with report_evaluator(), whose k "
                            "lists give every column of the table")
    return [run.metrics[key] for key in keys]
