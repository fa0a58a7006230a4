"""CrossEncoder: scores for pairs of texts, with sentence-transformers 6.2's CrossEncoder API, in NumPy.

    from tinyminilm import CrossEncoder
    model = CrossEncoder("path/to/ms-marco-MiniLM-L6-v2")          # a BertForSequenceClassification folder
    model.predict([("How many people live in Berlin?", "Berlin has 3.5 million inhabitants.")])   # float32 [1]
    model.rank("How many people live in Berlin?", documents, top_k=3)    # [{"corpus_id", "score"}, ...]

A thin facade, as encoder.py is for sentence vectors:
  tokenization.py  pairs -> ids and token types, [CLS] a [SEP] b [SEP], truncated "longest_first" at max_length
  batching.py      duplicate pairs computed once, batches sorted by length, batches run on the CPU's cores
  fast.py          the forward pass and the head: model.py's sequence_classification (BERT -> pooler -> classifier)
  activations.py   sigmoid, identity, … on the logits, by the names sentence-transformers saves and users write
  here             which activation, the output shapes, `predict` and `rank`
"""

from __future__ import annotations

import logging
import os
from collections.abc import Callable, Iterable, Sequence
from contextlib import closing
from typing import Any

import numpy as np

from . import batching, fast
from .activations import ACTIVATIONS, TORCH_NAMES, activation_function, identity, sigmoid
from .cross_config import CrossEncoderConfig, read_cross_encoder_config
from .errors import (ArgumentError, ArgumentTypeError, ConfigError, check_int, check_texts, check_torch_only_options,
                     lone_surrogate)
from .porting import refuse_torch_only
from .progress import progress_bar, tqdm_class
from .tokenization import Tokenizer
from .weights import load_params

log = logging.getLogger("tinyminilm")

# --------------------------------------------------------------------------------------------------------------
# The cross-encoder
# --------------------------------------------------------------------------------------------------------------

_LEGACY_POSITIONAL = ("num_labels", "max_length", "activation_fn", "device")  # before sentence-transformers 5.4
_RENAMED = {"model_name": "model_name_or_path", "cache_dir": "cache_folder", "default_activation_function":
            "activation_fn", "automodel_args": "model_kwargs", "tokenizer_args": "processor_kwargs",
            "tokenizer_kwargs": "processor_kwargs", "config_args": "config_kwargs"}


