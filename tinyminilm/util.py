"""NumPy twins of sentence_transformers.util: similarity, search, mining, quantization.

Each function takes what its sentence-transformers namesake takes — NumPy arrays, lists of vectors, anything
`np.asarray` reads — and returns NumPy arrays (or the same Python lists and dicts) instead of torch tensors.
The math is float32 throughout; the chunking follows sentence-transformers', so that searching a 1M x 384 corpus
never builds a 1M x 1M matrix.

One deliberate difference, everywhere a top-k is taken: among *exactly equal* scores, tinyminilm ranks the lower
index first. sentence-transformers leaves that order to torch.topk and heapq internals (it varies with the corpus
size); the set of ids and every score agree either way.
"""

from __future__ import annotations

import heapq
from collections.abc import Callable, Iterable
from typing import Any

import numpy as np

from .errors import ArgumentError, ArgumentTypeError, check_choice, check_int
from .model import normalize

PRECISIONS = ("float32", "int8", "uint8", "binary", "ubinary")
SIMILARITY_FN_NAMES = ("cosine", "dot", "euclidean", "manhattan")

# Upper bound on the elements of the temporaries built per step by the distance functions and top-k selection
# (4M float32 = 16 MB); the big score matrices themselves are sized by the callers' chunk sizes, as in
# sentence-transformers.
_BLOCK_ELEMENTS = 1 << 22


# --------------------------------------------------------------------------------------------------------------
# Input checks
# --------------------------------------------------------------------------------------------------------------

def _asarray(x: Any, name: str) -> np.ndarray:
    """np.asarray(x), refusing strings, None and ragged nesting with an error naming `name`."""
    if isinstance(x, (str, bytes)) or x is None:
        raise ArgumentTypeError(f"{name} must be an array of embeddings [n, dim], got {type(x).__name__}")
    try:
        a = np.asarray(x)
    except ValueError as e:  # ragged lists
        raise ArgumentError(f"{name} must be a rectangular array of embeddings [n, dim]: {e}") from None
    if a.dtype.kind not in "fiu":
        raise ArgumentTypeError(f"{name} must hold numbers (float32 embeddings), got dtype {a.dtype}")
    return a


def _as_matrix(x: Any, name: str, allow_1d: bool = True) -> np.ndarray:
    """`x` as a float32 [n, dim] array; a 1-D vector becomes one row. Raises naming `name` if it cannot be."""
    a = _asarray(x, name)
    if a.ndim == 1 and allow_1d:
        a = a[None, :]  # [dim] -> [1, dim]
    if a.ndim != 2:
        want = "[n, dim] or [dim]" if allow_1d else "[n, dim]"
        raise ArgumentError(f"{name} must have shape {want}, got shape {a.shape}")
    return a.astype(np.float32, copy=False)


def _same_dim(a: np.ndarray, b: np.ndarray, names: str = "a and b") -> None:
    if a.shape[1] != b.shape[1]:
        raise ArgumentError(f"{names} must have the same embedding size, got {a.shape[1]} and {b.shape[1]}")


