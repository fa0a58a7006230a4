"""NumPy twins of sentence_transformers.util: similarity, search, mining, quantization."""

from __future__ import annotations

import numpy as np

PRECISIONS = ("float32", "int8", "uint8", "binary", "ubinary")


def check_precision(precision: str) -> None:
    """Raise ValueError unless `precision` is one of PRECISIONS."""
    if precision not in PRECISIONS:
        raise ValueError(f"precision must be one of {', '.join(PRECISIONS)}; got {precision!r}")


def quantize_embeddings(embeddings: np.ndarray, precision: str, ranges: np.ndarray | None = None,
                        calibration_embeddings: np.ndarray | None = None) -> np.ndarray:
    """Quantize float embeddings [n, dim] as sentence_transformers.quantization.quantize_embeddings does."""
    check_precision(precision)
    embeddings = np.asarray(embeddings)
    if precision == "float32":
        return embeddings.astype(np.float32)
    if precision.endswith("int8"):
        if ranges is None:
            source = embeddings if calibration_embeddings is None else np.asarray(calibration_embeddings)
            ranges = np.vstack((source.min(axis=0), source.max(axis=0)))
        starts = ranges[0]
        steps = (ranges[1] - ranges[0]) / 255
        if precision == "uint8":
            return ((embeddings - starts) / steps).astype(np.uint8)
        return ((embeddings - starts) / steps - 128).astype(np.int8)
    packed = np.packbits(embeddings > 0).reshape(embeddings.shape[0], -1)
    if precision == "ubinary":
        return packed
    return (packed.astype(np.int16) - 128).astype(np.int8)
