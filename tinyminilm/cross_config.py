"""A cross-encoder folder's settings: a BertForSequenceClassification checkpoint, read as sentence-transformers 6.2's
CrossEncoder reads it (config.json's labels and saved activation, and the files of sentence-transformers 6's layout).

The BERT shape itself, the JSON reading and the tokenizer's length limit are config.py's, shared with sentence
encoders.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path

from .config import (TRANSFORMER, BertConfig, max_seq_length, read_bert_config, read_field, read_json, read_modules,
                     read_sentence_transformers_config)
from .errors import ConfigError



@dataclass(frozen=True)
class CrossEncoderConfig:
    """Everything a cross-encoder needs besides weights and tokenizer (see `read_cross_encoder_config`)."""

    bert: BertConfig
    num_labels: int
    id2label: dict[int, str]
    max_length: int  # truncation length of a pair, [CLS] and both [SEP] counted, when the caller gives none
    max_length_source: str  # "file: field" that max_length comes from
    # (where, class path) of the saved default activation, in the order sentence-transformers tries them; when
    # none is taken: sigmoid for one label, identity for more
    activation_paths: tuple[tuple[str, str], ...] = ()
    do_lower_case: bool = False
    prompts: dict[str, str] = field(default_factory=dict)
    default_prompt_name: str | None = None


def read_cross_encoder_config(folder: Path) -> CrossEncoderConfig:
    """A cross-encoder folder's settings, from the files sentence-transformers 6.2 reads and in its order.

    config.json: the BERT shape, num_labels (len(id2label), else num_labels, else transformers' default 2), and the
    older activation keys `sentence_transformers.activation_fn` and, only without that, the pre-4.0
    `sbert_ce_default_activation_function`. A folder saved by sentence-transformers 6 (modules.json, and
    config_sentence_transformers.json saying "model_type": "CrossEncoder") adds its own `activation_fn`, which
    comes first, prompts, and sentence_bert_config.json's max_seq_length and do_lower_case. Any other modules.json
    is not read, as sentence-transformers then loads the folder as a plain transformers checkpoint.
    max_length: sentence_bert_config.json max_seq_length (6 layout), else tokenizer_config.json model_max_length
    capped at max_position_embeddings, else max_position_embeddings (scripts/make_golden_cross.py checks this).
    """
    folder = Path(folder)
    config_path = folder / "config.json"
    data = read_json(config_path)
    bert = read_bert_config(config_path, data)
    architectures = data.get("architectures") or []
    if not any(str(a).endswith("ForSequenceClassification") for a in architectures):
        raise ConfigError(f"{config_path}: architectures {architectures} has no *ForSequenceClassification, so "
                          "there is no trained classifier (sentence-transformers would add a random one); a "
                          "cross-encoder is a BertForSequenceClassification checkpoint such as "
                          "cross-encoder/ms-marco-MiniLM-L6-v2")
    num_labels, id2label = _labels(data, config_path)
    saved = _sentence_transformers_files(folder)
    st = saved.get("sentence_bert_config.json", {})
    max_length, source = max_seq_length(folder, st, bert)

    paths = []
    cst = saved.get("config_sentence_transformers.json", {})
    if cst.get("activation_fn") is not None:
        paths.append((f"{folder / 'config_sentence_transformers.json'}: activation_fn", cst["activation_fn"]))
    st4 = data.get("sentence_transformers")
    if isinstance(st4, dict) and "activation_fn" in st4:  # sentence-transformers 4-5
        if st4["activation_fn"] is not None:
            paths.append((f"{config_path}: sentence_transformers.activation_fn", st4["activation_fn"]))
    elif data.get("sbert_ce_default_activation_function") is not None:  # before sentence-transformers 4
        paths.append((f"{config_path}: sbert_ce_default_activation_function",
                      data["sbert_ce_default_activation_function"]))
    for where, path in paths:
        if not isinstance(path, str):
            raise ConfigError(f"{where} should be a class path such as 'torch.nn.modules.activation.Sigmoid', "
                              f"got {path!r}")
    prompts = {"prompts": {}, "default_prompt_name": None}
    if cst:
        found = read_sentence_transformers_config(folder / "config_sentence_transformers.json", cst)
        prompts = {k: found[k] for k in prompts}
    return CrossEncoderConfig(bert=bert, num_labels=num_labels, id2label=id2label, max_length=max_length,
                              max_length_source=source, activation_paths=tuple(paths),
                              do_lower_case=bool(st.get("do_lower_case", False)), **prompts)


def _labels(data: dict, path: Path) -> tuple[int, dict[int, str]]:
    """num_labels and id2label as transformers reads them: id2label wins; without it num_labels, else 2."""
    id2label = data.get("id2label")
    if id2label is not None:
        try:
            labels = {int(k): str(v) for k, v in id2label.items()}
        except (AttributeError, TypeError, ValueError):
            raise ConfigError(f"{path}: id2label should map label numbers to names, got {id2label!r}") from None
        if sorted(labels) != list(range(len(labels))) or not labels:
            raise ConfigError(f"{path}: id2label should number its labels 0 … n-1, got {sorted(labels)}")
        return len(labels), labels
    n = read_field(data, "num_labels", int, path, default=2)
    return n, {i: f"LABEL_{i}" for i in range(n)}


def _sentence_transformers_files(folder: Path) -> dict[str, dict]:
    """sentence_bert_config.json and config_sentence_transformers.json of a folder that sentence-transformers 6
    loads as a CrossEncoder from its modules.json; {} for any other folder (loaded as a transformers checkpoint)."""
    modules_path, cst_path = folder / "modules.json", folder / "config_sentence_transformers.json"
    if not modules_path.is_file():
        return {}
    cst = read_json(cst_path) if cst_path.is_file() else {}
    if not isinstance(cst, dict) or cst.get("model_type", "SentenceTransformer") != "CrossEncoder":
        return {}  # sentence-transformers converts it: the modules.json and its files are not read
    modules = read_modules(modules_path)
    kinds = [kind for kind, _, _ in modules]
    if kinds != [TRANSFORMER] or modules[0][2] != "":
        raise ConfigError(f"{modules_path}: module pipeline {kinds} is not supported; tinyminilm runs a cross-encoder "
                          "that is one Transformer module saved in the folder itself")
    st_path = folder / "sentence_bert_config.json"
    st = read_json(st_path) if st_path.is_file() else {}
    if not isinstance(st, dict) or st.get("transformer_task") != "sequence-classification":
        raise ConfigError(f"{st_path}: transformer_task should be 'sequence-classification' for a CrossEncoder, got "
                          f"{st.get('transformer_task') if isinstance(st, dict) else st!r}")
    return {"sentence_bert_config.json": st, "config_sentence_transformers.json": cst}