def _check_finite(a: np.ndarray, name: str) -> None:
    rows = max(1, _BLOCK_ELEMENTS // max(1, a.shape[1]))
    for s in range(0, len(a), rows):  # in blocks: no [n, dim] boolean temporary for a 1M-row corpus
        if not np.isfinite(a[s:s + rows]).all():
            raise ArgumentError(f"{name} holds NaN or infinite values; scores and rankings would be meaningless")


# --------------------------------------------------------------------------------------------------------------
# Similarity: all pairs [n, m] and pairwise [n]
# --------------------------------------------------------------------------------------------------------------

def cos_sim(a: Any, b: Any) -> np.ndarray:
    """Cosine similarity of every row of a [n, d] with every row of b [m, d]: float32 [n, m].

    A 1-D input counts as one row. Zero vectors score 0 against everything (as torch's normalize).
    """
    a, b = _as_matrix(a, "a"), _as_matrix(b, "b")
    _same_dim(a, b)
    return normalize(a) @ normalize(b).T  # [n, d] @ [d, m] -> [n, m]


def dot_score(a: Any, b: Any) -> np.ndarray:
    """Dot product of every row of a [n, d] with every row of b [m, d]: float32 [n, m]."""
    a, b = _as_matrix(a, "a"), _as_matrix(b, "b")
    _same_dim(a, b)
    return a @ b.T  # [n, m]


def _cdist(a: np.ndarray, b: np.ndarray, p: int) -> np.ndarray:
    """Minkowski distance (p = 1 or 2) of every row of a [n, d] with every row of b [m, d]: float32 [n, m].

    Computed from the differences themselves, in row blocks of a, so no [n, m, d] array is ever whole. (torch's
    cdist uses the |a|^2 + |b|^2 - 2ab expansion for p = 2 beyond 25 rows, which loses accuracy for close pairs.)
    """
    out = np.empty((a.shape[0], b.shape[0]), dtype=np.float32)
    rows = max(1, _BLOCK_ELEMENTS // max(1, b.shape[0] * a.shape[1]))
    for s in range(0, a.shape[0], rows):
        diff = a[s:s + rows, None, :] - b[None, :, :]  # [r, 1, d] - [1, m, d] -> [r, m, d]
        if p == 1:
            out[s:s + rows] = np.abs(diff).sum(axis=-1)
        else:
            out[s:s + rows] = np.sqrt((diff * diff).sum(axis=-1))
    return out


def euclidean_sim(a: Any, b: Any) -> np.ndarray:
    """Negative Euclidean distance of every row of a [n, d] with every row of b [m, d]: float32 [n, m]."""
    a, b = _as_matrix(a, "a"), _as_matrix(b, "b")
    _same_dim(a, b)
    return -_cdist(a, b, 2)


def manhattan_sim(a: Any, b: Any) -> np.ndarray:
    """Negative Manhattan (L1) distance of every row of a [n, d] with every row of b [m, d]: float32 [n, m]."""
    a, b = _as_matrix(a, "a"), _as_matrix(b, "b")
    _same_dim(a, b)
    return -_cdist(a, b, 1)


def _pair(a: Any, b: Any) -> tuple[np.ndarray, np.ndarray, bool]:
    """Two inputs of the same shape as float32 [n, d] (and whether they were single 1-D vectors)."""
    single = np.ndim(a) == 1 and np.ndim(b) == 1
    a, b = _as_matrix(a, "a"), _as_matrix(b, "b")
    if a.shape != b.shape:
        raise ArgumentError(f"pairwise scores need a and b of the same shape, got {a.shape} and {b.shape}")
    return a, b, single


def _pairwise_out(x: np.ndarray, single: bool) -> np.ndarray:
    return x[0] if single else x  # a pair of 1-D vectors gives a 0-d array, as a torch scalar tensor


def pairwise_cos_sim(a: Any, b: Any) -> np.ndarray:
    """Cosine similarity of a[i] with b[i] for each i: a, b [n, d] -> float32 [n]."""
    a, b, single = _pair(a, b)
    return _pairwise_out((normalize(a) * normalize(b)).sum(axis=-1), single)


def pairwise_dot_score(a: Any, b: Any) -> np.ndarray:
    """Dot product of a[i] with b[i] for each i: a, b [n, d] -> float32 [n]."""
    a, b, single = _pair(a, b)
    return _pairwise_out((a * b).sum(axis=-1), single)


def pairwise_euclidean_sim(a: Any, b: Any) -> np.ndarray:
    """Negative Euclidean distance of a[i] and b[i] for each i: a, b [n, d] -> float32 [n]."""
    a, b, single = _pair(a, b)
    diff = a - b  # [n, d]
    return _pairwise_out(-np.sqrt((diff * diff).sum(axis=-1)), single)


def pairwise_manhattan_sim(a: Any, b: Any) -> np.ndarray:
    """Negative Manhattan distance of a[i] and b[i] for each i: a, b [n, d] -> float32 [n]."""
    a, b, single = _pair(a, b)
    return _pairwise_out(-np.abs(a - b).sum(axis=-1), single)


SIMILARITY_FUNCTIONS: dict[str, Callable[[Any, Any], np.ndarray]] = {
    "cosine": cos_sim, "dot": dot_score, "euclidean": euclidean_sim, "manhattan": manhattan_sim}
PAIRWISE_SIMILARITY_FUNCTIONS: dict[str, Callable[[Any, Any], np.ndarray]] = {
    "cosine": pairwise_cos_sim, "dot": pairwise_dot_score, "euclidean": pairwise_euclidean_sim,
    "manhattan": pairwise_manhattan_sim}


def check_similarity_fn_name(name: Any) -> str:
    """The name as a str if it is one of SIMILARITY_FN_NAMES (a sentence-transformers SimilarityFunction member
    is accepted too); otherwise ValueError."""
    value = getattr(name, "value", name)  # SimilarityFunction.DOT_PRODUCT -> "dot"
    if value not in SIMILARITY_FN_NAMES:
        raise ArgumentError(f"similarity_fn_name must be one of {', '.join(SIMILARITY_FN_NAMES)}; got {name!r}")
    return value


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
        rows = max(1, _BLOCK_ELEMENTS // n)
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


def _scores(score_function: Callable, a: np.ndarray, b: np.ndarray) -> np.ndarray:
    """score_function(a [n, d], b [m, d]) checked to be a [n, m] matrix, as float32."""
    s = np.asarray(score_function(a, b))
    if s.shape != (a.shape[0], b.shape[0]):
        raise ArgumentError(f"score_function must return a [{a.shape[0]}, {b.shape[0]}] matrix for inputs of "
                         f"{a.shape[0]} and {b.shape[0]} rows, got shape {s.shape}")
    return s.astype(np.float32, copy=False)


def _merge_topk(best: tuple[np.ndarray, np.ndarray] | None, vals: np.ndarray, ids: np.ndarray,
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
    q = _as_matrix(query_embeddings, "query_embeddings")
    c = _as_matrix(corpus_embeddings, "corpus_embeddings", allow_1d=False)
    _same_dim(q, c, "query_embeddings and corpus_embeddings")
    _check_finite(q, "query_embeddings")
    _check_finite(c, "corpus_embeddings")
    query_chunk_size = check_int(query_chunk_size, "query_chunk_size", 1)
    corpus_chunk_size = check_int(corpus_chunk_size, "corpus_chunk_size", 1)
    top_k = check_int(top_k, "top_k", 0)
    if not callable(score_function):
        raise ArgumentTypeError(f"score_function must be callable, like util.cos_sim, got {type(score_function).__name__}")

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
            best[n] = _merge_topk(best[n], vals, ids + c_start, top_k)

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
    e = _as_matrix(embeddings, "embeddings", allow_1d=False)
    _check_finite(e, "embeddings")
    query_chunk_size = check_int(query_chunk_size, "query_chunk_size", 1)
    corpus_chunk_size = check_int(corpus_chunk_size, "corpus_chunk_size", 1)
    max_pairs = check_int(max_pairs, "max_pairs", 0)
    top_k = check_int(top_k, "top_k", 0)
    if not callable(score_function):
        raise ArgumentTypeError(f"score_function must be callable, like util.cos_sim, got {type(score_function).__name__}")
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
            best = _merge_topk(best, vals, ids + c_start, top_k + 1)
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
    raw = _asarray(embeddings, "embeddings")
    if raw.size == 0:
        return []
    e = _as_matrix(raw, "embeddings")
    _check_finite(e, "embeddings")
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
        rows = max(1, _BLOCK_ELEMENTS // n)
        for s in range(0, len(scores), rows):
            kth[s:s + rows] = np.partition(scores[s:s + rows], n - min_community_size, axis=1)[:, n - min_community_size]
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


# --------------------------------------------------------------------------------------------------------------
# Quantization
# --------------------------------------------------------------------------------------------------------------

def check_precision(precision: str) -> None:
    """Raise ValueError unless `precision` is one of PRECISIONS."""
    check_choice(precision, "precision", PRECISIONS)


def _ranges(embeddings: np.ndarray, precision: str, calibration_embeddings: Any) -> np.ndarray:
    """Per-dimension [min, max] [2, dim] from calibration_embeddings, else from the embeddings themselves."""
    if calibration_embeddings is None:
        if embeddings.ndim == 1 or embeddings.shape[0] == 1:
            raise ArgumentError(f"cannot compute {precision} quantization ranges from a single embedding; pass ranges "
                             "[2, dim] or calibration_embeddings [n, dim] from a representative set of embeddings")
        source = embeddings
    else:
        source = _as_matrix(calibration_embeddings, "calibration_embeddings")
        if source.shape[0] == 0:
            raise ArgumentError("calibration_embeddings is empty; pass at least one embedding (better, thousands)")
        if source.shape[1] != embeddings.shape[-1]:
            raise ArgumentError(f"calibration_embeddings has {source.shape[1]} dimensions, the embeddings "
                             f"{embeddings.shape[-1]}")
    return np.vstack((source.min(axis=0), source.max(axis=0)))  # [2, dim]


def quantize_embeddings(embeddings: Any, precision: str, ranges: Any = None,
                        calibration_embeddings: Any = None) -> np.ndarray | list[np.ndarray]:
    """Quantize float embeddings as sentence_transformers.quantization.quantize_embeddings does.

    embeddings: float [n, dim] (or one [dim] vector), or a list of [n_i, dim] matrices (token embeddings), which
    share one set of int8 ranges.
    precision: "float32" (a float32 copy); "int8" / "uint8": each dimension's [min, max] cut into 256 buckets,
    int8 [n, dim] in -128..127 / uint8 [n, dim] in 0..255, the ranges [2, dim] given, else the min and max of
    calibration_embeddings, else of the embeddings themselves (at least two rows needed; more is much better);
    "ubinary": one bit per dimension (> 0), packed, uint8 [n, ceil(dim / 8)]; "binary": the same bytes minus 128,
    int8.
    """
    check_precision(precision)
    if isinstance(embeddings, list):
        if not embeddings:
            return []
        if all(np.ndim(m) == 2 for m in embeddings):  # token embeddings: one calibration for all matrices
            for i, m in enumerate(embeddings):
                _reject_ints(_asarray(m, f"embeddings[{i}]"), f"embeddings[{i}]")
            mats = [_as_matrix(m, f"embeddings[{i}]", allow_1d=False) for i, m in enumerate(embeddings)]
            if precision.endswith("int8") and ranges is None:
                if calibration_embeddings is not None:  # mats[0] only tells _ranges the dimension: it may be empty
                    ranges = _ranges(mats[0], precision, calibration_embeddings)
                else:
                    stacked = np.concatenate(mats, axis=0)  # [sum n_i, dim]
                    if len(stacked):
                        ranges = _ranges(stacked, precision, None)
            return [quantize_embeddings(m, precision, ranges=ranges) for m in mats]
    raw = _asarray(embeddings, "embeddings")
    _reject_ints(raw, "embeddings")
    single = raw.ndim == 1
    x = _as_matrix(raw, "embeddings")  # [n, dim]
    dim = x.shape[1]

    if precision == "float32":
        out = x.copy()
    elif precision.endswith("int8"):
        if x.shape[0] == 0 and ranges is None:
            out = np.zeros((0, dim), dtype=np.int8 if precision == "int8" else np.uint8)
            return out
        if ranges is None:
            r = _ranges(x[0] if single else x, precision, calibration_embeddings)
        else:
            r = _as_matrix(ranges, "ranges", allow_1d=False)
            if r.shape != (2, dim):
                raise ArgumentError(f"ranges must have shape (2, {dim}) (per-dimension min and max), got {r.shape}")
        starts = r[0]
        steps = (r[1] - starts) / np.float32(255)  # [dim]
        steps = np.where(steps == 0, np.float32(1), steps)
        q = np.clip(np.floor((x - starts) / steps), 0, 255)  # [n, dim] bucket numbers, float32
        out = q.astype(np.uint8) if precision == "uint8" else (q - 128).astype(np.int8)
    else:
        packed = np.packbits(x > 0, axis=-1)  # [n, ceil(dim / 8)] uint8
        out = packed if precision == "ubinary" else (packed.astype(np.int16) - 128).astype(np.int8)
    return out[0] if single else out


def _reject_ints(a: np.ndarray, name: str) -> None:
    if a.dtype in (np.int8, np.uint8):
        raise ArgumentTypeError(f"{name} must be float embeddings to quantize, got {a.dtype} (already quantized?)")


# --------------------------------------------------------------------------------------------------------------
# Helpers sentence-transformers' guides use on embeddings
# --------------------------------------------------------------------------------------------------------------

def normalize_embeddings(embeddings: Any) -> np.ndarray:
    """Rows scaled to unit L2 norm (a zero row stays zero), as sentence_transformers.util.normalize_embeddings:
    float [n, dim] (or one [dim] vector) -> float32 of the same shape."""
    raw = _asarray(embeddings, "embeddings")
    return normalize(raw.astype(np.float32, copy=False))


def truncate_embeddings(embeddings: Any, truncate_dim: int | None) -> np.ndarray:
    """The first truncate_dim dimensions of each embedding (all of them for None), as
    sentence_transformers.util.truncate_embeddings: [..., dim] -> [..., truncate_dim], not renormalized."""
    raw = _asarray(embeddings, "embeddings")
    if truncate_dim is None:
        return raw
    return raw[..., :check_int(truncate_dim, "truncate_dim", 1, raw.shape[-1])]


pytorch_cos_sim = cos_sim  # sentence-transformers' older name, kept by it as an alias too
