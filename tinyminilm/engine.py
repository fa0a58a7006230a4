"""The engine of a sentence encoder: a loaded model and its two-level API, as bert.cpp's `encode = tokenize + eval`.

Each step is a public method usable alone:

    features = model.tokenize(texts)   # texts -> int64 input_ids, attention_mask, token_type_ids [B, L]
    vectors = model.forward(features)  # one padded batch -> float32 [B, dim] (or token vectors, hidden states)
    out = model.finish(vectors, truncate_dim=None, normalize_embeddings=False, precision="float32")

`SentenceEncoder.encode` (tinyminilm/encoder.py) is exactly these steps, with duplicates computed once and texts
batched by length on every core between tokenize and forward. Front ends (the server, explain, the CLI, the
adapters) use only these methods. The work is done by:
  tokenization.py  texts -> token ids (truncated at max_seq_length, padded per batch)
  fast.py          the forward pass (model.py's textbook functions, written for speed), ending in
                   model.pool_and_normalize: the model's own Pooling and Normalize modules
  util             quantization
"""

from __future__ import annotations

import threading
from collections.abc import Iterable, Mapping
from pathlib import Path
from typing import Any, TypeVar

import numpy as np

from . import fast
from . import model as textbook
from .config import BertConfig, ModelConfig, read_config
from .errors import ArgumentError, ArgumentTypeError, check_choice, check_int
from .hub import ModelSource, resolve
from .tokenization import Tokenizer
from .weights import load_params

OUTPUT_VALUES = ("sentence_embedding", "token_embeddings", "pooled")  # what encode and forward give
FORWARD_OUTPUTS = (*OUTPUT_VALUES, "hidden_states")  # forward only: every layer's token vectors

E = TypeVar("E", bound="Engine")