class CrossEncoder:
    """A BertForSequenceClassification cross-encoder (e.g. cross-encoder/ms-marco-MiniLM-L6-v2) in NumPy.

    Constructed as sentence_transformers.CrossEncoder(...) is. model_name_or_path: the model's folder (a
    transformers checkpoint, or one saved by sentence-transformers), or a Hub id as tinyminilm.hub resolves it (a
    name without "/" means cross-encoder/NAME, as in sentence-transformers).
    Honoured as in sentence-transformers: max_length (default: the model's, see cross_config.read_cross_encoder_config),
    activation_fn (see `activation_function`; default: the model's saved one, else sigmoid for one label and
    identity for more), prompts, default_prompt_name, revision (a Hub id's branch, tag or commit; a folder ignores
    it), cache_folder, local_files_only, num_labels (must be the checkpoint's), trust_remote_code (lets a saved
    activation that is not torch's through, only to be refused: no code is ever run). Accepted because they change
    nothing here: device None or "cpu", token, keep_in_fp32_modules (everything is float32), classifier_dropout.
    Refused with the reason: another device, backend "onnx" / "openvino", modules, non-empty model_kwargs /
    processor_kwargs / config_kwargs, and model_card_data. Arguments after model_name_or_path may still be given
    by position in the older order (num_labels, max_length, activation_fn, device), and the older names (cache_dir,
    default_activation_function, …), as sentence-transformers still allows with a warning.
    One instance may be shared by threads; setting max_length swaps in a new tokenizer.
    """

    def __init__(self, model_name_or_path: str | os.PathLike | None = None, *args: Any, modules: Any = None,
                 device: str | None = None, prompts: dict[str, str] | None = None,
                 default_prompt_name: str | None = None, cache_folder: str | os.PathLike | None = None,
                 trust_remote_code: bool = False, revision: str | None = None, local_files_only: bool = False,
                 token: bool | str | None = None, model_kwargs: dict | None = None,
                 processor_kwargs: dict | None = None, config_kwargs: dict | None = None, model_card_data: Any = None,
                 backend: str = "torch", num_labels: int | None = None, max_length: int | None = None,
                 activation_fn: Any = None, keep_in_fp32_modules: list[str] | None = None, **kwargs: Any) -> None:
        if args or kwargs:  # the older positions and names: again with the new names (a new name given wins)
            given = {k: v for k, v in locals().items() if k not in ("self", "args", "kwargs", "__class__")}
            legacy = _legacy_arguments(args, kwargs)
            self.__init__(**given | {k: v for k, v in legacy.items() if given.get(k) is None})
            return
        refuse_torch_only(device, backend, model_card_data, model_kwargs=model_kwargs,
                          processor_kwargs=processor_kwargs, config_kwargs=config_kwargs)
        if modules is not None:
            raise ArgumentError("modules: torch modules cannot run here; pass the folder of a saved model instead")
        if keep_in_fp32_modules is not None and (not isinstance(keep_in_fp32_modules, (list, tuple)) or not all(
                isinstance(m, str) for m in keep_in_fp32_modules)):
            raise ArgumentError(f"keep_in_fp32_modules must be a list of module names, got {keep_in_fp32_modules!r}")
        explicit = None if activation_fn is None else activation_function(activation_fn)
        self.source = model_source(model_name_or_path, revision, cache_folder, local_files_only)
        self.folder = self.source.folder
        self.config: CrossEncoderConfig = read_cross_encoder_config(self.folder)
        if num_labels is not None and num_labels != self.config.num_labels:
            raise ArgumentError(f"num_labels={num_labels!r}: the checkpoint's classifier has {self.config.num_labels} "
                                "label(s); another number would need a new, untrained head. Leave num_labels out")
        self.params = load_params(self.folder / "model.safetensors", self.config.bert, self.config.num_labels)
        self.tokenizer = Tokenizer(self.folder / "tokenizer.json", self.config.max_length, self.config.do_lower_case,
                                   self.config.bert.pad_token_id)
        if max_length is not None:
            self.max_length = max_length
        self.prompts: dict[str, str] = {**self.config.prompts, **_check_prompts(prompts)}
        self.default_prompt_name = default_prompt_name or self.config.default_prompt_name
        if self.default_prompt_name is not None and self.default_prompt_name not in self.prompts:
            raise ArgumentError(f"default_prompt_name {self.default_prompt_name!r} is not one of the prompts "
                                f"{sorted(self.prompts)}")
        self._activation = explicit if explicit is not None else self._saved_activation(trust_remote_code)
        self.threads = batching.default_threads()

    def _saved_activation(self, trust_remote_code: bool) -> Callable[[np.ndarray], np.ndarray]:
        """The default activation, as sentence-transformers 6.2 picks it (the order of config.activation_paths)."""
        for where, path in self.config.activation_paths:
            if not (trust_remote_code or path.startswith("torch.")):  # sentence-transformers skips it, warning
                log.warning("%s: activation %r is not a torch class and trust_remote_code is off; skipping it, as "
                            "sentence-transformers does", where, path)
                continue
            key = TORCH_NAMES.get(path)
            if key is None:
                raise ConfigError(f"{where}: activation {path!r} is not one tinyminilm has (torch's Sigmoid, Identity, "
                                  "Tanh, Softmax; no code is ever run); pass activation_fn= to choose one")
            return ACTIVATIONS[key]
        return sigmoid if self.config.num_labels == 1 else identity

    def __repr__(self) -> str:
        return (f"CrossEncoder({self.source.label}, layers={self.config.bert.num_hidden_layers}, "
                f"num_labels={self.num_labels}, max_length={self.max_length})")

    # ----------------------------------------------------------------------------------------------------------
    # Settings
    # ----------------------------------------------------------------------------------------------------------

    @property
    def num_labels(self) -> int:
        """Outputs per pair: 1 for a relevance score (ms-marco-MiniLM-L6-v2), more for a classifier."""
        return self.config.num_labels

    @property
    def max_length(self) -> int:
        """Longest pair in tokens, [CLS] and both [SEP] included; longer pairs are cut "longest_first". Settable."""
        return self.tokenizer.max_length

    @max_length.setter
    def max_length(self, value: int) -> None:
        limit = self.config.bert.max_position_embeddings
        value = check_int(value, "max_length", 3, limit, " (3 special tokens to max_position_embeddings)")
        self.tokenizer = self.tokenizer.with_max_length(value)  # threads mid-predict keep the one they started with

    max_seq_length = max_length  # sentence-transformers 6's name for it

    def check_reranker(self, user: str = "a reranker") -> None:
        """An ArgumentError unless this model gives one relevance score per pair (one label), as ranking needs; `user`
        names who asks (rank, --rerank-model, ...). The one rule for rank, the server and `tinyminilm evaluate`."""
        if self.num_labels != 1:
            raise ArgumentError(f"{user}: this cross-encoder has {self.num_labels} labels "
                                f"({', '.join(self.config.id2label.values())}); ranking needs one relevance score per "
                                "pair: pass a one-label cross-encoder such as cross-encoder/ms-marco-MiniLM-L6-v2, or "
                                "score pairs with predict")

    @property
    def activation_fn(self) -> Callable[[np.ndarray], np.ndarray]:
        """The activation `predict` applies to the logits by default. Settable, as `activation_function` takes it."""
        return self._activation

    @activation_fn.setter
    def activation_fn(self, value: Any) -> None:
        self._activation = activation_function(value)

    @property
    def threads(self) -> int:
        """How many batches run at once, each on one core (default: the CPUs this process may use). Settable."""
        return self._threads

    @threads.setter
    def threads(self, value: int) -> None:
        self._threads = check_int(value, "threads")

    # ----------------------------------------------------------------------------------------------------------
    # The two levels: pairs -> token ids -> logits
    # ----------------------------------------------------------------------------------------------------------

    def tokenize(self, pairs: Sequence[tuple[str, str]]) -> dict[str, np.ndarray]:
        """Tokenize and pad pairs as sentence-transformers does: input_ids, attention_mask, token_type_ids, each
        int64 [B, L] (L the longest pair)."""
        return self.tokenizer.pad_pairs(self.tokenizer.pair_ids(_as_pairs(pairs)[0]))

    def token_ids(self, pairs: Sequence[tuple[str, str]]) -> list[list[int]]:
        """The token ids of each pair, `[CLS] a [SEP] b [SEP]`, truncated at max_length as predict sees them,
        unpadded (the pair-shaped twin of SentenceEncoder.token_ids, e.g. to count tokens)."""
        return [ids for ids, _ in self.tokenizer.pair_ids(_as_pairs(pairs)[0])]

    def untruncated_length(self, pair: tuple[str, str]) -> int:
        """Token count of the pair without truncation: more than max_length means predict cuts it."""
        pairs, single = _as_pairs(pair, "pair")
        if not single:
            raise ArgumentTypeError("pair must be one (text, text) pair; for many, call it once per pair")
        (a, b), = pairs
        return self.tokenizer.untruncated_pair_length(a, b)

    def _logits(self, pairs: list[tuple[str, str]], batch_size: int, progress: Any) -> np.ndarray:
        """float32 [n, num_labels]: the head's outputs for every pair, in input order, each distinct pair once."""
        tokenizer = self.tokenizer
        encoded = tokenizer.pair_ids(pairs, "inputs")
        _, members = batching.deduplicate([ids + types for ids, types in encoded])  # both: a [SEP] inside a text
        distinct = [encoded[m[0]] for m in members]
        batches = batching.plan_batches([ids for ids, _ in distinct], batch_size, self.threads)
        out = np.empty((len(pairs), self.num_labels), dtype=np.float32)
        run = lambda uidx: fast.sequence_classification(  # noqa: E731
            self.params, self.config, **tokenizer.pad_pairs([distinct[u] for u in uidx]))
        with closing(batching.run_batches(batches, run, self.threads)) as results:
            for uidx, logits in results:
                for j, u in enumerate(uidx):
                    out[members[u]] = logits[j]
                    if progress is not None:
                        progress.update(len(members[u]))
        return out

    # ----------------------------------------------------------------------------------------------------------
    # predict and rank
    # ----------------------------------------------------------------------------------------------------------

    def predict(self, inputs: Any = None, prompt_name: str | None = None, prompt: str | None = None,
                batch_size: int = 32, show_progress_bar: bool | None = None, activation_fn: Any = None,
                apply_softmax: bool | None = False, convert_to_numpy: bool = True, convert_to_tensor: bool = False,
                device: str | None = None, pool: None = None, chunk_size: int | None = None, **kwargs: Any) -> Any:
        """Scores of text pairs, as sentence-transformers' CrossEncoder.predict (same arguments, same order).

        inputs: one (text, text) pair — returns a float32 scalar, or [num_labels] — or a list of pairs (a 2-D NumPy
        string array too), returning float32 [n] for one label and [n, num_labels] otherwise, in input order.
        prompt_name, prompt: text put in front of each pair's first text (self.prompts; none by default).
        activation_fn: applied to the logits [B, num_labels] (default self.activation_fn; see activation_function).
        apply_softmax: with more than one label, a softmax over the labels after the activation.
        convert_to_numpy / convert_to_tensor: one array (there is no torch: a tensor is this array); False for
        both gives a list with one entry per pair. show_progress_bar: True shows a tqdm bar counted in pairs.
        device, pool, chunk_size: as in SentenceEncoder.encode (CPU only; batches already run on every core).
        Accepted with a warning, as sentence-transformers does: sentences= (for inputs), activation_fct=, num_workers=.
        """
        inputs, activation_fn = _legacy_predict_arguments(inputs, activation_fn, kwargs)
        pairs, single = _as_pairs(inputs)
        check_int(batch_size, "batch_size")
        check_torch_only_options(device, pool, chunk_size)
        if show_progress_bar:
            tqdm_class()
        activation = self._activation if activation_fn is None else activation_function(activation_fn)
        prompt = self._resolve_prompt(prompt, prompt_name)
        if prompt:
            pairs = [(prompt + a, b) for a, b in pairs]
        progress = progress_bar(len(pairs), "Scoring", unit="pair") if show_progress_bar else None
        try:
            logits = self._logits(pairs, int(batch_size), progress)
        finally:
            if progress is not None:
                progress.close()
        scores = np.asarray(activation(logits), dtype=np.float32)
        if scores.shape != logits.shape:
            raise ArgumentError(f"activation_fn returned shape {scores.shape} for logits of shape {logits.shape}; "
                                "it must keep the shape")
        if self.num_labels == 1:
            scores = scores[:, 0]  # [n, 1] -> [n]
        elif apply_softmax:
            scores = fast.softmax(scores)  # [n, num_labels], each row summing to 1
        if single:
            return scores[0]
        return scores if convert_to_numpy or convert_to_tensor else list(scores)

    def rank(self, query: str, documents: Sequence[str], top_k: int | None = None, return_documents: bool = False,
             prompt_name: str | None = None, prompt: str | None = None, batch_size: int = 32,
             show_progress_bar: bool | None = None, activation_fn: Any = None, device: str | None = None,
             pool: None = None, chunk_size: int | None = None) -> list[dict[str, Any]]:
        """The documents sorted by their score with the query, best first, as sentence-transformers'
        CrossEncoder.rank: [{"corpus_id": index into documents, "score": float, "text": the document (only with
        return_documents)}], the first top_k of them (all for None). Equal scores keep the documents' order. Only
        for one-label models. The other arguments are predict's.
        """
        self.check_reranker("rank")
        if not isinstance(query, str):
            raise ArgumentTypeError(f"query is {type(query).__name__}, expected str")
        if lone_surrogate(query):
            raise ArgumentError(f"query is not valid Unicode: a lone surrogate at character {lone_surrogate(query)[0]}")
        if isinstance(documents, (str, bytes, bytearray)) or not isinstance(documents, Iterable):
            raise ArgumentTypeError(f"documents must be a list of str, got {type(documents).__name__}")
        documents = list(documents)
        check_texts(documents, "documents")
        if top_k is not None:
            check_int(top_k, "top_k", 0)
        scores = self.predict([(query, d) for d in documents], prompt_name, prompt, batch_size, show_progress_bar,
                              activation_fn, device=device, pool=pool, chunk_size=chunk_size)
        return [{"corpus_id": i, "score": float(scores[i]), **({"text": documents[i]} if return_documents else {})}
                for i in rank_order(scores, top_k)]

    def _resolve_prompt(self, prompt: str | None, prompt_name: str | None) -> str:
        """The text put in front of each pair's first text, as sentence-transformers resolves it ("" for none)."""
        if prompt is not None and not isinstance(prompt, str):
            raise ArgumentTypeError(f"prompt must be a str, got {type(prompt).__name__}")
        if prompt is None and prompt_name is not None:
            if prompt_name not in self.prompts:
                raise ArgumentError(f"prompt_name {prompt_name!r} is not one of this model's prompts "
                                    f"{sorted(self.prompts)}; add it to model.prompts or pass prompt=...")
            prompt = self.prompts[prompt_name]
        elif prompt is None and self.default_prompt_name is not None:
            prompt = self.prompts.get(self.default_prompt_name)
        elif prompt is not None and prompt_name is not None:
            log.warning("predict got both prompt and prompt_name; using prompt, as sentence-transformers does")
        return prompt or ""


