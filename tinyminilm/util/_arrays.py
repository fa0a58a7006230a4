"""The input checks every util function shares: embeddings as float32 matrices, refused with an error that names
the argument when they cannot be; and the bound on the temporaries built per step."""

from __future__ import annotations

from typing import Any

import numpy as np

from ..errors import ArgumentError, ArgumentTypeError

# Upper bound on the elements of the temporaries built per step by the distance functions and top-k selection
# (4M float32 = 16 MB); the big score matrices themselves are sized by the callers' chunk sizes, as in
# sentence-transformers.
BLOCK_ELEMENTS = 1 << 22


def as_array(x: Any, name: str) -> np.ndarray:
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


def as_matrix(x: Any, name: str, allow_1d: bool = True) -> np.ndarray:
    """`x` as a float32 [n, dim] array; a 1-D vector becomes one row. Raises naming `name` if it cannot be."""
    a = as_array(x, name)
    if a.ndim == 1 and allow_1d:
        a = a[None, :]  # [dim] -> [1, dim]
    if a.ndim != 2:
        want = "[n, dim] or [dim]" if allow_1d else "[n, dim]"
        raise ArgumentError(f"{name} must have shape {want}, got shape {a.shape}")
    return a.astype(np.float32, copy=False)


def same_dim(a: np.ndarray, b: np.ndarray, names: str = "a and b") -> None:
    """Raise ArgumentError unless a [n, d] and b [m, d] have the same d."""
    if a.shape[1] != b.shape[1]:
        raise ArgumentError(f"{names} must have the same embedding size, got {a.shape[1]} and {b.shape[1]}")


def check_finite(a: np.ndarray, name: str) -> None:
    """Raise ArgumentError if a [n, d] holds NaN or infinity."""
    rows = max(1, BLOCK_ELEMENTS // max(1, a.shape[1]))
    for s in range(0, len(a), rows):  # in blocks: no [n, dim] boolean temporary for a 1M-row corpus
        if not np.isfinite(a[s:s + rows]).all():
            raise ArgumentError(f"{name} holds NaN or infinite values; scores and rankings would be meaningless")
