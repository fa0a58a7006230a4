"""CrossEncoderRerankingEvaluator: how well a cross-encoder reranks each query's candidates (MAP, MRR@k, nDCG@k).

Same constructor, call, result keys, primary_metric and CSV as sentence-transformers 6.2's
(cross_encoder/evaluation/reranking.py). The model is anything with sentence-transformers' CrossEncoder.predict:
`predict(pairs, batch_size=, convert_to_numpy=True, show_progress_bar=)` returning one score per [query, document]
pair (and `prompt_name=` when the evaluator has one). The metrics are tinyminilm.evaluation.metrics': MAP and nDCG
average over tied scores (scikit-learn's definitions, which sentence-transformers calls), MRR takes
sentence-transformers' own order (see metrics.reciprocal_rank).

A sample is {"query": str, "positive": [str] (or one str), and "negative": [str] or "documents": [str]}.
"documents" is a first-stage ranking (best first): its own metrics are reported too, as "base_*", with positives
missing from it ranked last; always_rerank_positives=True reranks every positive, False only those in documents.
A sample with no positive to rerank scores 0 on every metric.
"""

from __future__ import annotations

import logging
from collections.abc import Mapping, Sequence
from typing import Any

import numpy as np

from ..errors import ArgumentError, ArgumentTypeError, check_int, check_texts
from . import metrics as m
from .evaluator import Evaluator, append_csv, call_description, check_optional_str

log = logging.getLogger("tinyminilm")


