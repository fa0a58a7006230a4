"""The metrics of sentence-transformers' evaluators, in NumPy: one function per metric, no model, no I/O.

Retrieval, as InformationRetrievalEvaluator.compute_metrics computes them (sentence-transformers 6.2,
sentence_transformer/evaluation/information_retrieval.py). Each takes
    hits        bool [n_queries, n_ranked]: hits[i, r] says whether the document ranked r (from 0) for query i is
                relevant; the ranking is by score, best first, equal scores by ascending corpus id
    n_relevant  int [n_queries]: how many documents the qrels call relevant to query i, whether or not they are in
                the corpus (so recall, nDCG and MAP count relevant documents that were never retrieved)
and returns one float64 value per query [n_queries]; the evaluators report their mean.
    accuracy@k   1 if a relevant document is in the top k, else 0
    precision@k  relevant documents in the top k / k            (k itself, even when fewer than k were ranked)
    recall@k     relevant documents in the top k / n_relevant
    mrr@k        1 / (rank of the first relevant document, from 1) if it is in the top k, else 0
    ndcg@k       DCG / ideal DCG, binary gains, discount 1 / log2(rank + 1) for ranks 1..k; the ideal ranking puts
                 all n_relevant documents first
    map@k        sum of precision@r over the ranks r <= k that hold a relevant document / min(k, n_relevant)

Reranking, as CrossEncoderRerankingEvaluator.compute_metrics computes them (cross_encoder/evaluation/reranking.py,
through scikit-learn's ndcg_score and average_precision_score), for one query's candidates: relevant bool [n],
scores [n]. Ties in the scores are averaged over, as scikit-learn does, except in reciprocal_rank (see there).

Correlation, as scipy.stats.pearsonr and spearmanr (EmbeddingSimilarityEvaluator): Spearman's rho is Pearson's r of
the average ranks (tied values share the mean of the ranks they span).
"""

from __future__ import annotations

from typing import Any

import numpy as np

from ..errors import ArgumentError


def _hits_at(hits: np.ndarray, k: int) -> np.ndarray:
    return np.asarray(hits, dtype=bool)[:, :k]  # [n_queries, min(k, n_ranked)]


def discounts(n: int) -> np.ndarray:
    """DCG's position discounts 1 / log2(rank + 1) for ranks 1..n: float64 [n]."""
    return 1.0 / np.log2(np.arange(n) + 2.0)


# --------------------------------------------------------------------------------------------------------------
# Retrieval: hits bool [n_queries, n_ranked], n_relevant int [n_queries] -> float64 [n_queries]
# --------------------------------------------------------------------------------------------------------------

def accuracy_at_k(hits: np.ndarray, k: int) -> np.ndarray:
    """1.0 where a relevant document is among the first k, else 0.0: float64 [n_queries]."""
    return _hits_at(hits, k).any(axis=1).astype(np.float64)


def precision_at_k(hits: np.ndarray, k: int) -> np.ndarray:
    """Relevant documents among the first k, divided by k: float64 [n_queries]."""
    return _hits_at(hits, k).sum(axis=1) / float(k)


def recall_at_k(hits: np.ndarray, n_relevant: np.ndarray, k: int) -> np.ndarray:
    """Relevant documents among the first k, divided by the number of relevant documents: float64 [n_queries]."""
    return _hits_at(hits, k).sum(axis=1) / np.asarray(n_relevant, dtype=np.float64)


def mrr_at_k(hits: np.ndarray, k: int) -> np.ndarray:
    """1 / rank (from 1) of the first relevant document if it is among the first k, else 0: float64 [n_queries]."""
    h = _hits_at(hits, k)  # [q, k]
    first = h.argmax(axis=1)  # [q], the first True (0 when there is none)
    return np.where(h.any(axis=1), 1.0 / (first + 1.0), 0.0)


def ndcg_at_k(hits: np.ndarray, n_relevant: np.ndarray, k: int) -> np.ndarray:
    """nDCG@k with binary gains: float64 [n_queries]; n_relevant must be >= 1 for every query."""
    h = _hits_at(hits, k)  # [q, k'] with k' = min(k, n_ranked)
    dcg = h @ discounts(h.shape[1])  # [q]
    ideal = np.cumsum(discounts(k))[np.minimum(np.asarray(n_relevant), k) - 1]  # all relevant documents first, [q]
    return dcg / ideal


def map_at_k(hits: np.ndarray, n_relevant: np.ndarray, k: int) -> np.ndarray:
    """Average precision@k: the precision at each rank <= k holding a relevant document, summed, divided by
    min(k, n_relevant): float64 [n_queries]."""
    h = _hits_at(hits, k).astype(np.float64)  # [q, k']
    precision = np.cumsum(h, axis=1) / np.arange(1, h.shape[1] + 1)  # precision@r for r = 1..k', [q, k']
    return (precision * h).sum(axis=1) / np.minimum(k, np.asarray(n_relevant))


# --------------------------------------------------------------------------------------------------------------
# Reranking: one query's candidates, relevant bool [n], scores [n] -> float
# --------------------------------------------------------------------------------------------------------------

