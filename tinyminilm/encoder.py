"""The user-facing encoder: texts in, vectors out, with the calling conventions of sentence-transformers.

`encode` = `tokenize` + `model.sentence_embedding`, batch by batch:
  1. tokenize every text (WordPiece, [CLS] … [SEP], truncated at max_seq_length — not the 128 that this model's
     tokenizer.json carries, and padded to the longest text of a batch rather than to a fixed 128);
  2. sort the texts by token count, so each batch holds texts of similar length and little padding is computed;
  3. run the model on each batch and put the vectors back in input order.
"""

from __future__ import annotations

import itertools
import json
import re
import threading
from contextlib import nullcontext
from collections.abc import Iterable, Iterator
from pathlib import Path
from typing import Any, NamedTuple

import numpy as np

from . import model as M
from .config import ModelConfig, read_config
from .errors import TokenizerError
from .util import check_int
from .weights import load_params


def _load_tokenizer(path: Path, max_length: int):
    from tokenizers import Tokenizer

    if not path.is_file():
        raise TokenizerError(f"{path}: file not found; a model folder needs its tokenizer.json")
    try:
        tok = Tokenizer.from_file(str(path))
    except Exception as e:  # tokenizers raises a bare Exception for malformed files
        raise TokenizerError(f"{path}: cannot be loaded as a tokenizers file ({e}); replace it with an intact "
                             "copy (tinyminilm download)") from None
    tok.no_padding()  # the shipped file pads every text to 128; we pad per batch instead
    tok.enable_truncation(max_length)  # counts [CLS] and [SEP], as transformers' max_length does
    return tok


