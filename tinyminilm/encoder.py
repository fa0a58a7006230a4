"""The user-facing encoder: texts in, vectors out, with the calling conventions of sentence-transformers.

SentenceEncoder is the engine of tinyminilm/engine.py (the two-level API tokenize -> forward -> finish) plus
sentence-transformers' `encode` and what goes with it: prompts, encode_query / encode_document, similarity, and
tinyminilm's encode_iter for streams. `encode` itself is those steps and nothing else of its own:

    ids = model.token_ids(texts)                        # level 1, unpadded
    each distinct id list once, in batches of similar length, one batch per core (batching.py):
        vectors[batch] = model.forward(model.pad(ids[batch]))   # level 2 (its checks skipped: ids are valid)
    model.finish(vectors, truncate_dim, normalize_embeddings, precision)   # level 3
"""

from __future__ import annotations

import itertools
import logging
from collections.abc import Iterable, Iterator
from contextlib import closing
from pathlib import Path
from typing import Any

import numpy as np

from . import batching
from .config import ModelConfig
from .engine import OUTPUT_VALUES, Engine
from .errors import (ArgumentError, ArgumentTypeError, check_choice, check_int, check_texts,
                     check_torch_only_options)
from .hub import ModelSource
from .progress import progress_bar, tqdm_class

log = logging.getLogger("tinyminilm")