def _tie_groups(scores: np.ndarray) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """The order best-first and the tie groups along it: (order int [n], group starts [g], group ends [g]).

    A group is a run of exactly equal scores; ranks start[i] .. end[i] - 1 (from 0) belong to group i."""
    order = np.argsort(-np.asarray(scores), kind="stable")  # [n]
    ranked = np.asarray(scores)[order]
    starts = np.flatnonzero(np.r_[True, ranked[1:] != ranked[:-1]])  # [g]
    return order, starts, np.r_[starts[1:], len(ranked)]


def reciprocal_rank(relevant: np.ndarray, scores: np.ndarray, k: int) -> float:
    """1 / rank (from 1) of the first relevant candidate if it is among the k best-scored, else 0.

    Ranked as sentence-transformers ranks here, by `np.argsort(scores)` reversed. Among tied scores that order is
    whatever NumPy's sort kernel gives on this CPU (it is not stable on AVX-512 machines), so where a tie decides
    the first relevant rank, this equals sentence-transformers' value on the same machine and NumPy, nothing more.
    """
    ranking = np.argsort(np.asarray(scores))[::-1][:k]  # best first, as sentence-transformers
    found = np.flatnonzero(np.asarray(relevant, dtype=bool)[ranking])
    return 1.0 / (found[0] + 1.0) if len(found) else 0.0


def tie_averaged_ndcg(relevant: np.ndarray, scores: np.ndarray, k: int) -> float:
    """nDCG@k with binary gains, averaged over every order of tied scores (scikit-learn's ndcg_score, ignore_ties
    False): a tie group spanning ranks a..b contributes its mean gain times the sum of the discounts of a..b
    (discounts past k are 0). 0 when nothing is relevant."""
    rel = np.asarray(relevant, dtype=np.float64)
    n_relevant = int(rel.sum())
    if n_relevant == 0:
        return 0.0
    order, starts, ends = _tie_groups(scores)
    d = discounts(len(rel))
    d[k:] = 0.0
    d_sum = np.r_[0.0, np.cumsum(d)]  # d_sum[r] = sum of d[:r]
    mean_gain = np.add.reduceat(rel[order], starts) / (ends - starts)  # [g]
    dcg = float((mean_gain * (d_sum[ends] - d_sum[starts])).sum())
    return dcg / float(d_sum[n_relevant])


def average_precision(relevant: np.ndarray, scores: np.ndarray) -> float:
    """Average precision over all candidates, ties taken together (scikit-learn's average_precision_score): the sum,
    over the groups of equal score from best to worst, of (relevant in the group / all relevant) times the
    precision of everything down to the group's end. 0 when nothing is relevant."""
    rel = np.asarray(relevant, dtype=np.float64)
    n_relevant = rel.sum()
    if n_relevant == 0:
        return 0.0
    order, starts, ends = _tie_groups(scores)
    found = np.add.reduceat(rel[order], starts)  # relevant per group, [g]
    precision = np.cumsum(found) / ends  # precision at each group's end, [g]
    return float((found / n_relevant * precision).sum())


# --------------------------------------------------------------------------------------------------------------
# Correlation
# --------------------------------------------------------------------------------------------------------------

def check_scores(x: Any, name: str) -> np.ndarray:
    """x as float64 [n] if it can have a correlation: at least 2 finite numbers, not all equal; else ArgumentError
    naming `name` (scipy would return NaN)."""
    a = np.asarray(x, dtype=np.float64)
    if a.ndim != 1 or len(a) < 2:
        raise ArgumentError(f"{name} must be a list of at least 2 numbers, got shape {a.shape}")
    if not np.isfinite(a).all():
        raise ArgumentError(f"{name} holds NaN or infinite values (first at index {int(np.argmin(np.isfinite(a)))})")
    if (a == a[0]).all():
        raise ArgumentError(f"{name} is constant ({a[0]!r} for all {len(a)}), so no correlation is defined")
    return a


def average_ranks(x: Any) -> np.ndarray:
    """Ranks 1..n of x [n], tied values sharing the mean of the ranks they span (scipy.stats.rankdata's
    'average'): float64 [n]."""
    a = np.asarray(x, dtype=np.float64)
    order, starts, ends = _tie_groups(-a)  # ascending
    ranks = np.empty(len(a))
    ranks[order] = np.repeat((starts + 1 + ends) / 2.0, ends - starts)
    return ranks


def _pair(x: Any, y: Any, names: tuple[str, str]) -> tuple[np.ndarray, np.ndarray]:
    a, b = check_scores(x, names[0]), check_scores(y, names[1])
    if len(a) != len(b):
        raise ArgumentError(f"{names[0]} and {names[1]} must have the same length, got {len(a)} and {len(b)}")
    return a, b


def _pearson(a: np.ndarray, b: np.ndarray) -> float:
    am, bm = a - a.mean(), b - b.mean()  # [n]
    return float(np.clip(am @ bm / (np.linalg.norm(am) * np.linalg.norm(bm)), -1.0, 1.0))


def pearson(x: Any, y: Any, names: tuple[str, str] = ("x", "y")) -> float:
    """Pearson's correlation of x [n] and y [n], in float64. A constant input has none: ArgumentError, not NaN."""
    return _pearson(*_pair(x, y, names))


def spearman(x: Any, y: Any, names: tuple[str, str] = ("x", "y")) -> float:
    """Spearman's rank correlation of x [n] and y [n]: Pearson's r of their average ranks (scipy.stats.spearmanr).
    A constant input has none: ArgumentError, not NaN."""
    a, b = _pair(x, y, names)
    return _pearson(average_ranks(a), average_ranks(b))