def rank_order(scores: np.ndarray, top_k: int | None = None) -> list[int]:
    """The indices of scores (float [n]) from the best score to the worst, the first top_k (all for None): the
    order of CrossEncoder.rank, as sentence-transformers sorts (stable, so equal scores keep index order)."""
    order = np.argsort(-np.asarray(scores), kind="stable")  # [n]; the same order as sorted(..., reverse=True)
    return order[:top_k].tolist()


# --------------------------------------------------------------------------------------------------------------
# Argument handling
# --------------------------------------------------------------------------------------------------------------


def _as_pairs(inputs: Any, name: str = "inputs") -> tuple[list[tuple[str, str]], bool]:
    """(pairs, single): the pairs in `inputs`, and whether it was one pair, as sentence-transformers tells them
    apart (a list or tuple whose first item is not a list or tuple is one pair; a 1-D NumPy string array too)."""
    if isinstance(inputs, np.ndarray) and inputs.dtype.kind in "UO":
        inputs = inputs.tolist()
    if isinstance(inputs, (str, bytes, bytearray)) or not isinstance(inputs, Iterable):
        raise ArgumentTypeError(f"{name} must be a (text, text) pair or a list of pairs, got {type(inputs).__name__}")
    single = isinstance(inputs, (list, tuple)) and len(inputs) > 0 and not isinstance(inputs[0], (list, tuple))
    items = [inputs] if single else list(inputs)
    for i, item in enumerate(items):
        where = name if single else f"{name}[{i}]"
        if not isinstance(item, (list, tuple)):
            raise ArgumentTypeError(f"{where} is {type(item).__name__}, expected a (text, text) pair")
        if len(item) != 2:
            raise ArgumentError(f"{where} has {len(item)} item(s); a cross-encoder scores pairs of exactly two texts")
        check_texts(list(item), where)  # here, before a prompt is put in front
    return [tuple(item) for item in items], single


