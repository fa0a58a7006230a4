"""The model's settings, read from the four small JSON files of a sentence-transformers model folder.

    config.json                 the BERT shape: layers, hidden size, heads, eps, vocabulary, positions
    sentence_bert_config.json   max_seq_length, do_lower_case
    modules.json                the pipeline: Transformer -> Pooling -> (Normalize)
    1_Pooling/config.json       which pooling (mean, cls, max, mean_sqrt_len)

Nothing in the forward pass is a constant: it all comes from here.
"""

from __future__ import annotations

import json
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from .errors import ConfigError

# sentence-transformers module types this package can run, by their short name.
_TRANSFORMER, _POOLING, _NORMALIZE = "Transformer", "Pooling", "Normalize"
_POOLING_KEYS = {  # 1_Pooling/config.json flag -> our pooling mode name
    "pooling_mode_cls_token": "cls",
    "pooling_mode_max_tokens": "max",
    "pooling_mode_mean_tokens": "mean",
    "pooling_mode_mean_sqrt_len_tokens": "mean_sqrt_len",
}


@dataclass(frozen=True)
class BertConfig:
    """The fields of config.json that shape the network."""

    vocab_size: int
    hidden_size: int
    num_hidden_layers: int
    num_attention_heads: int
    intermediate_size: int
    max_position_embeddings: int
    type_vocab_size: int
    layer_norm_eps: float
    hidden_act: str = "gelu"
    pad_token_id: int = 0


@dataclass(frozen=True)
class ModelConfig:
    """Everything the encoder needs besides weights and tokenizer."""

    bert: BertConfig
    max_seq_length: int
    do_lower_case: bool
    pooling_mode: str  # "mean" | "cls" | "max" | "mean_sqrt_len"
    normalize: bool  # modules.json has a Normalize module
    include_prompt: bool = True  # 1_Pooling: False means prompt tokens are left out of the pooling
    # config_sentence_transformers.json (optional): named prompts, the default one, the similarity function
    prompts: dict[str, str] = field(default_factory=dict)
    default_prompt_name: str | None = None
    similarity_fn_name: str | None = None

    @property
    def dim(self) -> int:
        """Size of a sentence vector."""
        return self.bert.hidden_size


def read_json(path: Path) -> Any:
    """Parse a JSON file, turning every failure into a ConfigError that names the file."""
    try:
        text = path.read_text(encoding="utf-8")
    except FileNotFoundError:
        raise ConfigError(f"{path}: file not found; a sentence-transformers model folder needs it") from None
    except (OSError, UnicodeDecodeError) as e:
        raise ConfigError(f"{path}: cannot be read ({e})") from None
    try:
        return json.loads(text)
    except json.JSONDecodeError as e:
        raise ConfigError(f"{path}: not valid JSON ({e.msg} at line {e.lineno}, column {e.colno}); "
                          "replace it with an intact copy (tinyminilm download)") from None


def _field(data: dict, key: str, kind: type, path: Path, default: Any = None) -> Any:
    if key not in data:
        if default is not None:
            return default
        raise ConfigError(f"{path}: missing the field {key!r}")
    value = data[key]
    ok = isinstance(value, kind) and not (kind is int and isinstance(value, bool))
    if kind is float and isinstance(value, int) and not isinstance(value, bool):
        value, ok = float(value), True
    if not ok:
        raise ConfigError(f"{path}: field {key!r} should be {kind.__name__}, got {value!r}")
    if kind in (int, float) and not value > 0 and key != "pad_token_id":
        raise ConfigError(f"{path}: field {key!r} should be positive, got {value!r}")
    return value


