"""Search and mining over embeddings, as sentence_transformers.util: semantic_search (top-k corpus entries per
query), paraphrase_mining (the most similar pairs), community_detection (groups of near-duplicates).

Everything is chunked as in sentence-transformers, so that searching a 1M x 384 corpus never builds a 1M x 1M
matrix. Among *exactly equal* scores the lower index ranks first (see tinyminilm.util).
"""

from __future__ import annotations

import heapq
from collections.abc import Callable, Iterable
from typing import Any

import numpy as np

from ..errors import ArgumentError, ArgumentTypeError, check_int
from ..model import normalize
from ._arrays import BLOCK_ELEMENTS, as_array, as_matrix, check_finite, same_dim
from .similarity import cos_sim, dot_score


# --------------------------------------------------------------------------------------------------------------
# Top-k
# --------------------------------------------------------------------------------------------------------------

def _topk(scores: np.ndarray, k: int) -> tuple[np.ndarray, np.ndarray]:
    """The k best of each row of scores [r, n] (k <= n): values float32 [r, k] and column ids int64 [r, k].

    Sorted by score, best first; equal scores by lower id first, and ties at the k-th place are broken the same
    way (so the result does not depend on how the scores were chunked). O(n) per row, like torch.topk.
    """
    r, n = scores.shape
    if k == 0 or r == 0:
        return np.empty((r, 0), np.float32), np.empty((r, 0), np.int64)
    if np.isnan(scores).any():
        raise ArgumentError("score_function returned NaN scores; check the embeddings for NaN values")
    if k < n:
        idx = np.empty((r, k), dtype=np.int64)
        rows = max(1, BLOCK_ELEMENTS // n)
        for s in range(0, r, rows):
            block = scores[s:s + rows]  # [b, n]
            kth = np.partition(block, n - k, axis=1)[:, n - k]  # the k-th largest of each row, [b]
            take = block >= kth[:, None]  # [b, n], at least k per row
            for i in np.nonzero(take.sum(axis=1) > k)[0]:  # rows with ties at the k-th place: keep the lowest ids
                tie = block[i] == kth[i]
                need = k - int((block[i] > kth[i]).sum())
                take[i] &= ~tie | (np.cumsum(tie) <= need)
            idx[s:s + rows] = np.nonzero(take)[1].reshape(-1, k)  # row-major, so ascending ids per row
    else:
        idx = np.broadcast_to(np.arange(n, dtype=np.int64), (r, n)).copy()
    values = np.take_along_axis(scores, idx, axis=1)  # [r, k]
    order = np.argsort(-values, axis=1, kind="stable")  # best first; stable keeps ascending ids among ties
    return np.take_along_axis(values, order, axis=1), np.take_along_axis(idx, order, axis=1)


def _check_score_function(score_function: Any) -> None:
    if not callable(score_function):
        raise ArgumentTypeError(f"score_function must be callable, like util.cos_sim, got "
                                f"{type(score_function).__name__}")


def _scores(score_function: Callable, a: np.ndarray, b: np.ndarray) -> np.ndarray:
    """score_function(a [n, d], b [m, d]) checked to be a [n, m] matrix, as float32."""
    s = np.asarray(score_function(a, b))
    if s.shape != (a.shape[0], b.shape[0]):
        raise ArgumentError(f"score_function must return a [{a.shape[0]}, {b.shape[0]}] matrix for inputs of "
                            f"{a.shape[0]} and {b.shape[0]} rows, got shape {s.shape}")
    return s.astype(np.float32, copy=False)


def merge_topk(best: tuple[np.ndarray, np.ndarray] | None, vals: np.ndarray, ids: np.ndarray,
                k: int) -> tuple[np.ndarray, np.ndarray]:
    """Merge a chunk's top-k (vals, ids [r, k']) into the running top-k: the k best of both, same order rules."""
    if best is None:
        return vals, ids
    all_vals = np.concatenate([best[0], vals], axis=1)  # [r, k + k']
    all_ids = np.concatenate([best[1], ids], axis=1)
    order = np.lexsort((all_ids, -all_vals), axis=1)[:, :k]  # by score, then by id
    return np.take_along_axis(all_vals, order, axis=1), np.take_along_axis(all_ids, order, axis=1)


# --------------------------------------------------------------------------------------------------------------
# Search and mining
# --------------------------------------------------------------------------------------------------------------

def semantic_search(query_embeddings: Any, corpus_embeddings: Any, query_chunk_size: int = 100,
                    corpus_chunk_size: int = 500000, top_k: int = 10,
                    score_function: Callable[[Any, Any], np.ndarray] = cos_sim) -> list[list[dict[str, Any]]]:
    """The top_k corpus entries for each query, as sentence_transformers.util.semantic_search.

    query_embeddings: [n_queries, dim] (or one [dim] query); corpus_embeddings: [n_corpus, dim]; float32 or
    anything np.asarray reads. The corpus is scanned corpus_chunk_size rows at a time against query_chunk_size
    queries, so the largest temporary is a [query_chunk_size, corpus_chunk_size] score matrix.
    score_function(a [n, d], b [m, d]) -> [n, m]; with the default cos_sim, each corpus chunk is normalized once.

    Returns one list per query of min(top_k, n_corpus) dicts {"corpus_id": int, "score": float}, best first
    (equal scores: lower corpus_id first).
    """
    q = as_matrix(query_embeddings, "query_embeddings")
    c = as_matrix(corpus_embeddings, "corpus_embeddings", allow_1d=False)
    same_dim(q, c, "query_embeddings and corpus_embeddings")
    check_finite(q, "query_embeddings")
    check_finite(c, "corpus_embeddings")
    query_chunk_size = check_int(query_chunk_size, "query_chunk_size", 1)
    corpus_chunk_size = check_int(corpus_chunk_size, "corpus_chunk_size", 1)
    top_k = check_int(top_k, "top_k", 0)
    _check_score_function(score_function)

    normalize_chunks = score_function is cos_sim  # same scores as cos_sim, the corpus chunk normalized only once
    best: list[tuple[np.ndarray, np.ndarray] | None] = [None] * ((len(q) + query_chunk_size - 1) // query_chunk_size)
    for c_start in range(0, len(c), corpus_chunk_size):
        corpus_chunk = c[c_start:c_start + corpus_chunk_size]  # [C, d]
        if normalize_chunks:
            corpus_chunk = normalize(corpus_chunk)
        k = min(top_k, len(corpus_chunk))
        for n, q_start in enumerate(range(0, len(q), query_chunk_size)):
            query_chunk = q[q_start:q_start + query_chunk_size]  # [Q, d]
            if normalize_chunks:
                scores = normalize(query_chunk) @ corpus_chunk.T  # [Q, C]
            else:
                scores = _scores(score_function, query_chunk, corpus_chunk)
            vals, ids = _topk(scores, k)
            best[n] = merge_topk(best[n], vals, ids + c_start, top_k)

    results: list[list[dict[str, Any]]] = []
    for n, q_start in enumerate(range(0, len(q), query_chunk_size)):
        rows = len(q[q_start:q_start + query_chunk_size])
        if best[n] is None:  # empty corpus
            results.extend([] for _ in range(rows))
            continue
        for vals, ids in zip(best[n][0].tolist(), best[n][1].tolist()):
            results.append([{"corpus_id": i, "score": s} for s, i in zip(vals, ids)])
    return results


def paraphrase_mining_embeddings(embeddings: Any, query_chunk_size: int = 5000, corpus_chunk_size: int = 100000,
                                 max_pairs: int = 500000, top_k: int = 100,
                                 score_function: Callable[[Any, Any], np.ndarray] = cos_sim) -> list[list[Any]]:
    """The most similar pairs among embeddings [n, dim], as sentence_transformers.util.paraphrase_mining_embeddings.

    Each row keeps its top_k neighbours (itself excluded); pairs are kept once, as (i, j) with i < j, in a heap
    of at most max_pairs. score_function is assumed symmetric. Memory: one [query_chunk_size, corpus_chunk_size]
    score matrix at a time.

    Returns [[score, i, j], ...], highest score first.
    """
    e = as_matrix(embeddings, "embeddings", allow_1d=False)
    check_finite(e, "embeddings")
    query_chunk_size = check_int(query_chunk_size, "query_chunk_size", 1)
    corpus_chunk_size = check_int(corpus_chunk_size, "corpus_chunk_size", 1)
    max_pairs = check_int(max_pairs, "max_pairs", 0)
    top_k = check_int(top_k, "top_k", 0)
    _check_score_function(score_function)
    if score_function is cos_sim:  # same scores, each row normalized once instead of once per chunk pair
        e, score_function = normalize(e), dot_score

    # The heap logic below is sentence-transformers', line for line, so that ties at max_pairs resolve alike.
    pairs: list[tuple[float, int, int]] = []  # min-heap of (score, i, j) with i < j, at most max_pairs entries
    queued_pairs: set[tuple[int, int]] = set()  # the (i, j) of every pair in `pairs`
    min_score = float("-inf")
    for q_start in range(0, len(e), query_chunk_size):
        query_chunk = e[q_start:q_start + query_chunk_size]
        best = None
        for c_start in range(0, len(e), corpus_chunk_size):
            scores = _scores(score_function, query_chunk, e[c_start:c_start + corpus_chunk_size])
            k = min(top_k + 1, scores.shape[1])
            vals, ids = _topk(scores, k)
            best = merge_topk(best, vals, ids + c_start, top_k + 1)
        assert best is not None
        for row, (ids, vals) in enumerate(zip(best[1].tolist(), best[0].tolist())):
            i = q_start + row
            neighbours = [(j, s) for j, s in zip(ids, vals) if i != j][:top_k]
            for j, score in neighbours:
                if score <= min_score:
                    continue
                pair = (i, j) if i < j else (j, i)
                if pair in queued_pairs:
                    continue
                queued_pairs.add(pair)
                if len(pairs) < max_pairs:
                    heapq.heappush(pairs, (score, *pair))
                else:
                    evicted = heapq.heappushpop(pairs, (score, *pair))
                    queued_pairs.discard(evicted[1:])
                    min_score = evicted[0]
    return sorted(([score, i, j] for score, i, j in pairs), key=lambda x: x[0], reverse=True)


def paraphrase_mining(model: Any, sentences: Iterable[str], show_progress_bar: bool = False, batch_size: int = 32,
                      query_chunk_size: int = 5000, corpus_chunk_size: int = 100000, max_pairs: int = 500000,
                      top_k: int = 100, score_function: Callable[[Any, Any], np.ndarray] = cos_sim,
                      truncate_dim: int | None = None) -> list[list[Any]]:
    """Encode sentences with model (a tinyminilm SentenceEncoder) and return paraphrase_mining_embeddings of them:
    [[score, i, j], ...] with i < j indexing sentences, highest score first."""
    embeddings = model.encode(list(sentences), show_progress_bar=show_progress_bar, batch_size=batch_size,
                              truncate_dim=truncate_dim)
    return paraphrase_mining_embeddings(embeddings, query_chunk_size=query_chunk_size,
                                        corpus_chunk_size=corpus_chunk_size, max_pairs=max_pairs, top_k=top_k,
                                        score_function=score_function)


def community_detection(embeddings: Any, threshold: float = 0.75, min_community_size: int = 10,
                        batch_size: int = 1024, show_progress_bar: bool = False) -> list[list[int]]:
    """Fast community detection, as sentence_transformers.util.community_detection (its CPU path).

    embeddings [n, dim]. A row is a community centre when at least min_community_size rows (itself included) have
    cosine similarity >= threshold with it; its community is those rows, most similar first (ties: lower index
    first). Communities are taken largest first, each dropping the rows an earlier one claimed, and kept if still
    at least min_community_size large. Memory: a [batch_size, n] score matrix at a time.

    Returns lists of row indices, centre first, largest community first.
    """
    raw = as_array(embeddings, "embeddings")
    if raw.size == 0:
        return []
    e = as_matrix(raw, "embeddings")
    check_finite(e, "embeddings")
    min_community_size = check_int(min_community_size, "min_community_size", 1)
    batch_size = check_int(batch_size, "batch_size", 1)
    if isinstance(threshold, bool) or not isinstance(threshold, (int, float, np.floating, np.integer)):
        raise ArgumentTypeError(f"threshold must be a number (a cosine similarity), got {type(threshold).__name__}")
    if len(e) < min_community_size:
        return []
    thr = np.float32(threshold)  # compared in float32, as sentence-transformers' torch.tensor(threshold)
    e = normalize(e)
    n = len(e)

    starts = range(0, n, batch_size)
    if show_progress_bar:
        from tqdm.auto import tqdm

        starts = tqdm(starts, desc="Finding clusters")
    extracted: list[tuple[int, np.ndarray]] = []
    for start in starts:
        scores = e[start:start + batch_size] @ e.T  # [b, n]
        kth = np.empty(len(scores), dtype=np.float32)  # the min_community_size-th best score of each row
        rows = max(1, BLOCK_ELEMENTS // n)
        for s in range(0, len(scores), rows):
            kth[s:s + rows] = np.partition(scores[s:s + rows], n - min_community_size,
                                           axis=1)[:, n - min_community_size]
        for i in np.nonzero(kth >= thr)[0]:
            members = np.nonzero(scores[i] >= thr)[0]  # ascending ids
            order = np.argsort(-scores[i, members], kind="stable")  # most similar first, ties by lower id
            extracted.append((start + int(i), members[order].astype(np.uint32)))

    extracted.sort(key=lambda x: len(x[1]), reverse=True)  # largest first; stable, so equal sizes by centre
    unique: list[list[int]] = []
    used = np.zeros(n, dtype=bool)
    for centre, community in extracted:
        if used[centre]:
            continue
        rest = community[~used[community]]
        if len(rest) >= min_community_size:
            members = [centre] + rest[rest != centre].tolist()
            unique.append(members)
            used[members] = True
    return sorted(unique, key=len, reverse=True)
