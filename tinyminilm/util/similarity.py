"""Similarity scores between embeddings, as sentence_transformers.util: all pairs [n, m] (cos_sim, dot_score,
euclidean_sim, manhattan_sim) and pairwise [n] (pairwise_*), by name in SIMILARITY_FUNCTIONS; and
normalize_embeddings, the unit-norm rows cosine similarity works on."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import numpy as np

from ..errors import ArgumentError
from ..model import normalize
from ._arrays import BLOCK_ELEMENTS, as_array, as_matrix, same_dim

SIMILARITY_FN_NAMES = ("cosine", "dot", "euclidean", "manhattan")


def cos_sim(a: Any, b: Any) -> np.ndarray:
    """Cosine similarity of every row of a [n, d] with every row of b [m, d]: float32 [n, m].

    A 1-D input counts as one row. Zero vectors score 0 against everything (as torch's normalize).
    """
    a, b = as_matrix(a, "a"), as_matrix(b, "b")
    same_dim(a, b)
    return normalize(a) @ normalize(b).T  # [n, d] @ [d, m] -> [n, m]


def dot_score(a: Any, b: Any) -> np.ndarray:
    """Dot product of every row of a [n, d] with every row of b [m, d]: float32 [n, m]."""
    a, b = as_matrix(a, "a"), as_matrix(b, "b")
    same_dim(a, b)
    return a @ b.T  # [n, m]


def _cdist(a: np.ndarray, b: np.ndarray, p: int) -> np.ndarray:
    """Minkowski distance (p = 1 or 2) of every row of a [n, d] with every row of b [m, d]: float32 [n, m].

    Computed from the differences themselves, in row blocks of a, so no [n, m, d] array is ever whole. (torch's
    cdist uses the |a|^2 + |b|^2 - 2ab expansion for p = 2 beyond 25 rows, which loses accuracy for close pairs.)
    """
    out = np.empty((a.shape[0], b.shape[0]), dtype=np.float32)
    rows = max(1, BLOCK_ELEMENTS // max(1, b.shape[0] * a.shape[1]))
    for s in range(0, a.shape[0], rows):
        diff = a[s:s + rows, None, :] - b[None, :, :]  # [r, 1, d] - [1, m, d] -> [r, m, d]
        if p == 1:
            out[s:s + rows] = np.abs(diff).sum(axis=-1)
        else:
            out[s:s + rows] = np.sqrt((diff * diff).sum(axis=-1))
    return out


def euclidean_sim(a: Any, b: Any) -> np.ndarray:
    """Negative Euclidean distance of every row of a [n, d] with every row of b [m, d]: float32 [n, m]."""
    a, b = as_matrix(a, "a"), as_matrix(b, "b")
    same_dim(a, b)
    return -_cdist(a, b, 2)


def manhattan_sim(a: Any, b: Any) -> np.ndarray:
    """Negative Manhattan (L1) distance of every row of a [n, d] with every row of b [m, d]: float32 [n, m]."""
    a, b = as_matrix(a, "a"), as_matrix(b, "b")
    same_dim(a, b)
    return -_cdist(a, b, 1)


def _pair(a: Any, b: Any) -> tuple[np.ndarray, np.ndarray, bool]:
    """Two inputs of the same shape as float32 [n, d] (and whether they were single 1-D vectors)."""
    single = np.ndim(a) == 1 and np.ndim(b) == 1
    a, b = as_matrix(a, "a"), as_matrix(b, "b")
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


def normalize_embeddings(embeddings: Any) -> np.ndarray:
    """Rows scaled to unit L2 norm (a zero row stays zero), as sentence_transformers.util.normalize_embeddings:
    float [n, dim] (or one [dim] vector) -> float32 of the same shape."""
    raw = as_array(embeddings, "embeddings")
    return normalize(raw.astype(np.float32, copy=False))


pytorch_cos_sim = cos_sim  # sentence-transformers' older name, kept by it as an alias too