def read_bert_config(path: Path) -> BertConfig:
    """config.json -> BertConfig, refusing anything this implementation would compute wrongly."""
    data = read_json(path)
    if not isinstance(data, dict):
        raise ConfigError(f"{path}: expected a JSON object")
    model_type = data.get("model_type", "bert")
    if model_type != "bert":
        raise ConfigError(f"{path}: model_type {model_type!r} is not supported; tinyminilm runs BERT models only")
    if data.get("position_embedding_type", "absolute") != "absolute":
        raise ConfigError(f"{path}: position_embedding_type {data['position_embedding_type']!r} is not supported "
                          "(only 'absolute')")
    hidden_act = data.get("hidden_act", "gelu")
    if hidden_act != "gelu":
        raise ConfigError(f"{path}: hidden_act {hidden_act!r} is not supported (only exact-erf 'gelu')")
    cfg = BertConfig(
        vocab_size=_field(data, "vocab_size", int, path),
        hidden_size=_field(data, "hidden_size", int, path),
        num_hidden_layers=_field(data, "num_hidden_layers", int, path),
        num_attention_heads=_field(data, "num_attention_heads", int, path),
        intermediate_size=_field(data, "intermediate_size", int, path),
        max_position_embeddings=_field(data, "max_position_embeddings", int, path),
        type_vocab_size=_field(data, "type_vocab_size", int, path, default=2),
        layer_norm_eps=_field(data, "layer_norm_eps", float, path, default=1e-12),
        hidden_act=hidden_act,
        pad_token_id=int(data.get("pad_token_id", 0) or 0),
    )
    if cfg.hidden_size % cfg.num_attention_heads:
        raise ConfigError(f"{path}: hidden_size {cfg.hidden_size} is not divisible by "
                          f"num_attention_heads {cfg.num_attention_heads}")
    return cfg


def read_config(folder: Path) -> ModelConfig:
    """Read a sentence-transformers model folder's configuration files."""
    folder = Path(folder)
    modules_path = folder / "modules.json"
    if modules_path.exists():
        modules = read_json(modules_path)
        if not isinstance(modules, list) or not all(isinstance(m, dict) for m in modules):
            raise ConfigError(f"{modules_path}: expected a JSON list of module objects")
        kinds = [str(m.get("type", "")).rsplit(".", 1)[-1] for m in modules]
    else:  # a bare transformers checkpoint: sentence-transformers' default is Transformer + mean Pooling
        modules, kinds = [], [_TRANSFORMER, _POOLING]
    if kinds[:2] != [_TRANSFORMER, _POOLING] or any(k != _NORMALIZE for k in kinds[2:]):
        raise ConfigError(f"{modules_path}: module pipeline {kinds} is not supported; tinyminilm runs "
                          "Transformer -> Pooling [-> Normalize]")

    bert = read_bert_config(folder / "config.json")

    st_path = folder / "sentence_bert_config.json"
    st = read_json(st_path) if st_path.exists() else {}
    if not isinstance(st, dict):
        raise ConfigError(f"{st_path}: expected a JSON object")
    max_seq_length = _field(st, "max_seq_length", int, st_path, default=bert.max_position_embeddings)
    if max_seq_length > bert.max_position_embeddings:
        raise ConfigError(f"{st_path}: max_seq_length {max_seq_length} exceeds max_position_embeddings "
                          f"{bert.max_position_embeddings} of config.json")
    do_lower_case = bool(st.get("do_lower_case", False))

    pooling_dir = modules[1].get("path", "1_Pooling") if modules else "1_Pooling"
    pooling_path = folder / pooling_dir / "config.json"
    pooling = read_json(pooling_path) if pooling_path.exists() else {"pooling_mode_mean_tokens": True}
    if not isinstance(pooling, dict):
        raise ConfigError(f"{pooling_path}: expected a JSON object")
    modes = [mode for key, mode in _POOLING_KEYS.items() if pooling.get(key)]
    unknown = [k for k, v in pooling.items() if k.startswith("pooling_mode_") and v and k not in _POOLING_KEYS]
    if len(modes) != 1 or unknown:
        raise ConfigError(f"{pooling_path}: exactly one of {sorted(_POOLING_KEYS)} must be true "
                          f"(found {modes + unknown or 'none'})")
    dim = pooling.get("word_embedding_dimension", bert.hidden_size)
    if dim != bert.hidden_size:
        raise ConfigError(f"{pooling_path}: word_embedding_dimension {dim} differs from hidden_size "
                          f"{bert.hidden_size} of config.json")
    return ModelConfig(bert=bert, max_seq_length=max_seq_length, do_lower_case=do_lower_case,
                       pooling_mode=modes[0], normalize=_NORMALIZE in kinds,
                       include_prompt=bool(pooling.get("include_prompt", True)),
                       **read_sentence_transformers_config(folder / "config_sentence_transformers.json"))


