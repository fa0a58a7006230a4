"""The cross-encoder's pieces: the textbook head and its fast twin, the strict BertForSequenceClassification loading,
config.json's labels, and text pairs cut before tokenizing with exactly the ids of the whole texts."""

from __future__ import annotations

import json

import numpy as np
import pytest

import cross_models as cm
import tiny_bert
from tinyminilm import ConfigError, CrossEncoder, WeightsError
from tinyminilm import fast as F
from tinyminilm import model as M
from tinyminilm.config import read_bert_config
from tinyminilm.cross_config import read_cross_encoder_config
from tinyminilm.tokenization import Tokenizer
from tinyminilm.weights import load_params

TINY = dict(tiny_bert.CONFIG, architectures=["BertForSequenceClassification"], id2label={"0": "a", "1": "b", "2": "c"})


def save(tmp_path, tensors: dict, config: dict = TINY):
    from safetensors.numpy import save_file

    (tmp_path / "config.json").write_text(json.dumps(config))
    save_file(tensors, str(tmp_path / "model.safetensors"))
    return read_bert_config(tmp_path / "config.json"), tmp_path / "model.safetensors"


@pytest.fixture
def tiny_head(tmp_path):
    """The tiny random BERT with a three-label head, loaded as a cross-encoder is, and a batch using token type 1."""
    cfg, path = save(tmp_path, tiny_bert.make_weights(3, num_labels=3, prefix="bert."))
    return cfg, load_params(path, cfg, num_labels=3)


class Shape:  # model.transformer reads config.bert only
    def __init__(self, bert):
        self.bert = bert


def test_fast_sequence_classification_equals_the_textbook(tiny_head):
    cfg, params = tiny_head
    ids, types, mask = tiny_bert.random_batch(seed=5, batch=6, length=14)
    assert types[mask == 1].max() == 1  # the second segment's row of the token-type embeddings is used
    plain = M.sequence_classification(params, Shape(cfg), ids, mask, types)
    fast = F.sequence_classification(params, Shape(cfg), ids, mask, types)
    assert plain.shape == fast.shape == (6, 3) and plain.dtype == fast.dtype == np.float32
    np.testing.assert_allclose(fast, plain, rtol=0, atol=1e-6 * np.abs(plain).max())
    assert F.pooler is M.pooler and F.classifier is M.classifier  # no faster form: said so in fast.py
    pooled = M.pooler(M.transformer(params, Shape(cfg), ids, mask, types)[-1], params["pooler"])
    assert pooled.shape == (6, 32) and np.abs(pooled).max() < 1  # tanh
    np.testing.assert_array_equal(M.classifier(pooled, params["classifier"]), plain)


def test_the_head_reads_only_the_cls_token(tiny_head):
    cfg, params = tiny_head
    h = np.random.default_rng(0).standard_normal((2, 5, 32)).astype(np.float32)
    changed = h.copy()
    changed[:, 1:] += 1  # every token but [CLS]
    np.testing.assert_array_equal(M.pooler(h, params["pooler"]), M.pooler(changed, params["pooler"]))
    assert M.pooler(h, params["pooler"]).dtype == np.float32


def test_the_real_shape_fast_path_equals_the_textbook(model_dir, tmp_path):
    model = CrossEncoder(cm.make_folder("three-labels", model_dir, tmp_path / "m"))
    pairs = [cm.PAIRS[i] for i in (0, 2, 3, 4)]  # padded, an empty text on each side, non-ASCII
    batch = model.tokenize(pairs)
    plain = M.sequence_classification(model.params, model.config, **batch)
    # six 384-wide layers in float32, summed in another order (and batched by predict): ~1e-6 of the logits
    np.testing.assert_allclose(model.predict(pairs, activation_fn="identity"), plain, rtol=0,
                               atol=5e-6 * np.abs(plain).max())


@pytest.mark.parametrize("change,match", [
    (lambda t: t.pop("classifier.weight"), "missing tensor.s. classifier.weight"),
    (lambda t: t.pop("bert.pooler.dense.bias"), "missing tensor.s. bert.pooler.dense.bias"),
    (lambda t: t.update({"classifier.weight": t["classifier.weight"][:1]}), r"classifier.weight has shape \(1, 32\)"),
    (lambda t: t.update({"extra.weight": np.zeros(2, np.float32)}), "unexpected tensor.s. extra.weight"),
    (lambda t: t.update({k.removeprefix("bert."): t.pop(k) for k in list(t) if k.startswith("bert.")}),
     "missing tensor.s. bert."),
])
def test_loading_a_classification_checkpoint_is_strict(tmp_path, change, match):
    tensors = tiny_bert.make_weights(3, num_labels=3, prefix="bert.")
    tensors["bert.embeddings.position_ids"] = np.arange(64, dtype=np.int64)[None]  # known, unused: accepted
    change(tensors)
    cfg, path = save(tmp_path, tensors)
    with pytest.raises(WeightsError, match=match):
        load_params(path, cfg, num_labels=3)


