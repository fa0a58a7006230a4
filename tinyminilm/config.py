"""A sentence-transformers model folder's settings, from its small JSON files, in the layout sentence-transformers 6
saves and in the older one, read as sentence-transformers 6.2 reads them.

    modules.json          the pipeline Transformer -> Pooling [-> Normalize], each module in the folder's "path"
    <Transformer path>/   config.json (the BERT shape: layers, hidden size, heads, eps, vocabulary, positions);
                          sentence_bert_config.json (the older layout's max_seq_length and do_lower_case; 6 writes
                          its task and output names there); tokenizer_config.json (model_max_length: the limit when
                          sentence_bert_config.json sets none)
    <Pooling path>/config.json    "pooling_mode": "mean" (6) or "pooling_mode_mean_tokens": true (older), and
                                  include_prompt
    <Normalize path>/config.json  optional: which feature it normalizes
    config_sentence_transformers.json   prompts, default_prompt_name, similarity_fn_name

Each field either changes what tinyminilm computes as it changes sentence-transformers' output, or is refused by name
(a ConfigError naming the file, the field and what is supported); only fields that change nothing here (dropout,
unpad_inputs, …) pass unread. Nothing in the forward pass is a constant: it all comes from here.
"""

from __future__ import annotations

import json
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from .errors import ConfigError

SUPPORTED_ARCHITECTURE = ("BERT: config.json model_type 'bert' with absolute position embeddings and exact-erf "
                          "gelu (all-MiniLM-L6-v2 and -L12-v2, bge-small-en-v1.5, e5-small-v2, gte-small, "
                          "paraphrase-multilingual-MiniLM-L12-v2 are such models)")
# What tells other encoders apart from BERT, for the message that refuses them (what each model_type is, not advice)
_ARCHITECTURE_NOTES = {
    "mpnet": "MPNet adds a relative position bias to its attention",
    "roberta": "RoBERTa counts position ids from its padding id", "xlm-roberta": "XLM-R counts position ids from "
    "its padding id", "camembert": "CamemBERT counts position ids from its padding id",
    "distilbert": "DistilBERT has no token types and other weight names",
    "nomic_bert": "nomic-bert uses rotary positions and SwiGLU", "new": "gte-v1.5 ('new') uses rotary positions",
    "modernbert": "ModernBERT uses rotary positions, GeGLU and local attention",
}
SUPPORTED_PIPELINE = "Transformer -> Pooling [-> Normalize]"
TRANSFORMER, POOLING, NORMALIZE = "Transformer", "Pooling", "Normalize"
# sentence-transformers 6.2's pooling modes -> ours (None: not run here)
POOLING_MODES = {"cls": "cls", "max": "max", "mean": "mean", "mean_sqrt_len_tokens": "mean_sqrt_len",
                 "weightedmean": None, "lasttoken": None}
_POOLING_FLAGS = {  # the older 1_Pooling/config.json flags -> pooling_mode, in sentence-transformers' order
    "pooling_mode_cls_token": "cls", "pooling_mode_max_tokens": "max", "pooling_mode_mean_tokens": "mean",
    "pooling_mode_mean_sqrt_len_tokens": "mean_sqrt_len_tokens", "pooling_mode_weightedmean_tokens": "weightedmean",
    "pooling_mode_lasttoken": "lasttoken"}
_RUN = [mode for mode, ours in POOLING_MODES.items() if ours]


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
    transformer_path: str = ""  # the Transformer module's folder in the model folder: config.json, weights, tokenizer
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


def read_field(data: dict, key: str, kind: type, path: Path, default: Any = None) -> Any:
    """data[key] checked to be a `kind` (int, float, str, …; positive numbers but pad_token_id), else `default`
    when given; a ConfigError naming `path` and the field otherwise. Shared by the config readers."""
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


