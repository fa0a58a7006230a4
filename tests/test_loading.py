"""Loading refuses what it cannot compute correctly, with an error naming the file and the problem."""

from __future__ import annotations

import json
import shutil

import numpy as np
import pytest
from safetensors.numpy import save_file

import tiny_bert
import tinyminilm
from tinyminilm import ConfigError, TokenizerError, WeightsError


@pytest.fixture
def folder(tmp_path):
    return tiny_bert.make_folder(tmp_path / "m", "pooling_mode_mean_tokens", True)


def rewrite_weights(folder, change):
    t = tiny_bert.make_weights()
    change(t)
    save_file(t, str(folder / "model.safetensors"))


def test_loads_and_ignores_known_unused_tensors(folder):
    enc = tinyminilm.load(folder)  # the tiny checkpoint holds position_ids and pooler.*, like the real one
    assert enc.encode(["the cat"]).shape == (1, 32)


@pytest.mark.parametrize("change,message", [
    (lambda t: t.pop("encoder.layer.1.output.dense.weight"), "missing tensor(s) encoder.layer.1.output.dense.weight"),
    (lambda t: t.update({"encoder.layer.2.output.dense.bias": np.zeros(32, np.float32)}),
     "unexpected tensor(s) encoder.layer.2.output.dense.bias"),
    (lambda t: t.update({"embeddings.LayerNorm.bias": np.zeros(31, np.float32)}),
     "embeddings.LayerNorm.bias has shape (31,), config.json implies (32,)"),
    (lambda t: t.update({"embeddings.LayerNorm.bias": np.zeros(32, np.float16)}), "dtype F16"),
    (lambda t: t["encoder.layer.0.intermediate.dense.weight"].__setitem__((3, 4), np.nan), "NaN or Inf"),
    (lambda t: t["embeddings.word_embeddings.weight"].__setitem__((0, 0), np.inf), "NaN or Inf"),
])
def test_bad_tensors_are_refused_by_name(folder, change, message):
    rewrite_weights(folder, change)
    with pytest.raises(WeightsError) as e:
        tinyminilm.load(folder)
    assert message in str(e.value) and "model.safetensors" in str(e.value)


def test_truncated_weights_file(folder):
    path = folder / "model.safetensors"
    data = path.read_bytes()
    path.write_bytes(data[: len(data) // 2])
    with pytest.raises(WeightsError, match="model.safetensors: not a readable safetensors file"):
        tinyminilm.load(folder)


def test_missing_weights_file(folder):
    (folder / "model.safetensors").unlink()
    with pytest.raises(WeightsError, match="model.safetensors: file not found"):
        tinyminilm.load(folder)


@pytest.mark.parametrize("edit,message", [
    (lambda c: c.update(hidden_size=33), "not divisible"),
    (lambda c: c.update(hidden_act="relu"), "hidden_act 'relu' is not supported"),
    (lambda c: c.pop("num_hidden_layers"), "missing the field 'num_hidden_layers'"),
    (lambda c: c.update(num_attention_heads="4"), "'num_attention_heads' should be int"),
    (lambda c: c.update(model_type="roberta"), "model_type 'roberta' is not supported"),
])
def test_bad_config_is_refused_by_name(folder, edit, message):
    cfg = json.loads((folder / "config.json").read_text())
    edit(cfg)
    (folder / "config.json").write_text(json.dumps(cfg))
    with pytest.raises(ConfigError) as e:
        tinyminilm.load(folder)
    assert message in str(e.value) and "config.json" in str(e.value)


def test_config_shape_change_is_caught_by_weight_check(folder):
    cfg = json.loads((folder / "config.json").read_text())
    cfg["intermediate_size"] = 38
    (folder / "config.json").write_text(json.dumps(cfg))
    with pytest.raises(WeightsError, match="intermediate.dense.weight has shape"):
        tinyminilm.load(folder)


def test_corrupt_json_and_tokenizer(folder):
    (folder / "config.json").write_text('{"hidden_size": 32,')
    with pytest.raises(ConfigError, match="config.json: not valid JSON"):
        tinyminilm.load(folder)


def test_corrupt_or_missing_tokenizer(folder, tmp_path):
    other = shutil.copytree(folder, tmp_path / "copy")
    (folder / "tokenizer.json").write_text("{not json")
    with pytest.raises(TokenizerError, match="tokenizer.json: cannot be loaded"):
        tinyminilm.load(folder)
    (other / "tokenizer.json").unlink()
    with pytest.raises(TokenizerError, match="tokenizer.json: file not found"):
        tinyminilm.load(other)


def test_pooling_and_pipeline_checks(folder):
    (folder / "1_Pooling" / "config.json").write_text(json.dumps({"pooling_mode_mean_tokens": True,
                                                                   "pooling_mode_cls_token": True}))
    with pytest.raises(ConfigError, match="exactly one of"):
        tinyminilm.load(folder)
    modules = json.loads((folder / "modules.json").read_text())
    modules.append({"idx": 3, "name": "3", "path": "3_Dense", "type": "sentence_transformers.models.Dense"})
    (folder / "modules.json").write_text(json.dumps(modules))
    with pytest.raises(ConfigError, match="modules.json: module pipeline"):
        tinyminilm.load(folder)


def test_not_a_folder():
    with pytest.raises(ConfigError, match="no such folder"):
        tinyminilm.load("/nonexistent/model")


def test_max_seq_length_over_positions_is_refused(folder):
    (folder / "sentence_bert_config.json").write_text(json.dumps({"max_seq_length": 65}))
    with pytest.raises(ConfigError, match="exceeds max_position_embeddings"):
        tinyminilm.load(folder)