class Engine:
    """A loaded sentence-transformers BERT model with its two-level API: tokenize -> forward -> finish.

    The base of `SentenceEncoder`, which adds encode and the rest of sentence-transformers' conventions. Safe to
    share between threads: running the model touches no mutable state, and changing `max_seq_length` swaps in a
    new tokenizer instead of reconfiguring the shared one.
    """

    def __init__(self, folder: Path, config: ModelConfig, params: dict, tokenizer_path: Path,
                 source: ModelSource | None = None) -> None:
        self.folder = Path(folder)
        self.source = source or ModelSource(self.folder)  # which model this is (Hub id, revision), from hub.resolve
        self.config = config
        self.params = params
        self.tokenizer = Tokenizer(tokenizer_path, config.max_seq_length, config.do_lower_case,
                                   config.bert.pad_token_id)
        self._lock = threading.Lock()

    @classmethod
    def from_folder(cls: type[E], folder: str | Path, source: ModelSource | None = None) -> E:
        """Load a sentence-transformers model folder (config files; model.safetensors and tokenizer.json in the
        Transformer module's path, the folder itself as a rule); `source` is what `hub.resolve` found it as
        (default: just this folder)."""
        folder = Path(folder)
        config = read_config(folder)
        transformer = folder / config.transformer_path
        params = load_params(transformer / "model.safetensors", config.bert)
        return cls(folder, config, params, transformer / "tokenizer.json", source)

    @classmethod
    def load(cls: type[E], model: Any = None, *, revision: str | None = None, cache_folder: Any = None,
             local_files_only: bool = False) -> E:
        """The model `model` names, found by the one rule of `tinyminilm.hub.resolve` (a folder, the pinned default,
        or any Hub id from the Hugging Face cache or the Hub) and loaded with that source recorded."""
        source = resolve(model, revision=revision, cache_folder=cache_folder, local_files_only=local_files_only)
        return cls.from_folder(source.folder, source=source)

    def __repr__(self) -> str:
        b = self.config.bert
        return (f"{type(self).__name__}({self.source.label}, layers={b.num_hidden_layers}, dim={self.config.dim}, "
                f"max_seq_length={self.max_seq_length}, pooling={self.config.pooling_mode!r}, "
                f"normalize={self.config.normalize})")

    # ----------------------------------------------------------------------------------------------------------
    # Settings
    # ----------------------------------------------------------------------------------------------------------

    @property
    def max_seq_length(self) -> int:
        """Longest input in tokens, [CLS] and [SEP] included; longer texts are truncated."""
        return self.tokenizer.max_length

    @max_seq_length.setter
    def max_seq_length(self, value: int) -> None:
        limit = self.config.bert.max_position_embeddings
        value = check_int(value, "max_seq_length", 2, limit, " (max_position_embeddings of config.json)")
        with self._lock:  # a fresh tokenizer: threads mid-encode keep the one they started with
            self.tokenizer = self.tokenizer.with_max_length(value)

    def get_embedding_dimension(self) -> int:
        """Size of the sentence vectors (384 for all-MiniLM-L6-v2)."""
        return self.config.dim

    get_sentence_embedding_dimension = get_embedding_dimension  # the older sentence-transformers name

    @property
    def pooling_mode(self) -> str:
        """How the model's Pooling module makes one vector of the token vectors (1_Pooling/config.json):
        "mean" | "cls" | "max" | "mean_sqrt_len"."""
        return self.config.pooling_mode

    def describe(self) -> dict[str, Any]:
        """What this model is, for people and tools (`tinyminilm info`, the server's /info): its Hub id and revision
        (None for a folder given by path), folder, shape, pooling and limits, as plain JSON-ready values."""
        b = self.config.bert
        return {"repo_id": self.source.repo_id, "revision": self.source.revision, "name": self.source.name,
                "folder": str(Path(self.folder).resolve()), "model_type": "bert", "layers": b.num_hidden_layers,
                "hidden_size": b.hidden_size, "heads": b.num_attention_heads, "vocab_size": b.vocab_size,
                "dim": self.config.dim, "max_seq_length": self.max_seq_length,
                "max_position_embeddings": b.max_position_embeddings, "pooling": self.config.pooling_mode,
                "normalize": self.config.normalize}

    # ----------------------------------------------------------------------------------------------------------
    # Level 1, texts -> token ids
    # ----------------------------------------------------------------------------------------------------------

    def token_ids(self, texts: list[str]) -> list[list[int]]:
        """The token ids of each text, [CLS] … [SEP], truncated at max_seq_length, unpadded (see
        tinyminilm.tokenization). A non-str item is a TypeError, a lone surrogate a ValueError, by index."""
        return self.tokenizer.ids(list(texts))

    def pad(self, ids: list[list[int]]) -> dict[str, np.ndarray]:
        """Pad id lists to the longest one: input_ids, attention_mask, token_type_ids, each int64 [B, L]."""
        return self.tokenizer.pad(ids)

    def tokenize(self, texts: list[str]) -> dict[str, np.ndarray]:
        """Tokenize and pad a batch as sentence-transformers does: int64 arrays [B, L], L the longest text; the
        features `forward` takes."""
        return self.pad(self.token_ids(texts))

    def untruncated_length(self, text: str) -> int:
        """Token count of `text` with [CLS] and [SEP] but without truncation: more than max_seq_length means the
        model sees only the first max_seq_length tokens."""
        if not isinstance(text, str):
            raise ArgumentTypeError(f"text is {type(text).__name__}, expected str")
        return self.tokenizer.untruncated_length(text)

    def prompt_length(self, prompt: str) -> int:
        """How many leading tokens a prompt takes in front of a text, as sentence-transformers 6.2 counts them: the
        prompt's own ids with the template's special tokens, less a last one that is special ([SEP], </s>). The
        "prompt_length" of `forward`'s features."""
        if not isinstance(prompt, str):
            raise ArgumentTypeError(f"prompt is {type(prompt).__name__}, expected str")
        ids = self.tokenizer.ids([prompt], "prompt")[0]
        return len(ids) - (bool(ids) and ids[-1] in self.tokenizer.special_ids)

    def convert_ids_to_tokens(self, ids: Iterable[int]) -> list[str]:
        """The vocabulary's token of each id, as transformers' tokenizers name it: [101, 7592] -> ["[CLS]", "hello"]."""
        return [self.tokenizer.backend.id_to_token(int(i)) for i in ids]

    # ----------------------------------------------------------------------------------------------------------
    # Level 2, token ids -> vectors: the model itself
    # ----------------------------------------------------------------------------------------------------------

    def forward(self, features: Mapping[str, np.ndarray], output_value: str = "sentence_embedding",
                attentions: list | None = None) -> np.ndarray | list[np.ndarray]:
        """Run the model on one padded batch (bert.cpp's `eval`): the fast forward pass of tinyminilm/fast.py.

        features: input_ids and attention_mask, integer arrays [B, L] (token_type_ids too, optional), as
        `tokenize` gives them. Each row is computed as if alone: its padding and the other rows change nothing.
        An int "prompt_length" among them, as in sentence-transformers' features, is the number of leading tokens
        ([CLS] and a prompt, see `prompt_length`) that pooling skips when the model's Pooling module has
        include_prompt false (model.exclude_prompt); with include_prompt true it changes nothing.
        output_value:
          "sentence_embedding": float32 [B, dim], what the model's modules give: Pooling, then Normalize if
            modules.json has it (model.pool_and_normalize). encode's vectors before `finish`.
          "pooled": float32 [B, dim], the Pooling module's vectors, before the model's Normalize (the same as
            "sentence_embedding" for a model without one).
          "token_embeddings": float32 [B, L, H], the last layer's token vectors; rows where attention_mask is 0
            are padding (encode leaves them out).
          "hidden_states": a list of 1 + num_hidden_layers float32 [B, L, H], after the embeddings and after each
            layer.
        attentions: if a list, each layer's attention weights, float32 [B, n_head, L, L], are appended to it.
        The batch runs in the calling thread, with NumPy's BLAS threads as they are set (encode spreads its own
        batches over the cores: see tinyminilm.batching).
        """
        check_choice(output_value, "output_value", FORWARD_OUTPUTS)
        _check_features(features, self.config.bert)
        return self._forward(features, output_value, attentions)

    def _forward(self, features: Mapping[str, np.ndarray], output_value: str,
                 attentions: list | None = None) -> np.ndarray | list[np.ndarray]:
        """`forward` without its checks: what encode runs on each of its batches (built by `pad`, valid)."""
        mask = features["attention_mask"]
        pool_mask = mask  # [B, L]: the tokens pooling reads
        if features.get("prompt_length") and not self.config.include_prompt:
            pool_mask = fast.exclude_prompt(mask, features["prompt_length"])
        hidden = fast.transformer(self.params, self.config, features["input_ids"], mask,
                                  features.get("token_type_ids"), attentions,
                                  all_layers=output_value == "hidden_states")  # [B, L, H] each
        if output_value == "hidden_states":
            return hidden
        if output_value == "token_embeddings":
            return hidden[-1]
        if output_value == "pooled":
            return fast.pool(hidden[-1], pool_mask, self.config.pooling_mode)  # [B, dim]
        return fast.pool_and_normalize(hidden[-1], pool_mask, self.config)  # [B, dim]

    # ----------------------------------------------------------------------------------------------------------
    # Level 3, vectors -> what encode returns
    # ----------------------------------------------------------------------------------------------------------

    def finish(self, vectors: np.ndarray | list[np.ndarray], truncate_dim: int | None = None,
               normalize_embeddings: bool = False, precision: str = "float32") -> np.ndarray | list[np.ndarray]:
        """encode's last step, in sentence-transformers' order: truncate, then normalize, then quantize.

        vectors: float32 [n, dim] sentence vectors (forward's "sentence_embedding" or "pooled"); or a list of
        token-embedding arrays [n_i, H], of which only precision applies (as in sentence-transformers).
        truncate_dim: keep only the first k dimensions (Matryoshka-style), 1 <= k <= dim; None keeps all (unlike
        encode, finish does not fall back to self.truncate_dim).
        normalize_embeddings: rescale each row to unit L2 norm (a zero row stays zero).
        precision: "float32" (returned as is), or "int8" | "uint8" | "binary" | "ubinary", quantized as
        util.quantize_embeddings does over all of `vectors` (int8/uint8 ranges from their min and max).
        Returns float32 [n, k], int8/uint8 [n, k], or packed bits [n, ceil(k / 8)].
        """
        from .util import check_precision, quantize_embeddings

        check_precision(precision)
        if isinstance(vectors, list):  # token embeddings: one set of int8 ranges shared by every text's tokens
            return quantize_embeddings(vectors, precision) if precision != "float32" and vectors else vectors
        if not isinstance(vectors, np.ndarray) or vectors.ndim != 2:
            raise ArgumentTypeError(f"vectors must be a 2-D array [n, dim], got {type(vectors).__name__} "
                                    f"{getattr(vectors, 'shape', '')}; for one vector pass v[None]")
        if truncate_dim is not None:
            check_int(truncate_dim, "truncate_dim", 1, vectors.shape[1], " (the vectors' dimension)")
            vectors = np.ascontiguousarray(vectors[:, :truncate_dim])
        if normalize_embeddings:
            vectors = fast.normalize(vectors)
        return quantize_embeddings(vectors, precision) if precision != "float32" else vectors

    # ----------------------------------------------------------------------------------------------------------
    # For learners and per-layer tests: the textbook forward pass of model.py
    # ----------------------------------------------------------------------------------------------------------

    def hidden_states(self, text: str) -> list[np.ndarray]:
        """The hidden states of one text after the embeddings and after each layer: [n_tokens, H] arrays,
        computed by the textbook functions of tinyminilm/model.py."""
        batch = self.tokenize([text])
        return [h[0] for h in textbook.transformer(self.params, self.config, batch["input_ids"],
                                                   batch["attention_mask"], batch["token_type_ids"])]


