"""Making embeddings smaller, as sentence-transformers does: quantize_embeddings (int8 / uint8 buckets per
dimension, or one bit per dimension, packed) and truncate_embeddings (the first k dimensions, Matryoshka-style)."""

from __future__ import annotations

from typing import Any

import numpy as np

from ..errors import ArgumentError, ArgumentTypeError, check_choice, check_int
from ._arrays import as_array, as_matrix

PRECISIONS = ("float32", "int8", "uint8", "binary", "ubinary")


def check_precision(precision: str) -> str:
    """`precision`, checked: an ArgumentError (a ValueError) unless it is one of PRECISIONS."""
    return check_choice(precision, "precision", PRECISIONS)


def _ranges(embeddings: np.ndarray, precision: str, calibration_embeddings: Any) -> np.ndarray:
    """Per-dimension [min, max] [2, dim] from calibration_embeddings, else from the embeddings themselves."""
    if calibration_embeddings is None:
        if embeddings.ndim == 1 or embeddings.shape[0] == 1:
            raise ArgumentError(f"cannot compute {precision} quantization ranges from a single embedding; pass ranges "
                                "[2, dim] or calibration_embeddings [n, dim] from a representative set of embeddings")
        source = embeddings
    else:
        source = as_matrix(calibration_embeddings, "calibration_embeddings")
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
                _reject_ints(as_array(m, f"embeddings[{i}]"), f"embeddings[{i}]")
            mats = [as_matrix(m, f"embeddings[{i}]", allow_1d=False) for i, m in enumerate(embeddings)]
            if precision.endswith("int8") and ranges is None:
                if calibration_embeddings is not None:  # mats[0] only tells _ranges the dimension: it may be empty
                    ranges = _ranges(mats[0], precision, calibration_embeddings)
                else:
                    stacked = np.concatenate(mats, axis=0)  # [sum n_i, dim]
                    if len(stacked):
                        ranges = _ranges(stacked, precision, None)
            return [quantize_embeddings(m, precision, ranges=ranges) for m in mats]
    raw = as_array(embeddings, "embeddings")
    _reject_ints(raw, "embeddings")
    single = raw.ndim == 1
    x = as_matrix(raw, "embeddings")  # [n, dim]
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
            r = as_matrix(ranges, "ranges", allow_1d=False)
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


def truncate_embeddings(embeddings: Any, truncate_dim: int | None) -> np.ndarray:
    """The first truncate_dim dimensions of each embedding (all of them for None), as
    sentence_transformers.util.truncate_embeddings: [..., dim] -> [..., truncate_dim], not renormalized."""
    raw = as_array(embeddings, "embeddings")
    if truncate_dim is None:
        return raw
    return raw[..., :check_int(truncate_dim, "truncate_dim", 1, raw.shape[-1])]
