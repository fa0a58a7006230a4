"""EmbeddingSimilarityEvaluator: how well embedding similarities follow gold scores (Pearson, Spearman), in NumPy.

Same constructor, call, result keys, primary_metric and CSV as sentence-transformers 6.2's
(sentence_transformer/evaluation/embedding_similarity.py): each pair's similarity under each similarity function
(tinyminilm.util's pairwise functions) against the gold scores, by Pearson's r and Spearman's rho (ties in either
ranked by their average rank, as scipy.stats.spearmanr). With `precision`, the embeddings are normalized and
quantized by the model's encode, and bits are unpacked to 0/1 floats before scoring, as there.
"""

from __future__ import annotations

import logging
from collections.abc import Sequence
from typing import Any

import numpy as np

from ..errors import ArgumentError, ArgumentTypeError, check_int, check_texts
from ..util import PAIRWISE_SIMILARITY_FUNCTIONS, check_precision, check_similarity_fn_name
from . import metrics as m
from .evaluator import Evaluator, append_csv, call_description, check_optional_str

log = logging.getLogger("tinyminilm")


class EmbeddingSimilarityEvaluator(Evaluator):
    """Pearson and Spearman correlation of embedding similarities with gold scores.

    sentences1, sentences2: the pairs' texts; scores: their gold similarity (any scale). similarity_fn_names: any of
    "cosine", "dot", "euclidean", "manhattan" (default: the model's similarity_fn_name, fixed at the first call);
    main_similarity picks primary_metric "spearman_{it}" (default "spearman_{the only function}", or
    "spearman_max" for several). precision: None (float32) or "float32" | "int8" | "uint8" | "binary" | "ubinary".

    Calling it returns {"pearson_{fn}": r, "spearman_{fn}": rho, ...} (+ "pearson_max" / "spearman_max" for several
    functions; keys prefixed "{name}_" when named); with output_path and write_csv it appends a row to
    output_path/similarity_evaluation{_name}{_precision}_results.csv.
    """

    def __init__(self, sentences1: Sequence[str], sentences2: Sequence[str], scores: Sequence[float],
                 batch_size: int = 16, main_similarity: Any = None, similarity_fn_names: list[str] | None = None,
                 name: str = "", show_progress_bar: bool | None = False, write_csv: bool = True,
                 precision: str | None = None, truncate_dim: int | None = None) -> None:
        super().__init__()
        self.sentences1, self.sentences2 = list(sentences1), list(sentences2)
        check_texts(self.sentences1, "sentences1")
        check_texts(self.sentences2, "sentences2")
        self.scores = list(scores)
        if not len(self.sentences1) == len(self.sentences2) == len(self.scores):
            raise ArgumentError(f"sentences1, sentences2 and scores must have one entry per pair; got "
                                f"{len(self.sentences1)}, {len(self.sentences2)} and {len(self.scores)}")
        for i, score in enumerate(self.scores):
            if isinstance(score, bool) or not isinstance(score, (int, float, np.integer, np.floating)):
                raise ArgumentTypeError(f"scores[{i}] is {type(score).__name__}, expected a number")
        m.check_scores(self.scores, "scores")
        self.write_csv = bool(write_csv)
        self.precision = None if precision is None else check_precision(precision)
        self.truncate_dim = None if truncate_dim is None else check_int(truncate_dim, "truncate_dim")
        self.main_similarity = check_similarity_fn_name(main_similarity) if main_similarity else None
        self.similarity_fn_names = [check_similarity_fn_name(n) for n in similarity_fn_names or []]
        if not self.similarity_fn_names and self.main_similarity is not None:
            self.similarity_fn_names = [self.main_similarity]
        self.name = check_optional_str(name, "name") or ""
        self.batch_size = check_int(batch_size, "batch_size")
        if show_progress_bar is None:  # as sentence-transformers: a bar when INFO is logged
            show_progress_bar = log.isEnabledFor(logging.INFO)
        self.show_progress_bar = bool(show_progress_bar)
        self.csv_file = ("similarity_evaluation" + ("_" + self.name if self.name else "")
                         + ("_" + self.precision if self.precision else "") + "_results.csv")
        self.csv_headers = ["epoch", "steps"] + self._csv_columns(self.similarity_fn_names)

    @staticmethod
    def _csv_columns(fn_names: list[str]) -> list[str]:
        return [f"{fn}_{metric}" for fn in fn_names for metric in ("pearson", "spearman")]

    @classmethod
    def from_input_examples(cls, examples: Sequence[Any], **kwargs: Any) -> EmbeddingSimilarityEvaluator:
        """From objects with .texts (two texts) and .label (the gold score), as sentence-transformers' InputExample."""
        return cls([e.texts[0] for e in examples], [e.texts[1] for e in examples], [e.label for e in examples],
                   **kwargs)

    def __call__(self, model: Any, output_path: str | None = None, epoch: int = -1,
                 steps: int = -1) -> dict[str, float]:
        """Evaluate `model`: {"{name}_pearson_{fn}": r, "{name}_spearman_{fn}": rho, ...}."""
        log.info(f"EmbeddingSimilarityEvaluator: Evaluating the model on the {self.name} dataset"
                 f"{call_description(epoch, steps, self.truncate_dim)}:")
        if self.precision in ("int8", "uint8"):  # one call, so both sides share the quantization ranges
            both = self.embed_inputs(model, self.sentences1 + self.sentences2)
            embeddings1, embeddings2 = both[:len(self.sentences1)], both[len(self.sentences1):]
        else:
            embeddings1 = self.embed_inputs(model, self.sentences1)
            embeddings2 = self.embed_inputs(model, self.sentences2)
        embeddings1, embeddings2 = _as_scored(embeddings1, self.precision), _as_scored(embeddings2, self.precision)

        if not self.similarity_fn_names:
            self.similarity_fn_names = [check_similarity_fn_name(model.similarity_fn_name)]
            self.csv_headers += self._csv_columns(self.similarity_fn_names)
        metrics: dict[str, float] = {}
        for fn in self.similarity_fn_names:
            predicted = PAIRWISE_SIMILARITY_FUNCTIONS[fn](embeddings1, embeddings2)  # float32 [n_pairs]
            names = ("scores", f"the model's {fn} similarities")
            metrics[f"pearson_{fn}"] = m.pearson(self.scores, predicted, names)
            metrics[f"spearman_{fn}"] = m.spearman(self.scores, predicted, names)
            log.info(f"{fn.capitalize()}-Similarity:\tPearson: {metrics[f'pearson_{fn}']:.4f}\t"
                     f"Spearman: {metrics[f'spearman_{fn}']:.4f}")

        if output_path is not None and self.write_csv:
            row = [metrics[f"{metric}_{fn}"] for fn in self.similarity_fn_names for metric in ("pearson", "spearman")]
            append_csv(output_path, self.csv_file, self.csv_headers, [epoch, steps] + row)
        if len(self.similarity_fn_names) > 1:
            metrics["pearson_max"] = max(metrics[f"pearson_{fn}"] for fn in self.similarity_fn_names)
            metrics["spearman_max"] = max(metrics[f"spearman_{fn}"] for fn in self.similarity_fn_names)
        if self.main_similarity:
            self.primary_metric = f"spearman_{self.main_similarity}"  # a name check_similarity_fn_name took
        elif len(self.similarity_fn_names) > 1:
            self.primary_metric = "spearman_max"
        else:
            self.primary_metric = f"spearman_{self.similarity_fn_names[0]}"
        return self.prefix_name_to_metrics(metrics, self.name)

    def embed_inputs(self, model: Any, sentences: list[str]) -> np.ndarray:
        """model.encode with this evaluator's batch size, precision (normalizing first when quantizing) and
        truncate_dim: [n, dim] (quantized: int8 / uint8 values, or [n, dim / 8] packed bits)."""
        return np.asarray(model.encode(sentences, batch_size=self.batch_size, show_progress_bar=self.show_progress_bar,
                                       convert_to_numpy=True, precision=self.precision or "float32",
                                       normalize_embeddings=bool(self.precision), truncate_dim=self.truncate_dim))


def _as_scored(embeddings: np.ndarray, precision: str | None) -> np.ndarray:
    """Embeddings as the similarity functions take them: binary ones unpacked to one 0/1 per bit, quantized ones as
    float32 (the functions normalize, subtract and square, which integers would overflow)."""
    if precision == "binary":  # int8 -128..127 back to the packed byte 0..255 (widened first: 128 fits no int8)
        embeddings = embeddings.astype(np.int16) + 128
    if precision in ("binary", "ubinary"):
        embeddings = np.unpackbits(embeddings.astype(np.uint8), axis=1)  # [n, dim / 8] -> [n, dim]
    return embeddings.astype(np.float32, copy=False)