def _check_prompts(prompts: Any) -> dict[str, str]:
    if prompts is None:
        return {}
    if not isinstance(prompts, dict) or not all(isinstance(k, str) and isinstance(v, str) for k, v in prompts.items()):
        raise ArgumentError(f"prompts must be a dict of name: prompt strings, got {prompts!r}")
    return prompts


def model_source(model: Any, revision: str | None = None, cache_folder: str | os.PathLike | None = None,
                 local_files_only: bool = False) -> Any:
    """The hub.ModelSource of the cross-encoder named as sentence-transformers' CrossEncoder names it (a bare name
    is in cross-encoder/), found by the one rule of tinyminilm.hub: what `CrossEncoder(model)` loads, for callers
    that must know which model a name means before loading it (the adapters' cache of loaded models)."""
    from . import hub

    if model is None:
        raise ArgumentError("model_name_or_path: a cross-encoder has no default model; pass the id or folder of one, "
                            "such as cross-encoder/ms-marco-MiniLM-L6-v2")
    return hub.resolve(model, revision=revision, cache_folder=cache_folder, local_files_only=local_files_only,
                       namespace="cross-encoder")


def _legacy_arguments(args: tuple, kwargs: dict) -> dict[str, Any]:
    """The constructor's older positional arguments and names, as new keyword arguments (warning as
    sentence-transformers does). Unknown names are a TypeError, as Python's own."""
    legacy: dict[str, Any] = {}
    if len(args) > len(_LEGACY_POSITIONAL):
        raise ArgumentTypeError(f"CrossEncoder takes at most {1 + len(_LEGACY_POSITIONAL)} positional arguments")
    for name, value in zip(_LEGACY_POSITIONAL, args):
        log.warning("passing %s by position to CrossEncoder is deprecated; write %s=%r", name, name, value)
        legacy[name] = value
    for old, value in kwargs.items():
        if old == "classifier_dropout":  # dropout does nothing at inference
            continue
        if old not in _RENAMED:
            raise ArgumentTypeError(f"CrossEncoder got an unexpected keyword argument {old!r}")
        log.warning("the CrossEncoder argument %s is deprecated; it is now %s", old, _RENAMED[old])
        legacy[_RENAMED[old]] = value
    return legacy


def _legacy_predict_arguments(inputs: Any, activation_fn: Any, kwargs: dict) -> tuple[Any, Any]:
    """predict's older names (sentences=, activation_fct=, num_workers=), as sentence-transformers still takes
    them; any other keyword argument (torch's processing_kwargs, …) is a TypeError naming it."""
    if "sentences" in kwargs:
        log.warning("predict(sentences=...) is deprecated; it is now inputs=")
        inputs = kwargs.pop("sentences") if inputs is None else inputs
    if "activation_fct" in kwargs:
        log.warning("predict(activation_fct=...) is deprecated; it is now activation_fn=")
        activation_fn = kwargs.pop("activation_fct") if activation_fn is None else activation_fn
    kwargs.pop("num_workers", None)  # no effect, as in sentence-transformers
    if kwargs:
        raise ArgumentTypeError(f"predict got unexpected keyword arguments {sorted(kwargs)} (tinyminilm has no "
                                "per-call processor settings; set model.max_length instead)")
    if inputs is None:
        raise ArgumentTypeError("predict needs inputs: a (text, text) pair or a list of pairs")
    return inputs, activation_fn