def read_sentence_transformers_config(path: Path) -> dict[str, Any]:
    """prompts, default_prompt_name and similarity_fn_name from config_sentence_transformers.json.

    The file is optional, and a malformed one is ignored as sentence-transformers' defaults apply; values of the
    wrong type are a ConfigError naming the field.
    """
    try:
        saved = json.loads(path.read_text(encoding="utf-8")) if path.is_file() else {}
    except (OSError, UnicodeDecodeError, ValueError):
        saved = {}
    if not isinstance(saved, dict):
        saved = {}
    prompts = saved.get("prompts") or {}
    if not isinstance(prompts, dict) or not all(isinstance(k, str) and isinstance(v, str) for k, v in prompts.items()):
        raise ConfigError(f"{path}: prompts must be an object of name: prompt strings, got {prompts!r}")
    default = saved.get("default_prompt_name")
    if default is not None and default not in {"query", "document", *prompts}:  # query and document exist as ""
        raise ConfigError(f"{path}: default_prompt_name {default!r} is not one of the prompts {sorted(prompts)}")
    similarity = saved.get("similarity_fn_name")
    return {"prompts": dict(prompts), "default_prompt_name": default,
            "similarity_fn_name": similarity if isinstance(similarity, str) else None}


# --------------------------------------------------------------------------------------------------------------
# Cross-encoders: a BertForSequenceClassification folder, read as sentence-transformers 6.2's CrossEncoder reads it
# --------------------------------------------------------------------------------------------------------------


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
    bert = read_bert_config(config_path)
    data = read_json(config_path)
    architectures = data.get("architectures") or []
    if not any(str(a).endswith("ForSequenceClassification") for a in architectures):
        raise ConfigError(f"{config_path}: architectures {architectures} has no *ForSequenceClassification, so "
                          "there is no trained classifier (sentence-transformers would add a random one); a "
                          "cross-encoder is a BertForSequenceClassification checkpoint such as "
                          "cross-encoder/ms-marco-MiniLM-L6-v2")
    num_labels, id2label = _labels(data, config_path)
    saved = _sentence_transformers_files(folder)
    st = saved.get("sentence_bert_config.json", {})
    tokenizer_config = folder / "tokenizer_config.json"
    if "max_seq_length" in st:  # taken as it is; sentence-transformers does not cap it (and fails past the end)
        source = f"{folder / 'sentence_bert_config.json'}: max_seq_length"
        max_length = _field(st, "max_seq_length", int, folder / "sentence_bert_config.json")
        if max_length > bert.max_position_embeddings:
            raise ConfigError(f"{source} {max_length} exceeds max_position_embeddings {bert.max_position_embeddings} "
                              f"of {config_path}")
    else:
        tok = read_json(tokenizer_config) if tokenizer_config.is_file() else {}
        given = tok.get("model_max_length") if isinstance(tok, dict) else None
        if isinstance(given, (int, float)) and not isinstance(given, bool) and given >= 1:
            source = f"{tokenizer_config}: model_max_length, capped at max_position_embeddings"
            max_length = int(min(given, bert.max_position_embeddings))
        else:  # transformers' default model_max_length (1e30), capped
            source, max_length = f"{config_path}: max_position_embeddings", bert.max_position_embeddings

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
        found = read_sentence_transformers_config(folder / "config_sentence_transformers.json")
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
    n = _field(data, "num_labels", int, path, default=2)
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
    modules = read_json(modules_path)
    if not isinstance(modules, list) or not all(isinstance(m, dict) for m in modules):
        raise ConfigError(f"{modules_path}: expected a JSON list of module objects")
    kinds = [str(m.get("type", "")).rsplit(".", 1)[-1] for m in modules]
    if kinds != [_TRANSFORMER] or modules[0].get("path", "") != "":
        raise ConfigError(f"{modules_path}: module pipeline {kinds} is not supported; tinyminilm runs a cross-encoder "
                          "that is one Transformer module saved in the folder itself")
    st_path = folder / "sentence_bert_config.json"
    st = read_json(st_path) if st_path.is_file() else {}
    if not isinstance(st, dict) or st.get("transformer_task") != "sequence-classification":
        raise ConfigError(f"{st_path}: transformer_task should be 'sequence-classification' for a CrossEncoder, got "
                          f"{st.get('transformer_task') if isinstance(st, dict) else st!r}")
    return {"sentence_bert_config.json": st, "config_sentence_transformers.json": cst}