class SentenceEncoder:
    """A loaded sentence-transformers BERT model, runnable with NumPy alone.

    Create one with `tinyminilm.load()`. One instance may be shared by many threads: encoding touches no mutable
    state, and changing `max_seq_length` swaps in a new tokenizer instead of reconfiguring the shared one.
    """

    def __init__(self, folder: Path, config: ModelConfig, params: dict, tokenizer_path: Path) -> None:
        self.folder = Path(folder)
        self.config = config
        self.params = params
        self._tokenizer_path = tokenizer_path
        self._max_seq_length = config.max_seq_length
        self._tokenizer = _load_tokenizer(tokenizer_path, config.max_seq_length)
        self._lock = threading.Lock()
        self.threads = default_threads()

    @classmethod
    def from_folder(cls, folder: str | Path) -> SentenceEncoder:
        """Load a sentence-transformers model folder (config files, model.safetensors, tokenizer.json)."""
        folder = Path(folder)
        config = read_config(folder)
        params = load_params(folder / "model.safetensors", config.bert)
        return cls(folder, config, params, folder / "tokenizer.json")

    def __repr__(self) -> str:
        b = self.config.bert
        return (f"SentenceEncoder({str(self.folder)!r}, layers={b.num_hidden_layers}, dim={self.config.dim}, "
                f"max_seq_length={self.max_seq_length}, pooling={self.config.pooling_mode!r}, "
                f"normalize={self.config.normalize})")

    # ----------------------------------------------------------------------------------------------------------
    # Settings
    # ----------------------------------------------------------------------------------------------------------

    @property
    def max_seq_length(self) -> int:
        """Longest input in tokens, [CLS] and [SEP] included; longer texts are truncated."""
        return self._max_seq_length

    @max_seq_length.setter
    def max_seq_length(self, value: int) -> None:
        limit = self.config.bert.max_position_embeddings
        value = check_int(value, "max_seq_length", 2, limit, " (max_position_embeddings of config.json)")
        with self._lock:  # a fresh tokenizer: threads mid-encode keep the one they started with
            self._tokenizer = _load_tokenizer(self._tokenizer_path, value)
            self._max_seq_length = value

    @property
    def threads(self) -> int:
        """How many batches `encode` runs at once (default: the CPUs this process may use). Settable; 1 runs
        batches one after another, with BLAS using all cores for the matrix products."""
        return self._threads

    @threads.setter
    def threads(self, value: int) -> None:
        self._threads = check_int(value, "threads")

    def get_embedding_dimension(self) -> int:
        """Size of the sentence vectors (384 for all-MiniLM-L6-v2)."""
        return self.config.dim

    get_sentence_embedding_dimension = get_embedding_dimension  # the older sentence-transformers name

    # ----------------------------------------------------------------------------------------------------------
    # Tokenization
    # ----------------------------------------------------------------------------------------------------------

    def _check_texts(self, texts: list[Any]) -> list[str]:
        """Refuse what is not text: a non-str item is a TypeError, a lone surrogate a ValueError, by index."""
        for i, t in enumerate(texts):
            if not isinstance(t, str):
                raise TypeError(f"texts[{i}] is {type(t).__name__}, expected str"
                                + (" (decode bytes first, e.g. b.decode('utf-8'))" if isinstance(t, bytes) else ""))
            bad = _SURROGATE.search(t)  # the whole text, so the verdict does not depend on where truncation cuts
            if bad is not None:
                raise ValueError(f"texts[{i}] is not valid Unicode: a lone surrogate {bad.group()!r} at character "
                                 f"{bad.start()}; clean it first, e.g. "
                                 "text.encode('utf-8', 'replace').decode('utf-8')")
        if self.config.do_lower_case:
            texts = [t.lower() for t in texts]
        return texts

    def token_ids(self, texts: list[str]) -> list[list[int]]:
        """The token ids of each text, [CLS] … [SEP], truncated at max_seq_length, unpadded.

        Exactly the ids of the whole text, but a text far longer than max_seq_length tokens is first cut at a
        place where the tokenizer splits anyway (see `_precut`), so a 10 MB string costs what ~10 kB costs.
        """
        texts = self._check_texts(list(texts))
        if not texts:
            return []
        with self._lock:  # a consistent pair, even while another thread sets max_seq_length
            tokenizer, max_length = self._tokenizer, self._max_seq_length
        plan = self.__dict__.get("_cut_plan", False)
        if plan is False:  # read once from tokenizer.json; a race only computes the same plan twice
            plan = self.__dict__["_cut_plan"] = _cut_plan(tokenizer)
        return [_encode_ids(tokenizer, t, max_length, plan) for t in texts]

    def pad(self, ids: list[list[int]]) -> dict[str, np.ndarray]:
        """Pad id lists to the longest one: input_ids, attention_mask, token_type_ids, each int64 [B, L]."""
        L = max((len(x) for x in ids), default=0)
        input_ids = np.full((len(ids), L), self.config.bert.pad_token_id, dtype=np.int64)
        attention_mask = np.zeros((len(ids), L), dtype=np.int64)
        for i, x in enumerate(ids):
            input_ids[i, :len(x)] = x
            attention_mask[i, :len(x)] = 1
        return {"input_ids": input_ids, "attention_mask": attention_mask, "token_type_ids": np.zeros_like(input_ids)}

    def tokenize(self, texts: list[str]) -> dict[str, np.ndarray]:
        """Tokenize and pad a batch as sentence-transformers does: int64 arrays [B, L], L the longest text."""
        return self.pad(self.token_ids(texts))

    # ----------------------------------------------------------------------------------------------------------
    # Encoding
    # ----------------------------------------------------------------------------------------------------------

    def _forward(self, ids: list[list[int]], output_value: str) -> list[np.ndarray] | np.ndarray:
        """Model outputs for one batch of id lists: [B, dim] sentence vectors, or a list of [n_i, dim]."""
        batch = self.pad(ids)
        hidden = M.transformer(self.params, self.config, batch["input_ids"], batch["attention_mask"],
                               batch["token_type_ids"], all_layers=False)[-1]  # [B, L, H]
        if output_value == "token_embeddings":
            return [hidden[i, :len(x)] for i, x in enumerate(ids)]
        pooled = M.pool(hidden, batch["attention_mask"], self.config.pooling_mode)  # [B, H]
        return M.normalize(pooled) if self.config.normalize else pooled

    def _batches(self, ids: list[list[int]], batch_size: int) -> list[np.ndarray]:
        """Index arrays of the texts in each batch, longest texts first (sorting by token count cuts padding).

        A batch holds at most batch_size texts and at most _BATCH_TOKENS padded tokens (long texts come in smaller
        batches: activation memory stays bounded, and GEMMs of that many rows already run at full speed). With
        several threads, batches are made small enough that every thread gets one.
        """
        order = np.argsort([-len(x) for x in ids], kind="stable")
        size = max(1, min(batch_size, -(-len(order) // self.threads)))  # ceil(n / threads)
        batches, start = [], 0
        while start < len(order):
            longest = len(ids[order[start]])  # the first text of a batch is its longest
            n = max(1, min(size, _BATCH_TOKENS // max(longest, 1)))
            batches.append(order[start:start + n])
            start += n
        return batches

    def _run_batches(self, ids: list[list[int]], batch_size: int, output_value: str) -> Iterator[tuple[np.ndarray, Any]]:
        """(text indices, model outputs, one per index) for each batch.

        Texts with identical token ids are computed once, so duplicates get identical rows wherever they are.
        With `threads` > 1, batches run concurrently on that many threads, BLAS limited to one thread each:
        NumPy's elementwise loops (GELU, LayerNorm, softmax) run on one core only, so running two batches at once
        keeps both cores busy for all of the work, not only during matrix products.
        """
        first: dict[tuple[int, ...], int] = {}
        members: list[list[int]] = []  # members[u]: the indices of the texts whose ids are the u-th distinct ids
        for i, x in enumerate(ids):
            u = first.setdefault(tuple(x), len(first))
            if u == len(members):
                members.append([])
            members[u].append(i)
        distinct = [list(x) for x in first]
        batches = self._batches(distinct, batch_size)

        def run(uidx: np.ndarray) -> Any:
            return self._forward([distinct[u] for u in uidx], output_value)

        def spread(uidx: np.ndarray, result: Any) -> tuple[np.ndarray, Any]:
            idx = [i for u in uidx for i in members[u]]
            rows = [j for j, u in enumerate(uidx) for _ in members[u]]
            if isinstance(result, list):  # token embeddings: one array per text
                return np.array(idx), [result[j] for j in rows]
            return np.array(idx), result[rows]

        threads = min(self.threads, len(batches))
        if threads <= 1:
            small = sum(len(distinct[u]) for u in batches[0]) < _SMALL_TOKENS if batches else True
            with _blas_threads(1) if small and _busy() else nullcontext():
                for uidx in batches:
                    yield spread(uidx, run(uidx))
            return
        from concurrent.futures import ThreadPoolExecutor

        with _blas_threads(1), ThreadPoolExecutor(threads, thread_name_prefix="tinyminilm") as pool:
            for uidx, result in zip(batches, pool.map(run, batches)):
                yield spread(uidx, result)

    def encode(self, sentences: str | Iterable[str], batch_size: int = 32, show_progress_bar: bool | None = None,
               output_value: str = "sentence_embedding", precision: str = "float32", convert_to_numpy: bool = True,
               normalize_embeddings: bool = False, truncate_dim: int | None = None) -> Any:
        """Embed one text or many, as sentence-transformers' SentenceTransformer.encode.

        sentences: a str (returns a 1-D float32 array [dim]) or any iterable of str, a generator too (returns
        [n, dim], rows in input order; an empty input gives shape (0, dim)).
        batch_size: texts per forward pass; texts are grouped by token count so a batch holds little padding.
        show_progress_bar: True shows a tqdm bar counted in texts (needs tqdm); None and False show none.
        output_value: "sentence_embedding", or "token_embeddings" for a list of float32 [n_tokens_i, H] arrays
        (no padding rows; truncate_dim and normalize_embeddings do not apply to them, as in sentence-transformers).
        precision: "float32", or "int8" | "uint8" | "binary" | "ubinary", quantized as util.quantize_embeddings
        does over the whole output (int8/uint8 ranges come from these embeddings, so they need at least two
        rows; for stable buckets encode float32 and quantize with ranges from a large calibration set).
        convert_to_numpy: True gives one array; False a list of 1-D arrays (sentence-transformers' list form).
        normalize_embeddings: rescale to unit L2 norm (all-MiniLM-L6-v2 already ends in a Normalize module).
        truncate_dim: keep only the first k dimensions (Matryoshka-style), 1 <= k <= dim, applied before
        normalizing and quantizing.
        """
        single = isinstance(sentences, str)
        if isinstance(sentences, (bytes, bytearray)):
            raise TypeError("sentences is bytes; pass str (decode it first, e.g. b.decode('utf-8'))")
        if not single and not isinstance(sentences, Iterable):
            raise TypeError(f"sentences must be a str or an iterable of str, got {type(sentences).__name__}")
        check_int(batch_size, "batch_size")
        if output_value not in ("sentence_embedding", "token_embeddings"):
            raise ValueError(f"output_value must be 'sentence_embedding' or 'token_embeddings', got {output_value!r}")
        from .util import check_precision, quantize_embeddings
        check_precision(precision)
        dim = self.config.dim
        if truncate_dim is not None:
            check_int(truncate_dim, "truncate_dim", 1, dim)

        texts = [sentences] if single else list(sentences)
        if precision.endswith("int8") and len(texts) == 1:
            raise ValueError(f"precision={precision!r} takes its buckets from the min and max of the embeddings being "
                             "encoded, and a single text has no range; encode with precision='float32' and call "
                             "tinyminilm.util.quantize_embeddings(emb, precision, ranges=... or "
                             "calibration_embeddings=...) with ranges from a representative set")
        ids = self.token_ids(texts)
        progress = _progress(show_progress_bar, len(texts))
        tokens_out: list[np.ndarray | None] = [None] * len(texts)
        out = np.empty((len(texts), dim), dtype=np.float32)
        try:
            for idx, result in self._run_batches(ids, int(batch_size), output_value):
                if output_value == "token_embeddings":
                    for i, t in zip(idx, result):
                        tokens_out[i] = t
                else:
                    out[idx] = result
                if progress is not None:
                    progress.update(len(idx))
        finally:
            if progress is not None:
                progress.close()

        if output_value == "token_embeddings":
            if precision != "float32" and tokens_out:  # one set of int8 ranges shared by every text's tokens
                tokens_out = quantize_embeddings(tokens_out, precision)
            return tokens_out[0] if single else tokens_out
        if truncate_dim is not None:
            out = np.ascontiguousarray(out[:, :truncate_dim])
        if normalize_embeddings:
            out = M.normalize(out)
        if precision != "float32":
            out = quantize_embeddings(out, precision)
        if single:
            return out[0]
        return out if convert_to_numpy else list(out)

    def encode_iter(self, sentences: Iterable[str], batch_size: int = 32, chunk_size: int | None = None,
                    **kwargs: Any) -> Iterator[np.ndarray]:
        """Embed a stream of texts, yielding one vector per text (a 1-D array [dim]) in input order.

        The input is read chunk_size texts at a time (default 32 batches) and each chunk is encoded as a whole, so
        memory is bounded by one chunk, not by the corpus, and an unbounded generator is fine. Takes the keyword
        options of `encode`; with output_value="token_embeddings" it yields [n_tokens_i, H] arrays. int8/uint8
        precision is refused: each chunk would get its own buckets; quantize with util.quantize_embeddings and
        fixed ranges instead. Arguments are checked here, before the first text is read.
        """
        if isinstance(sentences, (str, bytes)):
            raise TypeError("encode_iter takes an iterable of str; for one text use encode(text)")
        if not isinstance(sentences, Iterable):
            raise TypeError(f"sentences must be an iterable of str, got {type(sentences).__name__}")
        check_int(batch_size, "batch_size")
        chunk_size = check_int(32 * int(batch_size) if chunk_size is None else chunk_size, "chunk_size")
        if "convert_to_numpy" in kwargs:
            raise TypeError("encode_iter yields one array per text; it takes no convert_to_numpy")
        from .util import check_precision

        precision = kwargs.get("precision", "float32")
        check_precision(precision)
        if precision.endswith("int8"):
            raise ValueError(f"encode_iter cannot quantize to {precision!r}: every chunk would get its own buckets. "
                             "Encode float32 and call tinyminilm.util.quantize_embeddings(emb, precision, "
                             "ranges=...) with ranges fixed from a calibration set")
        unknown = set(kwargs) - {"show_progress_bar", "output_value", "precision", "normalize_embeddings",
                                 "truncate_dim"}
        if unknown:
            raise TypeError(f"encode_iter got unexpected keyword arguments {sorted(unknown)}")
        return self._encode_chunks(iter(sentences), int(batch_size), chunk_size, kwargs)

    def _encode_chunks(self, texts: Iterator[str], batch_size: int, chunk_size: int,
                       kwargs: dict[str, Any]) -> Iterator[np.ndarray]:
        while True:
            chunk = list(itertools.islice(texts, chunk_size))
            if not chunk:
                return
            yield from self.encode(chunk, batch_size=batch_size, **kwargs)
            del chunk

    # ----------------------------------------------------------------------------------------------------------
    # Similarity, as SentenceTransformer.similarity / similarity_pairwise
    # ----------------------------------------------------------------------------------------------------------

    @property
    def similarity_fn_name(self) -> str:
        """"cosine" | "dot" | "euclidean" | "manhattan": the function `similarity` uses. Settable.

        Defaults to the model folder's config_sentence_transformers.json value, else "cosine", as
        sentence-transformers.
        """
        name = getattr(self, "_similarity_fn_name", None)
        if name is None:
            from .util import SIMILARITY_FN_NAMES

            name = "cosine"
            saved = self.folder / "config_sentence_transformers.json"
            if saved.is_file():
                try:
                    value = json.loads(saved.read_text(encoding="utf-8")).get("similarity_fn_name")
                except (ValueError, AttributeError):
                    value = None  # a malformed optional file: sentence-transformers' default
                if value in SIMILARITY_FN_NAMES:
                    name = value
            self._similarity_fn_name = name
        return name

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

    # ----------------------------------------------------------------------------------------------------------
    # For learners and per-layer tests
    # ----------------------------------------------------------------------------------------------------------

    def hidden_states(self, text: str) -> list[np.ndarray]:
        """The hidden states of one text after the embeddings and after each layer: [n_tokens, H] arrays."""
        batch = self.tokenize([text])
        return [h[0] for h in M.transformer(self.params, self.config, batch["input_ids"], batch["attention_mask"],
                                            batch["token_type_ids"])]


_SURROGATE = re.compile("[\ud800-\udfff]")  # what str allows and UTF-8 (hence the Rust tokenizer) does not

# A text longer than max_seq_length * this many characters is cut before tokenizing (the cut is checked: see
# _encode_ids). English averages ~4-5 characters per token, so 32 leaves a wide margin.
_PRECUT_CHARS_PER_TOKEN = 32


class _CutPlan(NamedTuple):
    """Where a text may be cut without changing its first tokens, for one tokenizer."""

    boundary: re.Pattern  # characters the pre-tokenizer always splits at, left alone by the normalizer
    space_run: re.Pattern  # runs of ASCII whitespace: one separator, however long
    word_limit: int  # WordPiece's max_input_chars_per_word: a longer word is one [UNK]


def _cut_plan(tokenizer) -> _CutPlan | None:
    """How texts may be pre-cut for this tokenizer, or None to always tokenize texts whole.

    Only for the BERT pipeline whose behaviour is known to be local: BertNormalizer (control characters removed,
    CJK ideographs spaced out, NFD + accent stripping, per-character lowercase) → BertPreTokenizer (split at
    whitespace and punctuation) → WordPiece. Cutting just before an ASCII space/tab/newline, ASCII punctuation, the
    ideographic space, a CJK comma or full stop (or a CJK ideograph, when the normalizer spaces them out) keeps
    every earlier word whole and
    normalized as in the full text: these characters are unchanged by the normalizer, are NFD starters (so no
    combining-mark reordering crosses them) and are split at by the pre-tokenizer. Characters that occur in an
    added token such as "[MASK]" are never cut at, so no added token is broken.
    """
    import string

    spec = json.loads(tokenizer.to_str())
    norm, pre, wp = spec.get("normalizer"), spec.get("pre_tokenizer") or {}, spec.get("model") or {}
    if ((norm is not None and norm.get("type") != "BertNormalizer") or pre.get("type") != "BertPreTokenizer"
            or wp.get("type") != "WordPiece"):
        return None
    added = "".join(t.get("content", "") for t in spec.get("added_tokens") or [])
    if any(c.isspace() for c in added):
        return None
    # ASCII whitespace and punctuation, the ideographic space and a few CJK punctuation marks (NFD leaves them be)
    cut_at = re.escape("".join(c for c in " \t\n\r\u3000\u3001\u3002\uff0c\uff01\uff1f" + string.punctuation
                               if c not in added))
    if norm is not None and norm.get("handle_chinese_chars", True):
        cut_at += "\u3400-\u4dbf\u4e00-\u9fff"  # CJK Unified Ideographs (+ Extension A): always a word of their own
    return _CutPlan(re.compile(f"[{cut_at}]"), re.compile("[ \t\n\r]{2,}"),
                    int(wp.get("max_input_chars_per_word", 100)))


_ALNUM = "0123456789ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz"
_ALNUM_TAIL = re.compile("[0-9A-Za-z]*")


def _precut(text: str, limit: int, plan: _CutPlan | None) -> tuple[str, int | None]:
    """A shorter text whose tokens start with the tokens of `text`: (short, cut).

    cut=None: `short` has the same tokens as `text`, all of them. Otherwise `short` is `text[:cut]`, cut just
    before a boundary character at or after `limit`, so its tokens are the first tokens of `text`; the caller
    checks that there are enough of them. Runs of ASCII whitespace are squeezed to one space (the pre-tokenizer drops them).
    A text with no boundary after `limit` is returned whole (squeezed) — unless it ends in one long run of ASCII
    letters and digits, which is a single word longer than WordPiece's limit, hence one [UNK] however long.
    """
    if plan is None or len(text) <= limit:
        return text, None
    m = plan.boundary.search(text, limit)
    if m is not None:
        return plan.space_run.sub(" ", text[:m.start()]), m.start()
    if _ALNUM_TAIL.fullmatch(text, limit):  # text[limit:] holds letters and digits only
        start = len(text[:limit].rstrip(_ALNUM))  # where that run begins
        keep = start + plan.word_limit + 1  # still longer than word_limit: still one [UNK]
        if keep < len(text):
            return plan.space_run.sub(" ", text[:keep]), None
    return plan.space_run.sub(" ", text), None


def _encode_ids(tokenizer, text: str, max_length: int, plan: _CutPlan | None) -> list[int]:
    """The ids of `text`, [CLS] … [SEP], truncated at max_length, tokenizing no more of it than needed.

    A pre-cut text is accepted only if its ids fill max_length (then they are the full text's first tokens, and
    truncation keeps nothing else); otherwise the cut moves out (4x, and past the last cut), until the text is
    taken whole.
    One text per `encode` call, never `encode_batch`: that uses the Rust thread pool, which a forked child
    inherits without its threads when TOKENIZERS_PARALLELISM=true — and then hangs.
    """
    try:
        limit = max_length * _PRECUT_CHARS_PER_TOKEN
        while True:
            short, cut = _precut(text, limit, plan)
            ids = tokenizer.encode(short, add_special_tokens=True).ids
            if cut is None or len(ids) >= max_length:
                return ids
            limit = max(4 * limit, cut + 1)
            if limit >= len(text):  # the last round takes the whole text, its whitespace runs squeezed
                text = plan.space_run.sub(" ", text)
    except Exception as e:  # tokenizers raises bare Exceptions; say which tokenizer failed on what
        raise TokenizerError(f"the tokenizer failed on a text of {len(text)} characters ({e})") from None


def default_threads() -> int:
    """The number of CPUs this process may run on (its affinity mask, where the OS has one)."""
    import os

    try:
        return max(1, len(os.sched_getaffinity(0)))
    except AttributeError:  # macOS, Windows
        return max(1, os.cpu_count() or 1)


_BATCH_TOKENS = 1024  # padded tokens per batch at most
_SMALL_TOKENS = 64  # a lone batch with fewer tokens runs on one BLAS thread when the machine is busy (_busy)

def _busy() -> bool:
    """True when other runnable threads already occupy every CPU (Linux: /proc/loadavg's running count, now).

    Then BLAS threads that spin while waiting for a core make a small product ~10× slower (measured: a 9-token
    query took 300 ms instead of 25), and one BLAS thread is the better choice.
    """
    try:
        with open("/proc/loadavg") as f:
            running = int(f.read().split()[3].split("/")[0])  # "0.42 0.50 0.61 3/412 9876": 3 runnable now
    except (OSError, ValueError, IndexError):  # not Linux
        return False
    return running - 1 >= default_threads()  # minus this thread


_blas_controller: list = []  # one threadpoolctl controller per process: building one scans every loaded library


def _blas_threads(n: int):
    """A context in which BLAS uses n threads (threadpoolctl), or does nothing if threadpoolctl is missing."""
    try:
        from threadpoolctl import ThreadpoolController
    except ImportError:
        return nullcontext()
    if not _blas_controller:
        _blas_controller.append(ThreadpoolController())
    return _blas_controller[0].limit(limits=n, user_api="blas")


def _progress(show: bool | None, total: int):
    if not show:
        return None
    try:
        from tqdm.auto import tqdm
    except ImportError:
        raise ImportError("show_progress_bar=True needs tqdm: pip install tqdm") from None
    return tqdm(total=total, desc="Encoding", unit="text")
