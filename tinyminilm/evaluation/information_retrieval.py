"""InformationRetrievalEvaluator: sentence-transformers' retrieval evaluator, run on a tinyminilm encoder in NumPy.

Same constructor, call, result keys, primary_metric and CSV as sentence-transformers 6.2's
(sentence_transformer/evaluation/information_retrieval.py); the metrics themselves are tinyminilm.evaluation.metrics.

How documents are ranked, as there: each query's documents by score, best first, and equal scores by ascending
corpus id (Python's order of the ids: "D31" < "d20" < "d6"), so the result does not depend on how the corpus is
chunked. The corpus is encoded and scored corpus_chunk_size entries at a time; each chunk's max_k best per query
(max_k, the largest k of any metric) are merged into the running best. Queries without a relevant document are left
out, as there; relevant ids missing from the corpus still count as relevant (recall, nDCG, MAP can't reach 1).
"""

from __future__ import annotations

import json
import logging
from collections.abc import Callable, Mapping, Sequence
from typing import Any

import numpy as np

from ..errors import ArgumentError, ArgumentTypeError, check_int
from ..util import check_similarity_fn_name, semantic_search
from ..util.retrieval import merge_topk
from . import metrics as m
from .evaluator import Evaluator, append_csv, call_description, check_k_list, check_optional_str, write_text

log = logging.getLogger("tinyminilm")

METRICS = ("accuracy@k", "precision@k", "recall@k", "ndcg@k", "mrr@k", "map@k")  # sentence-transformers' key order