def _check_features(features: Any, bert: BertConfig) -> None:
    """forward's checks of a batch made by hand: the arrays and values the model can take (`tokenize` makes such
    batches; encode's batches skip these checks)."""
    if not isinstance(features, Mapping) or "input_ids" not in features or "attention_mask" not in features:
        raise ArgumentTypeError("features must be a dict with input_ids and attention_mask [B, L] (token_type_ids "
                                "optional), as model.tokenize(texts) gives")
    shape = np.shape(features["input_ids"])
    limits = {"input_ids": bert.vocab_size, "attention_mask": 2, "token_type_ids": bert.type_vocab_size}
    for name in [n for n in limits if n in features]:
        a = features[name]
        if not isinstance(a, np.ndarray) or a.dtype.kind not in "iu" or a.ndim != 2:
            raise ArgumentTypeError(f"features[{name!r}] must be a 2-D integer array [B, L], got "
                                    f"{type(a).__name__} {getattr(a, 'dtype', '')}{np.shape(a)}")
        if a.shape != shape:
            raise ArgumentError(f"features[{name!r}] has shape {a.shape} and input_ids {shape}; they must match")
        if a.size and (a.min() < 0 or a.max() >= limits[name]):
            raise ArgumentError(f"features[{name!r}] holds values outside 0 to {limits[name] - 1} (vocab_size, "
                                "type_vocab_size of config.json; attention_mask is 0 or 1); build it with "
                                "model.tokenize(texts)")
    length = features.get("prompt_length", 0)
    if not isinstance(length, (int, np.integer)) or isinstance(length, bool) or length < 0:
        raise ArgumentTypeError(f"features['prompt_length'] must be an int >= 0 (model.prompt_length(prompt)), got "
                                f"{length!r}")
    if not (shape[0] >= 1 and 1 <= shape[1] <= bert.max_position_embeddings):
        raise ArgumentError(f"features has shape {shape}; forward needs at least one text and 1 to "
                            f"{bert.max_position_embeddings} tokens (max_position_embeddings of config.json)")
