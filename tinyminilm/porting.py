"""sentence-transformers' names for code written against it: porting is changing the import.

    from tinyminilm import LoggingHandler, SentenceTransformer, util   # was: from sentence_transformers import ...
    model = SentenceTransformer("all-MiniLM-L6-v2")

`SentenceTransformer(...)` returns tinyminilm's SentenceEncoder, whose methods take sentence-transformers'
arguments. Constructor arguments that only make sense with torch are accepted where they change nothing and
refused, with the reason, where honouring them is impossible here. `LoggingHandler` is the logging handler
sentence-transformers' examples install.
"""

from __future__ import annotations

import logging
import os
import sys
from typing import Any

from .encoder import SentenceEncoder
from .errors import ArgumentError, check_device, check_int


def SentenceTransformer(model_name_or_path: str | os.PathLike | None = None, *, device: str | None = None,  # noqa: N802
                        prompts: dict[str, str] | None = None, default_prompt_name: str | None = None,
                        cache_folder: str | os.PathLike | None = None, trust_remote_code: bool = False,
                        revision: str | None = None, local_files_only: bool = False, token: bool | str | None = None,
                        use_auth_token: bool | str | None = None, model_kwargs: dict[str, Any] | None = None,
                        processor_kwargs: dict[str, Any] | None = None,
                        tokenizer_kwargs: dict[str, Any] | None = None, config_kwargs: dict[str, Any] | None = None,
                        model_card_data: Any = None, backend: str = "torch", similarity_fn_name: Any = None,
                        truncate_dim: int | None = None) -> SentenceEncoder:
    """Load a model as sentence_transformers.SentenceTransformer(...) does, for NumPy.

    model_name_or_path: a local sentence-transformers folder; a Hub id such as "BAAI/bge-small-en-v1.5", or a bare
    name such as "all-MiniLM-L12-v2" for sentence-transformers/all-MiniLM-L12-v2, read from the Hugging Face cache
    or fetched from the Hub into it (tinyminilm.hub.resolve); or None for the pinned all-MiniLM-L6-v2.
    Honoured as in sentence-transformers: revision (a Hub id's branch, tag or commit; the pinned model has only its
    own, and a folder ignores it), cache_folder (the Hugging Face cache; for the pinned model, where its files are
    looked for and put), local_files_only (never download), prompts, default_prompt_name, similarity_fn_name,
    truncate_dim.
    Accepted because they change nothing here: device None or "cpu"; trust_remote_code (no code is ever loaded);
    token / use_auth_token (huggingface_hub reads HF_TOKEN or your login itself); backend "torch" (the default
    name; the engine is NumPy whatever it says).
    Refused with the reason: another device, backend "onnx" / "openvino", and non-empty model_kwargs,
    processor_kwargs, tokenizer_kwargs, config_kwargs (torch dtypes, attention implementations, ...) or
    model_card_data.
    """
    refuse_torch_only(device, backend, model_card_data, model_kwargs=model_kwargs, processor_kwargs=processor_kwargs,
                      tokenizer_kwargs=tokenizer_kwargs, config_kwargs=config_kwargs)
    model = SentenceEncoder.load(model_name_or_path, revision=revision, cache_folder=cache_folder,
                                 local_files_only=local_files_only)  # what tinyminilm.load runs
    if prompts is not None:
        if not isinstance(prompts, dict) or not all(isinstance(k, str) and isinstance(v, str)
                                                    for k, v in prompts.items()):
            raise ArgumentError(f"prompts must be a dict of name: prompt strings, got {prompts!r}")
        model.prompts.update(prompts)  # given prompts win over the model folder's, as in sentence-transformers
    if default_prompt_name is not None:
        if default_prompt_name not in model.prompts:
            raise ArgumentError(f"default_prompt_name {default_prompt_name!r} is not one of the prompts "
                                f"{sorted(model.prompts)}")
        model.default_prompt_name = default_prompt_name
    if similarity_fn_name is not None:
        model.similarity_fn_name = similarity_fn_name
    if truncate_dim is not None:
        model.truncate_dim = check_int(truncate_dim, "truncate_dim", 1, model.get_embedding_dimension())
    return model


def refuse_torch_only(device: Any, backend: Any, model_card_data: Any = None, **torch_options: Any) -> None:
    """Refuse, with the reason, the constructor arguments of sentence-transformers' models that only torch can
    honour: a device other than the CPU, backend "onnx" / "openvino", model_card_data, and non-empty dicts of
    torch / transformers options, given by name (model_kwargs=..., processor_kwargs=..., ...)."""
    check_device(device)
    if backend != "torch":
        raise ArgumentError(f"backend={backend!r}: tinyminilm is its own NumPy engine, with no {backend} backend; "
                            "leave backend at its default")
    for name, value in torch_options.items():
        if value:
            raise ArgumentError(f"{name}={value!r}: these are passed to torch / transformers, which tinyminilm "
                                "does not use; drop them")
    if model_card_data is not None:
        raise ArgumentError("model_card_data: tinyminilm does not write model cards; drop it")


class LoggingHandler(logging.StreamHandler):
    """sentence-transformers' LoggingHandler: each record goes through `tqdm.write`, which prints it above any
    progress bar being drawn instead of through it; without tqdm installed, as a logging.StreamHandler on
    sys.stdout (where tqdm.write prints too). A logging handler, not library code printing: it writes only what
    the caller's logging configuration sends it.

        logging.basicConfig(format="%(asctime)s - %(message)s", level=logging.INFO, handlers=[LoggingHandler()])
    """

    def __init__(self, level: int = logging.NOTSET) -> None:
        super().__init__(sys.stdout)
        self.setLevel(level)

    def emit(self, record: logging.LogRecord) -> None:
        try:
            from tqdm import tqdm
        except ImportError:
            super().emit(record)  # the stream handler's own write, flush and error handling
            return
        try:
            tqdm.write(self.format(record))
        except RecursionError:  # as logging.StreamHandler: a handler that logs from inside logging must not loop
            raise
        except Exception:
            self.handleError(record)