def read_bert_config(path: Path, data: Any = None) -> BertConfig:
    """config.json -> BertConfig, refusing anything this implementation would compute wrongly. data: the file's
    JSON when the caller has read it already (read_json(path)), else it is read here."""
    data = read_json(path) if data is None else data
    if not isinstance(data, dict):
        raise ConfigError(f"{path}: expected a JSON object")
    model_type = data.get("model_type", "bert")
    if model_type != "bert":
        note = _ARCHITECTURE_NOTES.get(model_type)
        raise ConfigError(f"{path}: model_type {model_type!r} is not supported{f' ({note})' if note else ''}; "
                          f"tinyminilm runs {SUPPORTED_ARCHITECTURE}")
    if data.get("position_embedding_type", "absolute") != "absolute":
        raise ConfigError(f"{path}: position_embedding_type {data['position_embedding_type']!r} is not supported "
                          f"(only 'absolute'); tinyminilm runs {SUPPORTED_ARCHITECTURE}")
    hidden_act = data.get("hidden_act", "gelu")
    if hidden_act != "gelu":
        raise ConfigError(f"{path}: hidden_act {hidden_act!r} is not supported (only exact-erf 'gelu')")
    if data.get("is_decoder"):
        raise ConfigError(f"{path}: is_decoder true (a causal attention mask) is not supported; tinyminilm runs "
                          "BERT as an encoder, every token seeing every other")
    cfg = BertConfig(
        vocab_size=read_field(data, "vocab_size", int, path),
        hidden_size=read_field(data, "hidden_size", int, path),
        num_hidden_layers=read_field(data, "num_hidden_layers", int, path),
        num_attention_heads=read_field(data, "num_attention_heads", int, path),
        intermediate_size=read_field(data, "intermediate_size", int, path),
        max_position_embeddings=read_field(data, "max_position_embeddings", int, path),
        type_vocab_size=read_field(data, "type_vocab_size", int, path, default=2),
        layer_norm_eps=read_field(data, "layer_norm_eps", float, path, default=1e-12),
        hidden_act=hidden_act,
        pad_token_id=int(data.get("pad_token_id", 0) or 0),
    )
    if cfg.hidden_size % cfg.num_attention_heads:
        raise ConfigError(f"{path}: hidden_size {cfg.hidden_size} is not divisible by "
                          f"num_attention_heads {cfg.num_attention_heads}")
    return cfg


def max_seq_length(folder: Path, settings: dict, bert: BertConfig) -> tuple[int, str]:
    """(max_seq_length, "file: field" it comes from) of the Transformer module in `folder`, as sentence-transformers
    6.2 sets its tokenizer's model_max_length: sentence_bert_config.json's max_seq_length (`settings`; the older
    layout) taken as it is, else tokenizer_config.json's model_max_length capped at config.json's
    max_position_embeddings, else (no file, no number: transformers' default, 1e30) max_position_embeddings.

    A max_seq_length past max_position_embeddings is refused: sentence-transformers takes it and then fails on any
    text that long.
    """
    if "max_seq_length" in settings:
        path = folder / "sentence_bert_config.json"
        limit = read_field(settings, "max_seq_length", int, path)
        if limit > bert.max_position_embeddings:
            raise ConfigError(f"{path}: max_seq_length {limit} exceeds max_position_embeddings "
                              f"{bert.max_position_embeddings} of {folder / 'config.json'}")
        return limit, f"{path}: max_seq_length"
    path = folder / "tokenizer_config.json"
    tok = read_json(path) if path.is_file() else {}
    given = tok.get("model_max_length") if isinstance(tok, dict) else None
    if isinstance(given, (int, float)) and not isinstance(given, bool) and given >= 1:
        return int(min(given, bert.max_position_embeddings)), f"{path}: model_max_length, capped at " \
            "max_position_embeddings"
    return bert.max_position_embeddings, f"{folder / 'config.json'}: max_position_embeddings"


# sentence_bert_config.json of a sentence encoder: the value each field must have (its default) to be run here
_TRANSFORMER_DEFAULTS = {"transformer_task": "feature-extraction", "module_output_name": "token_embeddings",
                         "query_length": None, "document_length": None, "query_expansion": None,
                         "tokenizer_name_or_path": None}
_TEXT_MODALITY = {"method": "forward", "method_output_name": "last_hidden_state"}
# options handed to transformers when loading (older names too): only an empty one (or trust_remote_code) is run
_LOADING_OPTIONS = ("model_kwargs", "processor_kwargs", "config_kwargs", "processing_kwargs", "model_args",
                    "tokenizer_args", "config_args")
_NO_EFFECT = ("unpad_inputs", "cache_dir")  # flash attention's unpadded batches; where the Hub's files are cached


