"""Comparing ranked results (search hits, mined pairs, communities) with sentence-transformers' golden ones.

Ids must agree position by position, scores within a tolerance. The one allowance is for scores that are equal
within that tolerance: their order is not defined by value (sentence-transformers leaves exact ties to
torch.topk and heapq, and float rounding can swap scores a few ulp apart), so inside such a run of scores the
same ids may come in any order, and a run cut off at the end (by top_k or max_pairs) may hold different members
of the tie. Used by tests/test_util.py and by scripts/make_golden_util.py's held-out check; numpy only.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from typing import Any

import numpy as np


def tie_runs(scores: Sequence[float], tol: float) -> list[tuple[int, int]]:
    """[start, end) position ranges of consecutive scores (sorted best first) that differ by at most tol."""
    runs, start = [], 0
    for p in range(1, len(scores) + 1):
        if p == len(scores) or abs(scores[p - 1] - scores[p]) > tol:
            runs.append((start, p))
            start = p
    return runs


def ranked_mismatch(ref_keys: Sequence, ref_scores: Sequence[float], keys: Sequence, scores: Sequence[float],
                    tol: float = 1e-6, cut: bool = True,
                    score_of: Callable[[Any], float] | None = None) -> str | None:
    """Why (keys, scores) differs from the reference ranking, or None when they agree (see module docstring).

    cut: the list may have been cut short (top_k, max_pairs), so its last tie run may hold other tied members.
    score_of: our score for any key. Results built from per-row top-k lists (paraphrase mining) can hold another
    member of a near-tie at some row's cut, anywhere in the list; with score_of, a run may differ from the
    reference if each reference key it lacks scores, by our own computation, within tol of that run.
    """
    if len(keys) != len(ref_keys):
        return f"{len(keys)} results, reference has {len(ref_keys)}"
    diff = np.abs(np.asarray(scores, dtype=np.float64) - np.asarray(ref_scores, dtype=np.float64))
    if len(diff) and diff.max() > tol:
        p = int(diff.argmax())
        return f"score at position {p} is {scores[p]}, reference {ref_scores[p]}"
    runs = tie_runs(ref_scores, tol)
    for n, (a, b) in enumerate(runs):
        if cut and n == len(runs) - 1:
            break
        ours, ref = sorted(map(tuple_or_int, keys[a:b])), sorted(map(tuple_or_int, ref_keys[a:b]))
        if ours != ref:
            lacking = [k for k in ref if k not in ours]
            if score_of is not None and all(abs(score_of(k) - ref_scores[a]) <= 2 * tol for k in lacking):
                continue
            return f"positions {a}..{b - 1}: {list(keys[a:b])}, reference {list(ref_keys[a:b])}"
    return None


def tuple_or_int(k):
    return tuple(int(x) for x in k) if isinstance(k, (tuple, list, np.ndarray)) else int(k)


def exact_ids(ref_keys: Sequence, keys: Sequence) -> bool:
    """Strict agreement: the same ids in the same order, ties included."""
    return list(map(tuple_or_int, ref_keys)) == list(map(tuple_or_int, keys))
