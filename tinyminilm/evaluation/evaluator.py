"""What the evaluators share: sentence-transformers' BaseEvaluator conventions and the files they write.

Conventions (sentence-transformers 6.2, base/evaluation/evaluator.py): an evaluator is called as
`evaluator(model, output_path=None, epoch=-1, steps=-1)` and returns a dict of floats; with a `name`, every key and
`primary_metric` (the key that matters most) start with "{name}_".

Files: a CSV results file gets a header when it is new and one row per call, and a predictions file is rewritten
whole; both go through tinyminilm.files.atomic_path, so an interrupted call leaves the previous file as it was.
sentence-transformers stores the metrics in the model's card too; tinyminilm models have no card, so nothing is.
"""

from __future__ import annotations

import csv
import io
from collections.abc import Iterable
from pathlib import Path
from typing import Any

from ..errors import ArgumentError, ArgumentTypeError, check_int
from ..files import atomic_path


class Evaluator:
    """Base class of tinyminilm's evaluators, as sentence-transformers' BaseEvaluator."""

    def __init__(self) -> None:
        self.greater_is_better = True
        self.primary_metric: str | None = None

    def __call__(self, model: Any, output_path: str | None = None, epoch: int = -1,
                 steps: int = -1) -> dict[str, float]:
        raise NotImplementedError

    def prefix_name_to_metrics(self, metrics: dict[str, Any], name: str) -> dict[str, Any]:
        """The metrics with float values and, if `name` is set, keys "{name}_{key}"; primary_metric gets the same
        prefix unless it has it already."""
        metrics = {key: _maybe_float(value) for key, value in metrics.items()}
        if not name:
            return metrics
        if self.primary_metric is not None and not self.primary_metric.startswith(name + "_"):
            self.primary_metric = name + "_" + self.primary_metric
        return {f"{name}_{key}": value for key, value in metrics.items()}


def _maybe_float(value: Any) -> Any:
    try:
        return float(value)
    except ValueError:
        return value


def call_description(epoch: int, steps: int, truncate_dim: int | None = None) -> str:
    """How sentence-transformers' log line names the call: " after epoch 1", " in epoch 1 after 10 steps", ..."""
    if epoch != -1:
        text = f" after epoch {epoch}" if steps == -1 else f" in epoch {epoch} after {steps} steps"
    else:
        text = ""
    return text + (f" (truncated to {truncate_dim})" if truncate_dim is not None else "")


def append_csv(output_path: str | Path, file_name: str, header: list[str], row: list[Any],
               lineterminator: str = "\r\n") -> bool:
    """Append `row` to output_path/file_name, writing `header` first if the file is new; the folder is created.

    Numbers are written as Python writes them (repr of a float). lineterminator: "\\r\\n", the csv module's default,
    for the similarity and reranking evaluators; "\\n" for the retrieval one, which sentence-transformers writes
    by hand. Returns whether the file existed. The file is replaced whole, never left half-written."""
    folder = Path(output_path)
    folder.mkdir(parents=True, exist_ok=True)
    path = folder / file_name
    existing = path.read_bytes() if path.is_file() else None
    text = io.StringIO()
    writer = csv.writer(text, lineterminator=lineterminator)
    if existing is None:
        writer.writerow(header)
    writer.writerow([_maybe_float(v) if not isinstance(v, int) else v for v in row])
    with atomic_path(path) as tmp:
        tmp.write_bytes((existing or b"") + text.getvalue().encode("utf-8"))
    return existing is not None


def write_text(output_path: str | Path, file_name: str, text: str) -> Path:
    """Write output_path/file_name whole (the folder is created), atomically; returns its path."""
    folder = Path(output_path)
    folder.mkdir(parents=True, exist_ok=True)
    path = folder / file_name
    with atomic_path(path) as tmp:
        tmp.write_bytes(text.encode("utf-8"))
    return path


def check_k_list(value: Any, name: str) -> list[int]:
    """A list of cutoffs k, each a positive integer, none twice (sentence-transformers would count a repeated k
    twice over into one metric). Raises ArgumentError / ArgumentTypeError naming `name`."""
    if isinstance(value, (str, bytes)) or not isinstance(value, Iterable):
        raise ArgumentTypeError(f"{name} must be a list of positive integers, got {type(value).__name__}")
    ks = [check_int(k, f"{name}[{i}]") for i, k in enumerate(value)]
    if not ks:
        raise ArgumentError(f"{name} must hold at least one k")
    repeated = sorted({k for k in ks if ks.count(k) > 1})
    if repeated:
        raise ArgumentError(f"{name} lists k={repeated[0]} more than once; give each k once")
    return ks


def check_optional_str(value: Any, name: str) -> str | None:
    """None or a str, else ArgumentTypeError naming `name`."""
    if value is not None and not isinstance(value, str):
        raise ArgumentTypeError(f"{name} must be a str or None, got {type(value).__name__}")
    return value