def read_transformer_settings(folder: Path, bert: BertConfig, saved: bool = True) -> tuple[int, bool]:
    """(max_seq_length, do_lower_case) of the Transformer module in `folder`, from its sentence_bert_config.json
    (both layouts; not read when `saved` is False: a folder without modules.json, which sentence-transformers
    loads as a plain checkpoint) and tokenizer_config.json (see `max_seq_length`); any other field that would
    change the output is refused by name."""
    path = folder / "sentence_bert_config.json"
    settings = read_json(path) if saved and path.is_file() else {}
    if not isinstance(settings, dict):
        raise ConfigError(f"{path}: expected a JSON object")
    for key, value in settings.items():
        if key in ("max_seq_length", "do_lower_case", *_NO_EFFECT):
            continue
        if key in _TRANSFORMER_DEFAULTS:
            ok = value == _TRANSFORMER_DEFAULTS[key]
        elif key == "modality_config":
            ok = isinstance(value, dict) and value.get("text") == _TEXT_MODALITY
        elif key in _LOADING_OPTIONS:
            ok = value is None or (isinstance(value, dict) and not set(value) - {"trust_remote_code"})
        else:
            raise ConfigError(f"{path}: unknown field {key!r}; sentence-transformers 6.2's Transformer takes no such "
                              "setting, and tinyminilm runs only the ones it knows")
        if not ok:
            want = {"text": _TEXT_MODALITY} if key == "modality_config" else _TRANSFORMER_DEFAULTS.get(key, {})
            raise ConfigError(f"{path}: {key} {value!r} is not supported; tinyminilm runs a sentence encoder's "
                              f"Transformer with {key} {want!r}")
    lower = settings.get("do_lower_case", False)
    if not isinstance(lower, bool):
        raise ConfigError(f"{path}: field 'do_lower_case' should be true or false, got {lower!r}")
    return max_seq_length(folder, settings, bert)[0], lower


def read_modules(path: Path) -> list[tuple[str, str, str]]:
    """modules.json -> [(kind, type, path)] per module: kind is the class name at the end of the type, whichever
    module path names it (`sentence_transformers.models.Pooling` of the older layout,
    `sentence_transformers.sentence_transformer.modules.pooling.Pooling` of 6); path is relative to the folder."""
    modules = read_json(path)
    if not isinstance(modules, list) or not all(isinstance(m, dict) for m in modules):
        raise ConfigError(f"{path}: expected a JSON list of module objects")
    out = []
    for i, m in enumerate(modules):
        kind, where = m.get("type"), m.get("path", "")
        if not isinstance(kind, str) or not isinstance(where, str):
            raise ConfigError(f"{path}: module {i} needs a \"type\" and a \"path\", both strings; got {m!r}")
        parts = Path(where).parts
        if Path(where).is_absolute() or ".." in parts:
            raise ConfigError(f"{path}: module {i} has path {where!r}, outside the model folder")
        out.append((kind.rsplit(".", 1)[-1], kind, where))
    return out


def read_pooling(path: Path, hidden_size: int) -> tuple[str, bool]:
    """(pooling mode, include_prompt) from a Pooling module's config.json, in either layout.

    As sentence-transformers 6.2: "pooling_mode" (a name or a list of names); without it the older
    pooling_mode_* flags, those that are true (none: "mean"); "embedding_dimension", else the older
    "word_embedding_dimension". More than one mode (concatenated vectors), weightedmean and lasttoken are refused.
    """
    data = read_json(path)
    if not isinstance(data, dict):
        raise ConfigError(f"{path}: expected a JSON object")
    unknown = sorted(set(data) - {"embedding_dimension", "word_embedding_dimension", "pooling_mode",
                                  "include_prompt", *_POOLING_FLAGS})
    if unknown:
        raise ConfigError(f"{path}: unknown field(s) {unknown}; sentence-transformers 6.2's Pooling takes "
                          "embedding_dimension, pooling_mode and include_prompt (or the older pooling_mode_* flags)")
    if "pooling_mode" in data:  # the older flags beside it are dropped, as sentence-transformers drops them
        modes, fields = data["pooling_mode"], None
        modes = modes if isinstance(modes, list) else [modes]
    else:
        fields = [key for key in _POOLING_FLAGS if data.get(key)]
        modes = [_POOLING_FLAGS[key] for key in fields] or ["mean"]
    for mode in modes:
        if not isinstance(mode, str) or mode not in POOLING_MODES:
            raise ConfigError(f"{path}: pooling_mode {mode!r} is not one of sentence-transformers' "
                              f"{list(POOLING_MODES)}")
    named = [f"{f}: true" for f in fields] if fields else [f"pooling_mode {m!r}" for m in modes]
    if len(modes) != 1:
        raise ConfigError(f"{path}: {', '.join(named) or 'pooling_mode []'} would concatenate {len(modes)} "
                          f"poolings; tinyminilm runs exactly one of {_RUN}")
    if POOLING_MODES[modes[0]] is None:
        raise ConfigError(f"{path}: {named[0]} is not supported; tinyminilm runs the pooling modes {_RUN}")
    dim = data.get("embedding_dimension", data.get("word_embedding_dimension", hidden_size))
    if dim != hidden_size:
        raise ConfigError(f"{path}: embedding_dimension {dim} differs from hidden_size {hidden_size} of config.json")
    include_prompt = data.get("include_prompt", True)
    if not isinstance(include_prompt, bool):
        raise ConfigError(f"{path}: include_prompt should be true or false, got {include_prompt!r}")
    return POOLING_MODES[modes[0]], include_prompt