class InformationRetrievalEvaluator(Evaluator):
    """Retrieval quality of a sentence encoder: accuracy, precision, recall, MRR, nDCG and MAP at each k.

    queries: {query id: text}; corpus: {corpus id: text}; relevant_docs: {query id: set of relevant corpus ids}.
    The k lists default to sentence-transformers'. score_functions: {name: f(a [n, d], b [m, d]) -> [n, m]}, e.g.
    {"cosine": tinyminilm.util.cos_sim}; None (default) scores with the model's own `similarity`, named by its
    similarity_fn_name, looked up at each call. main_score_function names the function of primary_metric
    ("{name}_{function}_ndcg@{largest ndcg k}"); by default the one with the best nDCG on the first call.
    Queries go through model.encode_query, documents through model.encode_document, with the prompts given
    (query_prompt / corpus_prompt text, or a *_prompt_name of the model's prompts) and truncate_dim.

    Calling it returns {"{name}_{function}_{metric}@{k}": value} (no "{name}_" when name is ""); with output_path
    and write_csv it appends a row to output_path/Information-Retrieval_evaluation{_name}_results.csv, and with
    write_predictions it writes each function's ranked ids to ..._predictions_{function}.jsonl.
    """

    def __init__(self, queries: Mapping[Any, str], corpus: Mapping[Any, str], relevant_docs: Mapping[Any, Any],
                 corpus_chunk_size: int = 50000, mrr_at_k: Sequence[int] = (10,), ndcg_at_k: Sequence[int] = (10,),
                 accuracy_at_k: Sequence[int] = (1, 3, 5, 10), precision_recall_at_k: Sequence[int] = (1, 3, 5, 10),
                 map_at_k: Sequence[int] = (100,), show_progress_bar: bool = False, batch_size: int = 32,
                 name: str = "", write_csv: bool = True, truncate_dim: int | None = None,
                 score_functions: Mapping[str, Callable[[Any, Any], Any]] | None = None,
                 main_score_function: Any = None, query_prompt: str | None = None,
                 query_prompt_name: str | None = None, corpus_prompt: str | None = None,
                 corpus_prompt_name: str | None = None, write_predictions: bool = False) -> None:
        super().__init__()
        _check_data(queries, corpus, relevant_docs)
        self.queries_ids = [qid for qid in queries if qid in relevant_docs and len(relevant_docs[qid]) > 0]
        if not self.queries_ids:
            raise ArgumentError("no query of `queries` has a relevant document in relevant_docs, so there is "
                                "nothing to evaluate; relevant_docs maps query ids to sets of corpus ids")
        if not corpus:
            raise ArgumentError("corpus is empty; give it at least one document")
        self.queries = [queries[qid] for qid in self.queries_ids]
        self.corpus_ids = list(corpus)
        self.corpus = [corpus[cid] for cid in self.corpus_ids]
        try:  # position of each corpus entry in the ascending order of the ids: the tie-break
            by_id = sorted(range(len(self.corpus_ids)), key=self.corpus_ids.__getitem__)
        except TypeError:
            raise ArgumentTypeError("corpus ids must be comparable with each other (all str, or all int) to break "
                                    "ties between equal scores") from None
        self._id_rank = np.empty(len(by_id), dtype=np.int64)
        self._id_rank[by_id] = np.arange(len(by_id))
        self._by_rank = by_id  # rank -> index into corpus_ids

        self.query_prompt = check_optional_str(query_prompt, "query_prompt")
        self.query_prompt_name = check_optional_str(query_prompt_name, "query_prompt_name")
        self.corpus_prompt = check_optional_str(corpus_prompt, "corpus_prompt")
        self.corpus_prompt_name = check_optional_str(corpus_prompt_name, "corpus_prompt_name")
        self.relevant_docs = relevant_docs
        self.corpus_chunk_size = check_int(corpus_chunk_size, "corpus_chunk_size")
        self.mrr_at_k = check_k_list(mrr_at_k, "mrr_at_k")
        self.ndcg_at_k = check_k_list(ndcg_at_k, "ndcg_at_k")
        self.accuracy_at_k = check_k_list(accuracy_at_k, "accuracy_at_k")
        self.precision_recall_at_k = check_k_list(precision_recall_at_k, "precision_recall_at_k")
        self.map_at_k = check_k_list(map_at_k, "map_at_k")
        self.show_progress_bar = bool(show_progress_bar)
        self.batch_size = check_int(batch_size, "batch_size")
        self.name = check_optional_str(name, "name") or ""
        self.write_csv = bool(write_csv)
        self.truncate_dim = None if truncate_dim is None else check_int(truncate_dim, "truncate_dim")
        if score_functions is not None:
            if not isinstance(score_functions, Mapping) or not score_functions:
                raise ArgumentTypeError("score_functions must be a non-empty dict of name -> function, e.g. "
                                        "{'cosine': tinyminilm.util.cos_sim}, or None for the model's similarity")
            for fn_name, fn in score_functions.items():
                if not isinstance(fn_name, str) or not callable(fn):
                    raise ArgumentTypeError(f"score_functions[{fn_name!r}] must be a function under a str name")
        self.score_functions = dict(score_functions) if score_functions else None
        self.score_function_names = sorted(self.score_functions) if self.score_functions else []
        self._score_functions_from_model = score_functions is None
        self.main_score_function = None if not main_score_function else check_similarity_fn_name(main_score_function)
        self.write_predictions = bool(write_predictions)

        suffix = "_" + self.name if self.name else ""
        self.csv_file = f"Information-Retrieval_evaluation{suffix}_results.csv"
        self.predictions_file = f"Information-Retrieval_evaluation{suffix}_predictions.jsonl"
        self.csv_headers = ["epoch", "steps"] + self._csv_columns()

    @property
    def max_k(self) -> int:
        """The largest k of any metric: how many documents are kept per query."""
        return max(max(ks) for ks in (self.mrr_at_k, self.ndcg_at_k, self.accuracy_at_k, self.precision_recall_at_k,
                                      self.map_at_k))

    def _csv_columns(self) -> list[str]:
        cols = []
        for fn in self.score_function_names:
            cols += [f"{fn}-Accuracy@{k}" for k in self.accuracy_at_k]
            cols += [c for k in self.precision_recall_at_k for c in (f"{fn}-Precision@{k}", f"{fn}-Recall@{k}")]
            cols += [f"{fn}-MRR@{k}" for k in self.mrr_at_k]
            cols += [f"{fn}-NDCG@{k}" for k in self.ndcg_at_k]
            cols += [f"{fn}-MAP@{k}" for k in self.map_at_k]
        return cols

    def _csv_values(self, scores: dict[str, dict[str, dict[int, float]]]) -> list[float]:
        values = []
        for fn in self.score_function_names:
            s = scores[fn]
            values += [s["accuracy@k"][k] for k in self.accuracy_at_k]
            values += [v for k in self.precision_recall_at_k for v in (s["precision@k"][k], s["recall@k"][k])]
            values += [s["mrr@k"][k] for k in self.mrr_at_k]
            values += [s["ndcg@k"][k] for k in self.ndcg_at_k]
            values += [s["map@k"][k] for k in self.map_at_k]
        return values

    def __call__(self, model: Any, output_path: str | None = None, epoch: int = -1, steps: int = -1, *,
                 corpus_model: Any = None, corpus_embeddings: Any = None,
                 search_results: dict[str, list[list[dict[str, Any]]]] | None = None) -> dict[str, float]:
        """Evaluate `model`: {"{name}_{function}_{metric}@{k}": value}. corpus_model encodes the documents instead
        of `model`; corpus_embeddings [n_corpus, dim] (corpus order) skips encoding them; search_results, what
        self.search(model, ...) returned, skips the search (so that its hits can be reranked or inspected too
        without encoding the corpus twice)."""
        log.info(f"Information Retrieval Evaluation of the model on the {self.name} dataset"
                 f"{call_description(epoch, steps, self.truncate_dim)}:")
        headers_changed = False
        if self._score_functions_from_model:  # looked up per call: a reused evaluator follows each model's own
            self.score_functions = self._functions(model)  # as sentence-transformers keeps it after a call
            if self.score_function_names != sorted(self.score_functions):
                headers_changed = bool(self.score_function_names)
                self.score_function_names = sorted(self.score_functions)
                self.csv_headers = ["epoch", "steps"] + self._csv_columns()
                self.primary_metric = None

        scores = self.compute_all_metrics(model, corpus_model, corpus_embeddings, output_path,
                                          search_results=search_results)
        if output_path is not None and self.write_csv:
            row = [epoch, steps] + self._csv_values(scores)
            existed = append_csv(output_path, self.csv_file, self.csv_headers, row, lineterminator="\n")
            if existed and headers_changed:
                log.warning(f"{self.csv_file} was written with other score function columns; the row for "
                            f"{self.score_function_names} is under the previous header")

        if not self.primary_metric:
            k = max(self.ndcg_at_k)
            if self.main_score_function is None:  # the best nDCG, the first name in sorted order on a tie
                best = max(self.score_function_names, key=lambda fn: scores[fn]["ndcg@k"][k])
                self.primary_metric = f"{best}_ndcg@{k}"
            else:
                self.primary_metric = f"{self.main_score_function}_ndcg@{k}"
        return self.flatten_metrics(scores)

    def flatten_metrics(self, scores: dict[str, dict[str, dict[int, float]]]) -> dict[str, float]:
        """The result dict of a call, {"{name}_{function}_{metric}@{k}": value}, from compute_all_metrics'
        {function: {metric: {k: value}}} (or compute_metrics' {metric: {k: value}} under a function name)."""
        results = {f"{fn}_{metric.replace('@k', f'@{k}')}": value
                   for fn, by_metric in scores.items() for metric, by_k in by_metric.items()
                   for k, value in by_k.items()}
        return self.prefix_name_to_metrics(results, self.name)

    def compute_all_metrics(self, model: Any, corpus_model: Any = None, corpus_embeddings: Any = None,
                            output_path: str | None = None, *,
                            search_results: dict[str, list[list[dict[str, Any]]]] | None = None,
                            ) -> dict[str, dict[str, dict[int, float]]]:
        """{function: {metric: {k: value}}} for each score function; writes the predictions if asked.
        search_results: what self.search returned for this model, if already computed."""
        functions = self._functions(model)
        results = self.search(model, corpus_model, corpus_embeddings) if search_results is None else search_results
        missing = sorted(set(functions) - set(results))
        if missing:
            raise ArgumentError(f"search_results holds no hits for the score function(s) {missing}; pass what "
                                "self.search(model) returned for this model")
        if self.write_predictions and output_path is not None:
            for fn, per_query in results.items():
                lines = [json.dumps({"query_id": qid, "query": text, "results": hits}) + "\n"
                         for qid, text, hits in zip(self.queries_ids, self.queries, per_query)]
                write_text(output_path, self.predictions_file.replace(".jsonl", f"_{fn}.jsonl"), "".join(lines))
        log.info(f"Queries: {len(self.queries)}")
        log.info(f"Corpus: {len(self.corpus)}")
        scores = {fn: self.compute_metrics(results[fn]) for fn in functions}
        for fn in sorted(functions):
            log.info(f"Score-Function: {fn}")
            for metric in METRICS:
                for k, value in scores[fn][metric].items():
                    log.info(f"{metric.replace('@k', f'@{k}')}: {value:.4f}")
        return scores

    def search(self, model: Any, corpus_model: Any = None,
               corpus_embeddings: Any = None) -> dict[str, list[list[dict[str, Any]]]]:
        """The max_k best documents of every evaluated query (self.queries_ids order), per score function:
        {function: [[{"corpus_id": id, "score": float}, ...] best first, per query]}."""
        corpus_model = model if corpus_model is None else corpus_model
        functions = self._functions(model)
        if corpus_embeddings is not None:
            corpus_embeddings = np.asarray(corpus_embeddings, dtype=np.float32)
            if corpus_embeddings.ndim != 2 or len(corpus_embeddings) != len(self.corpus):
                raise ArgumentError(f"corpus_embeddings must have shape [{len(self.corpus)}, dim] (one row per corpus "
                                    f"entry, in corpus order), got {corpus_embeddings.shape}")
        queries = self._embed(model, self.queries, "query", self.query_prompt_name, self.query_prompt)  # [q, d]
        best: dict[str, tuple[np.ndarray, np.ndarray] | None] = {fn: None for fn in functions}
        starts = range(0, len(self.corpus), self.corpus_chunk_size)
        progress = None
        if self.show_progress_bar:
            from ..progress import progress_bar

            progress = progress_bar(len(starts), "Corpus Chunks", unit="chunk")
        try:
            for start in starts:
                end = min(start + self.corpus_chunk_size, len(self.corpus))
                if corpus_embeddings is None:
                    chunk = self._embed(corpus_model, self.corpus[start:end], "document", self.corpus_prompt_name,
                                        self.corpus_prompt)  # [c, d]
                else:
                    chunk = corpus_embeddings[start:end]
                # semantic_search ranks equal scores by lower index first: handing it the chunk in id order makes
                # that the (-score, corpus id) order (its corpus_id is then a row of chunk[by_id])
                by_id = np.argsort(self._id_rank[start:end])  # [c]
                for fn, score_function in functions.items():
                    found = semantic_search(queries, chunk[by_id], top_k=self.max_k, corpus_chunk_size=len(by_id),
                                            score_function=score_function)
                    scores = np.array([[h["score"] for h in hits] for hits in found], dtype=np.float32)  # [q, k']
                    rows = np.array([[h["corpus_id"] for h in hits] for hits in found], dtype=np.int64)  # [q, k']
                    # already in (-score, id rank) order: semantic_search's own, on the chunk in id order
                    best[fn] = merge_topk(best[fn], scores, self._id_rank[start + by_id[rows]], self.max_k)
                if progress is not None:
                    progress.update(1)
        finally:
            if progress is not None:
                progress.close()
        return {fn: [[{"corpus_id": self.corpus_ids[self._by_rank[rank]], "score": score}
                      for score, rank in zip(row_scores, row_ranks)]
                     for row_scores, row_ranks in zip(scores.tolist(), ranks.tolist())]
                for fn, (scores, ranks) in best.items()}

    def _functions(self, model: Any) -> dict[str, Callable[[Any, Any], Any]]:
        """The score functions given, else `model`'s own similarity under its similarity_fn_name — looked up for the
        model at hand, never from an earlier call, so that a reused evaluator follows each model's own."""
        if self._score_functions_from_model:
            return {model.similarity_fn_name: model.similarity}
        return self.score_functions

    def _embed(self, model: Any, texts: list[str], kind: str, prompt_name: str | None,
               prompt: str | None) -> np.ndarray:
        encode = getattr(model, "encode_query" if kind == "query" else "encode_document", None) or model.encode
        out = encode(texts, prompt_name=prompt_name, prompt=prompt, batch_size=self.batch_size,
                     show_progress_bar=self.show_progress_bar, truncate_dim=self.truncate_dim)
        return np.asarray(out, dtype=np.float32)  # [n, dim]

    def compute_metrics(self, queries_result_list: list[list[dict[str, Any]]]) -> dict[str, dict[int, float]]:
        """{metric: {k: mean over queries}} from each evaluated query's hits [{"corpus_id", "score"}, ...] (in
        self.queries_ids order), re-sorted by score, then corpus id, as sentence-transformers does; so a reranked
        list can be scored too."""
        if len(queries_result_list) != len(self.queries_ids):
            raise ArgumentError(f"queries_result_list must hold one list per evaluated query "
                                f"({len(self.queries_ids)}), got {len(queries_result_list)}")
        hits = np.zeros((len(self.queries_ids), self.max_k), dtype=bool)  # [q, max_k]
        n_relevant = np.empty(len(self.queries_ids), dtype=np.int64)
        for i, (qid, found) in enumerate(zip(self.queries_ids, queries_result_list)):
            relevant = self.relevant_docs[qid]
            best = ranked(found)[:self.max_k]
            hits[i, :len(best)] = [hit["corpus_id"] in relevant for hit in best]
            n_relevant[i] = len(relevant)
        def mean(per_query: np.ndarray) -> float:
            return float(np.mean(per_query))

        return {
            "accuracy@k": {k: mean(m.accuracy_at_k(hits, k)) for k in self.accuracy_at_k},
            "precision@k": {k: mean(m.precision_at_k(hits, k)) for k in self.precision_recall_at_k},
            "recall@k": {k: mean(m.recall_at_k(hits, n_relevant, k)) for k in self.precision_recall_at_k},
            "ndcg@k": {k: mean(m.ndcg_at_k(hits, n_relevant, k)) for k in self.ndcg_at_k},
            "mrr@k": {k: mean(m.mrr_at_k(hits, k)) for k in self.mrr_at_k},
            "map@k": {k: mean(m.map_at_k(hits, n_relevant, k)) for k in self.map_at_k},
        }