class SentenceEncoder(Engine):
    """A loaded sentence-transformers BERT model, runnable with NumPy alone.

    Create one with `tinyminilm.load()`. One instance may be shared by many threads: encoding touches no mutable
    state, and changing `max_seq_length` swaps in a new tokenizer instead of reconfiguring the shared one.
    """

    def __init__(self, folder: Path, config: ModelConfig, params: dict, tokenizer_path: Path,
                 source: ModelSource | None = None) -> None:
        super().__init__(folder, config, params, tokenizer_path, source)
        self.threads = batching.default_threads()
        # As SentenceTransformer: named prompts ("query" and "document" exist, empty, unless the model folder's
        # config_sentence_transformers.json sets them), the prompt used when none is named, a default truncate_dim.
        self.prompts: dict[str, str] = {"query": "", "document": "", **config.prompts}
        self.default_prompt_name: str | None = config.default_prompt_name
        self.truncate_dim: int | None = None
        self._similarity_fn_name: str | None = None

    # ----------------------------------------------------------------------------------------------------------
    # Settings
    # ----------------------------------------------------------------------------------------------------------

    @property
    def threads(self) -> int:
        """How many batches `encode` runs at once, each on one core with BLAS on one thread (default: the CPUs
        this process may use). Settable; concurrent calls share the process's cores (see tinyminilm.batching)."""
        return self._threads

    @threads.setter
    def threads(self, value: int) -> None:
        self._threads = check_int(value, "threads")

    # ----------------------------------------------------------------------------------------------------------
    # encode: tokenize -> (duplicates once, batches by length on every core) -> forward -> finish
    # ----------------------------------------------------------------------------------------------------------

    def _embed_ids(self, ids: list[list[int]], batch_size: int, output_value: str, progress: Any,
                   prompt_length: int = 0) -> np.ndarray | list[np.ndarray]:
        """forward's output for every id list, in input order: [n, dim] float32, or n token-embedding arrays.
        prompt_length: the leading tokens pooling skips when include_prompt is false (see `forward`)."""
        distinct, members = batching.deduplicate(ids)
        batches = batching.plan_batches(distinct, batch_size, self.threads)
        tokens: list[np.ndarray] = [None] * len(ids)  # type: ignore[list-item]
        vectors = np.empty((len(ids), self.config.dim), dtype=np.float32)

        def run(uidx: np.ndarray) -> np.ndarray | list[np.ndarray]:
            batch = [distinct[u] for u in uidx]
            features = self.pad(batch)
            if prompt_length:
                features["prompt_length"] = prompt_length
            out = self._forward(features, output_value)
            if output_value == "token_embeddings":  # owned copies: a view would keep the whole padded batch alive
                return [out[i, :len(x)].copy() for i, x in enumerate(batch)]
            return out

        with closing(batching.run_batches(batches, run, self.threads)) as results:
            for uidx, result in results:
                for j, u in enumerate(uidx):
                    for n, i in enumerate(members[u]):
                        if output_value == "token_embeddings":
                            tokens[i] = result[j] if n == 0 else result[j].copy()  # no two texts share an array
                        else:
                            vectors[i] = result[j]
                    if progress is not None:
                        progress.update(len(members[u]))
        return tokens if output_value == "token_embeddings" else vectors

    def _check_options(self, batch_size: Any, output_value: Any, precision: Any, truncate_dim: Any,
                       show_progress_bar: Any) -> None:
        """The checks encode and encode_iter share, all made before any text is read."""
        from .util import check_precision

        check_int(batch_size, "batch_size")
        check_choice(output_value, "output_value", OUTPUT_VALUES)
        check_precision(precision)
        if truncate_dim is not None:
            check_int(truncate_dim, "truncate_dim", 1, self.config.dim, " (the model's dimension)")
        if show_progress_bar:
            tqdm_class()  # tqdm must be importable, or the call fails now

    def encode(self, sentences: str | Iterable[str], prompt_name: str | None = None, prompt: str | None = None,
               batch_size: int = 32, show_progress_bar: bool | None = None,
               output_value: str = "sentence_embedding", precision: str = "float32", convert_to_numpy: bool = True,
               convert_to_tensor: bool = False, device: str | None = None, normalize_embeddings: bool = False,
               truncate_dim: int | None = None, pool: None = None, chunk_size: int | None = None) -> Any:
        """Embed one text or many, as sentence-transformers' SentenceTransformer.encode (same arguments, same order).

        sentences: a str (returns a 1-D float32 array [dim]) or any iterable of str, a generator too (returns
        [n, dim], rows in input order; an empty input gives shape (0, dim)).
        prompt_name, prompt: text put in front of every sentence: `prompt` itself, else self.prompts[prompt_name],
        else the prompt named by self.default_prompt_name (none for all-MiniLM-L6-v2). A model whose Pooling has
        include_prompt false pools without the prompt's tokens (and [CLS]), as sentence-transformers does.
        batch_size: texts per forward pass; texts are grouped by token count so a batch holds little padding.
        show_progress_bar: True shows a tqdm bar counted in texts (needs tqdm); None and False show none.
        output_value: "sentence_embedding", or "token_embeddings" for a list of float32 [n_tokens_i, H] arrays
        (no padding rows; truncate_dim and normalize_embeddings do not apply to them, as in sentence-transformers),
        or "pooled" (tinyminilm's): the vectors before the model's own Normalize module (see `forward`).
        precision: "float32", or "int8" | "uint8" | "binary" | "ubinary", quantized as util.quantize_embeddings
        does over the whole output (int8/uint8 ranges come from these embeddings, so they need at least two
        rows; for stable buckets encode float32 and quantize with ranges from a large calibration set).
        convert_to_numpy: True gives one array; False a list of 1-D arrays (sentence-transformers' list form).
        convert_to_tensor: there is no torch here: True gives the same NumPy array as convert_to_numpy (every
        tinyminilm.util function takes it).
        device: None or "cpu" (NumPy runs on the CPU); anything else is refused.
        normalize_embeddings: rescale to unit L2 norm (all-MiniLM-L6-v2 already ends in a Normalize module).
        truncate_dim: keep only the first k dimensions (Matryoshka-style), 1 <= k <= dim, applied before
        normalizing and quantizing; default self.truncate_dim.
        pool, chunk_size: sentence-transformers' multi-process pool; tinyminilm runs batches on a thread per core
        by itself (see `threads`), so pool must be None and chunk_size is only checked.
        """
        single = isinstance(sentences, str)
        if isinstance(sentences, (bytes, bytearray)):
            raise ArgumentTypeError("sentences is bytes; pass str (decode it first, e.g. b.decode('utf-8'))")
        if not single and not isinstance(sentences, Iterable):
            raise ArgumentTypeError(f"sentences must be a str or an iterable of str, got {type(sentences).__name__}")
        truncate_dim = self.truncate_dim if truncate_dim is None else truncate_dim
        self._check_options(batch_size, output_value, precision, truncate_dim, show_progress_bar)
        check_torch_only_options(device, pool, chunk_size)
        prompt = self._resolve_prompt(prompt, prompt_name)
        texts = [sentences] if single else list(sentences)
        if precision.endswith("int8") and len(texts) == 1:
            raise ArgumentError(f"precision={precision!r} takes its buckets from the min and max of the embeddings "
                                "being encoded, and a single text has no range; encode with precision='float32' and "
                                "call tinyminilm.util.quantize_embeddings(emb, precision, ranges=... or "
                                "calibration_embeddings=...) with ranges from a representative set")
        if prompt:
            check_texts(texts)  # before the prompt goes in front: a non-str item is named by its index
            texts = [prompt + t for t in texts]
        ids = self.token_ids(texts)
        progress = progress_bar(len(texts), "Encoding") if show_progress_bar else None
        try:
            skip = self.prompt_length(prompt) if prompt and not self.config.include_prompt else 0
            out = self._embed_ids(ids, int(batch_size), output_value, progress, skip)
        finally:
            if progress is not None:
                progress.close()
        out = self.finish(out, truncate_dim, normalize_embeddings, precision)
        if single:
            return out[0]
        return out if convert_to_numpy or convert_to_tensor or output_value == "token_embeddings" else list(out)

    def encode_query(self, sentences: str | Iterable[str], prompt_name: str | None = None, prompt: str | None = None,
                     **kwargs: Any) -> Any:
        """`encode` for search queries, as sentence-transformers' encode_query: with no prompt given, the
        "query" prompt of self.prompts ("" for all-MiniLM-L6-v2, so the same vectors as encode)."""
        if prompt_name is None and prompt is None and "query" in self.prompts:
            prompt_name = "query"
        return self.encode(sentences, prompt_name=prompt_name, prompt=prompt, **kwargs)

    def encode_document(self, sentences: str | Iterable[str], prompt_name: str | None = None,
                        prompt: str | None = None, **kwargs: Any) -> Any:
        """`encode` for the documents searched, as sentence-transformers' encode_document: with no prompt given,
        the first of the "document", "passage", "corpus" prompts in self.prompts ("" for all-MiniLM-L6-v2)."""
        if prompt_name is None and prompt is None:
            prompt_name = next((n for n in ("document", "passage", "corpus") if n in self.prompts), None)
        return self.encode(sentences, prompt_name=prompt_name, prompt=prompt, **kwargs)

    def _resolve_prompt(self, prompt: str | None, prompt_name: str | None) -> str:
        """The text to put in front of every sentence, as sentence-transformers resolves it ("" for none)."""
        if prompt is not None and not isinstance(prompt, str):
            raise ArgumentTypeError(f"prompt must be a str, got {type(prompt).__name__}")
        if prompt is None:
            if prompt_name is not None:
                if prompt_name not in self.prompts:
                    raise ArgumentError(f"prompt_name {prompt_name!r} is not one of this model's prompts "
                                        f"{sorted(self.prompts)}; add it to model.prompts or pass prompt=...")
                prompt = self.prompts[prompt_name]
            elif self.default_prompt_name is not None:
                prompt = self.prompts.get(self.default_prompt_name, "")
        elif prompt_name is not None:
            log.warning("encode got both prompt and prompt_name; using prompt, as sentence-transformers does")
        return prompt or ""

    def encode_iter(self, sentences: Iterable[str], batch_size: int = 32, chunk_size: int | None = None,
                    **kwargs: Any) -> Iterator[np.ndarray]:
        """Embed a stream of texts, yielding one vector per text (a 1-D array [dim]) in input order.

        The input is read chunk_size texts at a time (default 32 batches) and each chunk is encoded as a whole, so
        memory is bounded by one chunk, not by the corpus, and an unbounded generator is fine. Takes the keyword
        options of `encode`; with output_value="token_embeddings" it yields [n_tokens_i, H] arrays. int8/uint8
        precision is refused: each chunk would get its own buckets; quantize with util.quantize_embeddings and
        fixed ranges instead. Every argument is checked here, before the first text is read; a progress bar
        (show_progress_bar=True) counts the whole stream.
        """
        return itertools.chain.from_iterable(self.encode_chunks(sentences, batch_size, chunk_size, **kwargs))

    def encode_chunks(self, sentences: Iterable[str], batch_size: int = 32, chunk_size: int | None = None,
                      **kwargs: Any) -> Iterator[np.ndarray]:
        """Like `encode_iter`, but yielding one array per chunk of chunk_size texts: [c, dim] (or a list of c
        token-embedding arrays). Every argument is checked here, before the first text is read."""
        if isinstance(sentences, (str, bytes, bytearray)):
            raise ArgumentTypeError("encode_iter takes an iterable of str; for one text use encode(text)")
        if not isinstance(sentences, Iterable):
            raise ArgumentTypeError(f"sentences must be an iterable of str, got {type(sentences).__name__}")
        batch_size = check_int(batch_size, "batch_size")
        chunk_size = check_int(32 * batch_size if chunk_size is None else chunk_size, "chunk_size")
        unknown = set(kwargs) - {"show_progress_bar", "output_value", "precision", "normalize_embeddings",
                                 "truncate_dim", "prompt_name", "prompt"}
        if "convert_to_numpy" in unknown:
            raise ArgumentTypeError("encode_iter yields one array per text; it takes no convert_to_numpy")
        if unknown:
            raise ArgumentTypeError(f"encode_iter got unexpected keyword arguments {sorted(unknown)}")
        options = {"output_value": "sentence_embedding", "precision": "float32", "normalize_embeddings": False,
                   "truncate_dim": self.truncate_dim, **kwargs}
        show = options.pop("show_progress_bar", None)
        self._check_options(batch_size, options["output_value"], options["precision"], options["truncate_dim"],
                            show)
        self._resolve_prompt(options.get("prompt"), options.get("prompt_name"))
        if options["precision"].endswith("int8"):
            raise ArgumentError(f"encode_iter cannot quantize to {options['precision']!r}: every chunk would get its "
                                "own buckets. Encode float32 and call tinyminilm.util.quantize_embeddings(emb, "
                                "precision, ranges=...) with ranges fixed from a calibration set")
        return self._chunks(iter(sentences), batch_size, chunk_size, show, options)

    def _chunks(self, texts: Iterator[str], batch_size: int, chunk_size: int, show: bool | None,
                options: dict[str, Any]) -> Iterator[np.ndarray]:
        progress = progress_bar(None, "Encoding") if show else None  # one bar for the whole stream
        try:
            while True:
                chunk = list(itertools.islice(texts, chunk_size))
                if not chunk:
                    return
                yield self.encode(chunk, batch_size=batch_size, **options)
                if progress is not None:
                    progress.update(len(chunk))
                del chunk
        finally:
            if progress is not None:
                progress.close()

    # ----------------------------------------------------------------------------------------------------------
    # Similarity, as SentenceTransformer.similarity / similarity_pairwise
    # ----------------------------------------------------------------------------------------------------------

    @property
    def similarity_fn_name(self) -> str:
        """"cosine" | "dot" | "euclidean" | "manhattan": the function `similarity` uses. Settable.

        Defaults to the model folder's config_sentence_transformers.json value, else "cosine", as
        sentence-transformers.
        """
        from .util import SIMILARITY_FN_NAMES

        if self._similarity_fn_name is not None:
            return self._similarity_fn_name
        saved = self.config.similarity_fn_name
        return saved if saved in SIMILARITY_FN_NAMES else "cosine"

    @similarity_fn_name.setter
    def similarity_fn_name(self, value: str | None) -> None:
        from .util import check_similarity_fn_name

        self._similarity_fn_name = None if value is None else check_similarity_fn_name(value)

    def similarity(self, embeddings1: Any, embeddings2: Any) -> np.ndarray:
        """Scores of every row of embeddings1 [n, dim] (or [dim]) with every row of embeddings2 [m, dim]:
        float32 [n, m], by similarity_fn_name (euclidean and manhattan give negative distances)."""
        from .util import SIMILARITY_FUNCTIONS

        return SIMILARITY_FUNCTIONS[self.similarity_fn_name](embeddings1, embeddings2)

    def similarity_pairwise(self, embeddings1: Any, embeddings2: Any) -> np.ndarray:
        """Scores of embeddings1[i] with embeddings2[i] for each i: two [n, dim] arrays -> float32 [n]."""
        from .util import PAIRWISE_SIMILARITY_FUNCTIONS

        return PAIRWISE_SIMILARITY_FUNCTIONS[self.similarity_fn_name](embeddings1, embeddings2)