def test_a_sentence_encoder_checkpoint_still_loads_without_a_head(tmp_path):
    cfg, path = save(tmp_path, tiny_bert.make_weights(3), tiny_bert.CONFIG)
    params = load_params(path, cfg)
    assert "pooler" not in params and "classifier" not in params and len(params["layers"]) == 2


@pytest.mark.parametrize("changes,labels", [
    ({"id2label": {"0": "LABEL_0"}}, 1), ({"id2label": None, "num_labels": 4}, 4), ({"id2label": None}, 2),
])
def test_num_labels_as_transformers_reads_it(tmp_path, changes, labels):
    config = {k: v for k, v in dict(TINY, **changes).items() if v is not None}
    (tmp_path / "config.json").write_text(json.dumps(config))
    cfg = read_cross_encoder_config(tmp_path)
    assert cfg.num_labels == labels and sorted(cfg.id2label) == list(range(labels))


@pytest.mark.parametrize("file,data,match", [
    ("config.json", dict(TINY, architectures=["BertModel"]), "no \\*ForSequenceClassification"),
    ("config.json", dict(TINY, id2label={"0": "a", "2": "c"}), "number its labels 0"),
    ("config.json", dict(TINY, sentence_transformers={"activation_fn": 3}), "should be a class path"),
    ("modules.json", [{"path": "", "type": "x.Transformer"}, {"path": "1_Dense", "type": "x.Dense"}], "not supported"),
    ("sentence_bert_config.json", {"transformer_task": "feature-extraction"}, "sequence-classification"),
    ("sentence_bert_config.json", {"transformer_task": "sequence-classification", "max_seq_length": 100},
     "exceeds max_position_embeddings 64"),
])
def test_config_errors_name_the_file_and_field(tmp_path, file, data, match):
    (tmp_path / "config.json").write_text(json.dumps(TINY))
    (tmp_path / "modules.json").write_text(json.dumps([{"path": "", "type": "x.Transformer"}]))
    (tmp_path / "config_sentence_transformers.json").write_text(json.dumps({"model_type": "CrossEncoder"}))
    (tmp_path / "sentence_bert_config.json").write_text(json.dumps({"transformer_task": "sequence-classification"}))
    (tmp_path / file).write_text(json.dumps(data))
    with pytest.raises(ConfigError, match=match) as e:
        read_cross_encoder_config(tmp_path)
    assert file in str(e.value)


def test_a_sentence_transformer_modules_json_is_not_read(tmp_path):
    """sentence-transformers converts a folder whose config_sentence_transformers.json is not a CrossEncoder's,
    loading it as a plain checkpoint: its modules.json and sentence_bert_config.json do not count."""
    (tmp_path / "config.json").write_text(json.dumps(TINY))
    (tmp_path / "modules.json").write_text(json.dumps([{"path": "", "type": "x.Transformer"}, {"type": "x.Pooling"}]))
    (tmp_path / "sentence_bert_config.json").write_text(json.dumps({"max_seq_length": 16}))
    assert read_cross_encoder_config(tmp_path).max_length == 64


# ---------------------------------------------------------------------------------------------------------------
# Pairs cut before tokenizing: the same ids as the whole texts
# ---------------------------------------------------------------------------------------------------------------

WORDS = ["berlin", "is", "the", "capital", ",", "of", "germany", ".", "museums", "unbelievably", "東京", "ü", "  ",
         "\n", "x" * 150, "population", "3,520,031"]


def random_text(rng, words: int) -> str:
    return " ".join(rng.choice(WORDS, size=words))


def test_pre_cut_pairs_have_the_ids_of_the_whole_texts(model_dir):
    """Many pairs longer than the pre-cut limit (32 characters per token of max_length), at odd and even room for
    text tokens, on one side, on both, with either side the longer: each must get exactly the ids that tokenizing
    the whole texts gives (a Tokenizer with no cut plan)."""
    rng = np.random.default_rng(21)
    cases = 0
    for max_length in (5, 6, 9, 12, 17, 24):
        cut = Tokenizer(model_dir / "tokenizer.json", max_length, False, 0)
        whole = Tokenizer(model_dir / "tokenizer.json", max_length, False, 0, _cut=None)
        assert cut._cut is not None
        for _ in range(40):
            limit = max_length * 32
            a = random_text(rng, int(rng.integers(0, 3 * limit // 5)))
            b = random_text(rng, int(rng.integers(0, 3 * limit // 5)))
            pairs = [(a, b), (b, a), (a, a + " x"), (a[: max_length], b)]
            cases += sum(len(x) > limit or len(y) > limit for x, y in pairs)
            assert cut.pair_ids(pairs) == whole.pair_ids(pairs), (max_length, pairs)
    assert cases > 300  # most pairs were long enough to be cut