def ranked(hits: list[dict[str, Any]]) -> list[dict[str, Any]]:
    """One query's hits [{"corpus_id", "score"}, ...] in the order the metrics see them: by score, best first,
    equal scores by ascending corpus id."""
    return sorted(hits, key=lambda hit: (-hit["score"], hit["corpus_id"]))


def _check_data(queries: Any, corpus: Any, relevant_docs: Any) -> None:
    """Refuse, by name and key, what is not {id: text} (queries, corpus) or {id: set of ids} (relevant_docs)."""
    for arg, value in (("queries", queries), ("corpus", corpus), ("relevant_docs", relevant_docs)):
        if not isinstance(value, Mapping):
            raise ArgumentTypeError(f"{arg} must be a dict of id -> {'text' if arg != 'relevant_docs' else 'ids'}, "
                                    f"got {type(value).__name__}")
    for qid, docs in relevant_docs.items():
        if isinstance(docs, (str, bytes)) or not hasattr(docs, "__contains__") or not hasattr(docs, "__len__"):
            raise ArgumentTypeError(f"relevant_docs[{qid!r}] must be a set of corpus ids, got {type(docs).__name__}")
    for arg, texts in (("queries", queries), ("corpus", corpus)):
        for key, text in texts.items():
            if not isinstance(text, str):
                raise ArgumentTypeError(f"{arg}[{key!r}] is {type(text).__name__}, expected str")