def check_normalize(path: Path) -> None:
    """A Normalize module's optional config.json: it must normalize the sentence vector, as by default."""
    data = read_json(path) if path.is_file() else {}
    if not isinstance(data, dict):
        raise ConfigError(f"{path}: expected a JSON object")
    for key in ("module_input_name", "module_output_name"):
        if data.get(key) not in (None, "sentence_embedding"):
            raise ConfigError(f"{path}: {key} {data[key]!r} is not supported; tinyminilm's Normalize module "
                              "normalizes the sentence_embedding")


def read_config(folder: Path) -> ModelConfig:
    """Read a sentence-transformers model folder's configuration files (either layout; see the module docstring).

    Without modules.json the folder is a plain transformers checkpoint, run as sentence-transformers runs one:
    Transformer (its tokenizer's limit) then mean Pooling, no Normalize; sentence_bert_config.json and 1_Pooling
    are not read.
    """
    folder = Path(folder)
    path = folder / "modules.json"
    modules = read_modules(path) if path.exists() else [(TRANSFORMER, "", ""), (POOLING, "", None)]
    kinds = [kind for kind, _, _ in modules]
    for i, (kind, name, _) in enumerate(modules):
        if kind not in (TRANSFORMER, POOLING, NORMALIZE):
            raise ConfigError(f"{path}: module pipeline {kinds} is not supported: module {i} is {name!r}, a {kind} "
                              f"module, which tinyminilm does not run; it runs {SUPPORTED_PIPELINE}")
    if kinds not in ([TRANSFORMER, POOLING], [TRANSFORMER, POOLING, NORMALIZE]):
        raise ConfigError(f"{path}: module pipeline {kinds} is not supported; tinyminilm runs {SUPPORTED_PIPELINE}, "
                          "in this order")
    transformer_path = modules[0][2]
    bert = read_bert_config(folder / transformer_path / "config.json")
    limit, lower = read_transformer_settings(folder / transformer_path, bert, saved=path.exists())
    pooling = modules[1][2]
    mode, include_prompt = ("mean", True) if pooling is None else read_pooling(folder / pooling / "config.json",
                                                                                 bert.hidden_size)
    if len(modules) == 3:
        check_normalize(folder / modules[2][2] / "config.json")
    saved = read_sentence_transformers_config(folder / "config_sentence_transformers.json")
    model_type = saved.pop("model_type")
    if model_type not in (None, "SentenceTransformer"):
        use = "; load it with tinyminilm.CrossEncoder" if model_type == "CrossEncoder" else ""
        raise ConfigError(f"{folder / 'config_sentence_transformers.json'}: model_type {model_type!r}: the folder "
                          f"holds a {model_type}, not a SentenceTransformer{use}")
    return ModelConfig(bert=bert, max_seq_length=limit, do_lower_case=lower, pooling_mode=mode,
                       normalize=len(modules) == 3, include_prompt=include_prompt,
                       transformer_path=transformer_path, **saved)


def read_sentence_transformers_config(path: Path, saved: Any = None) -> dict[str, Any]:
    """prompts, default_prompt_name, similarity_fn_name and model_type from config_sentence_transformers.json
    (saved: its JSON when the caller has read it already).

    The file is optional, and a malformed one is ignored as sentence-transformers' defaults apply; values of the
    wrong type are a ConfigError naming the field.
    """
    if saved is None:
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
    similarity, model_type = saved.get("similarity_fn_name"), saved.get("model_type")
    return {"prompts": dict(prompts), "default_prompt_name": default,
            "similarity_fn_name": similarity if isinstance(similarity, str) else None,
            "model_type": model_type if isinstance(model_type, str) else None}