class CrossEncoderRerankingEvaluator(Evaluator):
    """Reranking quality of a cross-encoder: MAP, MRR@at_k and nDCG@at_k, means over the samples.

    Calling it returns {"map", "mrr@{at_k}", "ndcg@{at_k}"} (+ "base_map", "base_mrr@{at_k}", "base_ndcg@{at_k}"
    when samples give "documents"; keys prefixed "{name}_" when named); primary_metric is "ndcg@{at_k}". With
    output_path and write_csv it appends a row to output_path/CrossEncoderRerankingEvaluator{_name}_results_@{k}.csv.
    mrr_at_k is sentence-transformers' deprecated name for at_k.
    """

    def __init__(self, samples: Sequence[Mapping[str, Any]] | Mapping[Any, Mapping[str, Any]], at_k: int = 10,
                 always_rerank_positives: bool = True, name: str = "", prompt_name: str | None = None,
                 batch_size: int = 64, show_progress_bar: bool = False, write_csv: bool = True,
                 mrr_at_k: int | None = None) -> None:
        super().__init__()
        if isinstance(samples, Mapping):
            samples = list(samples.values())
        self.samples = list(samples)
        if not self.samples:
            raise ArgumentError("samples is empty; give at least one {'query', 'positive', 'negative'} sample")
        if mrr_at_k is not None:
            log.warning(f"The `mrr_at_k` parameter has been deprecated; please use `at_k={mrr_at_k}` instead.")
            at_k = mrr_at_k
        self.at_k = check_int(at_k, "at_k")
        self.always_rerank_positives = bool(always_rerank_positives)
        self.name = check_optional_str(name, "name") or ""
        self.prompt_name = check_optional_str(prompt_name, "prompt_name")
        self.batch_size = check_int(batch_size, "batch_size")
        self.show_progress_bar = bool(show_progress_bar)
        self.write_csv = bool(write_csv)
        self.csv_file = f"CrossEncoderRerankingEvaluator{'_' + self.name if self.name else ''}_results_@{self.at_k}.csv"
        self.csv_headers = ["epoch", "steps", "MAP", f"MRR@{self.at_k}", f"NDCG@{self.at_k}"]
        self.primary_metric = f"ndcg@{self.at_k}"
        self._checked = [self._candidates(i, s) for i, s in enumerate(self.samples)]

    def _candidates(self, i: int, sample: Any) -> tuple[str, list[str], list[int], list[int] | None]:
        """(query, documents to rerank, their relevance 0/1, the base ranking's relevance or None) of samples[i]."""
        where = f"samples[{i}]"
        if not isinstance(sample, Mapping):
            raise ArgumentTypeError(f"{where} must be a dict with 'query', 'positive' and 'negative' or "
                                    f"'documents', got {type(sample).__name__}")
        for key in ("query", "positive"):
            if key not in sample:
                raise ArgumentError(f"{where} has no {key!r} key; each sample needs 'query' and 'positive'")
        if ("negative" in sample) == ("documents" in sample):
            raise ArgumentError(f"{where} must have exactly one of 'negative' and 'documents'")
        query, positive = sample["query"], sample["positive"]
        positive = [positive] if isinstance(positive, str) else positive
        other_key = "negative" if "negative" in sample else "documents"
        other = sample[other_key]
        for key, texts in (("positive", positive), (other_key, other)):
            if isinstance(texts, str) or not isinstance(texts, Sequence):
                raise ArgumentTypeError(f"{where}[{key!r}] must be a list of str, got {type(texts).__name__}")
            check_texts(texts, f"{where}[{key!r}]")
        check_texts([query], f"{where}['query']")
        positive = list(positive)
        if other_key == "documents":
            if not other:
                raise ArgumentError(f"{where}['documents'] is empty; give the first-stage ranking, best first")
            base = [int(doc in positive) for doc in other]
            if sum(base):
                base += [1] * (len(positive) - sum(base))  # positives the first stage missed, ranked last
            if self.always_rerank_positives:
                docs = positive + [doc for doc in other if doc not in positive]
            else:
                docs = list(other)
            relevant = [int(doc in positive) for doc in docs]
        else:
            docs, relevant, base = positive + list(other), [1] * len(positive) + [0] * len(other), None
        for ranking, what in ((relevant, "candidate"), (base, "first-stage document")):
            if ranking is not None and sum(ranking) and len(ranking) < 2:
                raise ArgumentError(f"{where} has only 1 {what}; nDCG needs at least 2 to rank (scikit-learn's "
                                    "ndcg_score, which sentence-transformers calls, refuses 1)")
        return query, docs, relevant, base

    def __call__(self, model: Any, output_path: str | None = None, epoch: int = -1,
                 steps: int = -1) -> dict[str, float]:
        """Evaluate `model` (a cross-encoder): {"{name}_map": ..., "{name}_mrr@k": ..., "{name}_ndcg@k": ...}."""
        log.info(f"CrossEncoderRerankingEvaluator: Evaluating the model on the {self.name} dataset"
                 f"{call_description(epoch, steps)}:")
        base_scores = []
        for _, _, _, base in self._checked:
            if base is not None:  # the first stage's order as descending scores n, n-1, ..., 1
                base_scores.append(self.compute_metrics(base, np.arange(len(base), 0, -1)) if sum(base) else (0, 0, 0))
        pairs = [[query, doc] for query, docs, relevant, _ in self._checked if sum(relevant) for doc in docs]
        predicted = self._predict(model, pairs)  # one call for every sample, as sentence-transformers
        scores, offset = [], 0
        for _, docs, relevant, _ in self._checked:
            if not sum(relevant):
                scores.append((0, 0, 0))
                continue
            scores.append(self.compute_metrics(relevant, predicted[offset:offset + len(docs)]))
            offset += len(docs)

        mean_mrr, mean_ndcg, mean_ap = (float(np.mean(column)) for column in zip(*scores))
        metrics = {"map": mean_ap, f"mrr@{self.at_k}": mean_mrr, f"ndcg@{self.at_k}": mean_ndcg}
        log.info(f"Queries: {len(self.samples)}")
        if base_scores:
            base_mrr, base_ndcg, base_ap = (float(np.mean(column)) for column in zip(*base_scores))
            metrics.update({"base_map": base_ap, f"base_mrr@{self.at_k}": base_mrr,
                            f"base_ndcg@{self.at_k}": base_ndcg})
            log.info(f"MAP: {base_ap * 100:.2f} -> {mean_ap * 100:.2f}; MRR@{self.at_k}: {base_mrr * 100:.2f} -> "
                     f"{mean_mrr * 100:.2f}; NDCG@{self.at_k}: {base_ndcg * 100:.2f} -> {mean_ndcg * 100:.2f}")
        else:
            log.info(f"MAP: {mean_ap * 100:.2f}; MRR@{self.at_k}: {mean_mrr * 100:.2f}; "
                     f"NDCG@{self.at_k}: {mean_ndcg * 100:.2f}")
        metrics = self.prefix_name_to_metrics(metrics, self.name)
        if output_path is not None and self.write_csv:
            append_csv(output_path, self.csv_file, self.csv_headers, [epoch, steps, mean_ap, mean_mrr, mean_ndcg])
        return metrics

    def _predict(self, model: Any, pairs: list[list[str]]) -> np.ndarray:
        """model.predict's scores of all pairs in one call: [n_pairs], in the dtype the model returns."""
        options: dict[str, Any] = {"batch_size": self.batch_size, "show_progress_bar": self.show_progress_bar}
        if self.prompt_name is not None:
            options["prompt_name"] = self.prompt_name
        return predict_scores(model, pairs, **options)

    def compute_metrics(self, y_true: Sequence[int], y_pred: np.ndarray) -> tuple[float, float, float]:
        """(reciprocal rank within at_k, nDCG@at_k, average precision) of one sample's candidates."""
        return (m.reciprocal_rank(y_true, y_pred, self.at_k), m.tie_averaged_ndcg(y_true, y_pred, self.at_k),
                m.average_precision(y_true, y_pred))


def predict_scores(model: Any, pairs: Sequence[Sequence[str]], **options: Any) -> np.ndarray:
    """One finite score per [query, document] pair from a cross-encoder's predict(pairs, convert_to_numpy=True,
    **options): [n_pairs], in the dtype the model returns. ArgumentError if the model gives another shape (more
    than one label) or NaN / infinite scores, which cannot be ranked."""
    if not pairs:
        return np.empty(0, dtype=np.float32)
    out = np.asarray(model.predict([list(p) for p in pairs], convert_to_numpy=True, **options))
    if out.ndim == 2 and out.shape[1] == 1:
        out = out[:, 0]
    if out.shape != (len(pairs),) or out.dtype.kind not in "fiu":
        raise ArgumentError(f"model.predict must return one number per pair ({len(pairs)}), got shape "
                            f"{out.shape} of {out.dtype}; a reranker has one output label")
    if not np.isfinite(out).all():
        raise ArgumentError("model.predict returned NaN or infinite scores; they cannot be ranked")
    return out
