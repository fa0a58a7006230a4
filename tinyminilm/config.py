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
