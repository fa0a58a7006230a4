"""The two-level API of tinyminilm/engine.py, as bert.cpp's `encode = tokenize + eval`: tokenize -> forward ->
finish, each usable alone, and encode made of exactly these steps.

The tiny random BERTs of tests/tiny_bert.py show that forward follows the model's own modules (CLS pooling without
Normalize, mean pooling with it); the real model checks "pooled" against the textbook functions of model.py.
"""

from __future__ import annotations

import numpy as np
import pytest
import tiny_bert

import tinyminilm
from tinyminilm import model as M
from tinyminilm import util

TEXTS = ["the cat sat on the mat.", "hello world", "a quick brown fox jumps over the lazy dog!", "fox", ""]


@pytest.fixture(scope="module")
def cls_tiny(tmp_path_factory) -> tinyminilm.SentenceEncoder:
    """CLS pooling, no Normalize module: "pooled" and "sentence_embedding" are the same vectors."""
    return tinyminilm.load(tiny_bert.make_folder(tmp_path_factory.mktemp("t") / "cls", "pooling_mode_cls_token",
                                                 False))


@pytest.fixture(scope="module")
def mean_tiny(tmp_path_factory) -> tinyminilm.SentenceEncoder:
    """Mean pooling and a Normalize module, as all-MiniLM-L6-v2."""
    return tinyminilm.load(tiny_bert.make_folder(tmp_path_factory.mktemp("t") / "mean", "pooling_mode_mean_tokens",
                                                 True))


def test_encode_is_tokenize_forward_finish(mean_tiny, cls_tiny):
    for m in (mean_tiny, cls_tiny):
        vectors = m.forward(m.tokenize(TEXTS))  # [B, dim]: one padded batch, no deduplication
        assert vectors.shape == (len(TEXTS), 32) and vectors.dtype == np.float32
        np.testing.assert_allclose(vectors, m.encode(TEXTS), atol=1e-6)
        for options in ({"truncate_dim": 8}, {"normalize_embeddings": True}, {"truncate_dim": 5,
                                                                                 "normalize_embeddings": True}):
            np.testing.assert_allclose(m.finish(vectors, **options), m.encode(TEXTS, **options), atol=1e-6)
        for precision in ("int8", "ubinary"):  # quantized from the same float32 vectors: the same bits
            want = util.quantize_embeddings(m.finish(vectors, 16, True), precision)
            np.testing.assert_array_equal(m.finish(vectors, 16, True, precision), want)


def test_forward_gives_what_each_output_value_says(mean_tiny, cls_tiny):
    for m in (mean_tiny, cls_tiny):
        features = m.tokenize(TEXTS)
        B, L = features["input_ids"].shape
        real = features["attention_mask"].astype(bool)
        attentions: list[np.ndarray] = []
        hidden = m.forward(features, "hidden_states", attentions=attentions)
        assert len(hidden) == 3 and all(h.shape == (B, L, 32) and h.dtype == np.float32 for h in hidden)
        assert len(attentions) == 2 and all(a.shape == (B, 4, L, L) for a in attentions)
        tokens = m.forward(features, "token_embeddings")
        assert tokens.shape == (B, L, 32)
        np.testing.assert_allclose(tokens[real], hidden[-1][real], atol=1e-6)
        for i, t in enumerate(m.encode(TEXTS, output_value="token_embeddings")):  # encode: the same, unpadded
            np.testing.assert_allclose(t, tokens[i, :real[i].sum()], atol=1e-6)
        for i, text in enumerate(TEXTS):  # the textbook's hidden states of each text alone
            for h_fast, h_plain in zip(hidden, m.hidden_states(text)):
                np.testing.assert_allclose(h_fast[i, :real[i].sum()], h_plain, atol=1e-5)
        pooled, vectors = m.forward(features, "pooled"), m.forward(features)
        np.testing.assert_allclose(pooled, M.pool(tokens, features["attention_mask"], m.pooling_mode), atol=1e-6)
        if m is cls_tiny:
            assert m.pooling_mode == "cls"
            np.testing.assert_array_equal(pooled, tokens[:, 0])
            np.testing.assert_array_equal(vectors, pooled)  # no Normalize module
        else:
            assert m.pooling_mode == "mean"
            assert not np.allclose(np.linalg.norm(pooled, axis=1), 1, atol=1e-3)
            np.testing.assert_allclose(vectors, pooled / np.linalg.norm(pooled, axis=1, keepdims=True), atol=1e-6)
        np.testing.assert_allclose(m.encode(TEXTS, output_value="pooled"), pooled, atol=1e-6)


def test_pooled_is_the_pooling_module_of_the_real_model(model):
    """all-MiniLM-L6-v2 ends in a Normalize module: "pooled" is the mean of the token vectors before it."""
    texts = ["The quick brown fox jumps over the lazy dog.", "a short one", ""]
    features = model.tokenize(texts)
    pooled = model.forward(features, "pooled")
    plain = M.transformer(model.params, model.config, features["input_ids"], features["attention_mask"])[-1]
    np.testing.assert_allclose(pooled, M.pool(plain, features["attention_mask"], "mean"), atol=1e-5)
    np.testing.assert_allclose(model.finish(pooled, normalize_embeddings=True), model.encode(texts), atol=1e-6)


def test_token_helpers(model):
    ids = model.token_ids(["hello world"])[0]
    assert model.convert_ids_to_tokens(ids) == ["[CLS]", "hello", "world", "[SEP]"]
    assert model.convert_ids_to_tokens(np.array(ids)) == ["[CLS]", "hello", "world", "[SEP]"]
    long = "word " * 300
    assert model.untruncated_length(long) == 302 and len(model.token_ids([long])[0]) == model.max_seq_length
    with pytest.raises(TypeError, match="text is bytes"):
        model.untruncated_length(b"hello")


def _features(m, **changes):
    f = dict(m.tokenize(["hello world", "the cat"]))
    f.update(changes)
    return f


@pytest.mark.parametrize("make,error,match", [
    (lambda m: [[101, 102]], TypeError, "features must be a dict with input_ids and attention_mask"),
    (lambda m: {"input_ids": np.array([[1, 2]])}, TypeError, "attention_mask"),
    (lambda m: _features(m, input_ids=[[1, 2]]), TypeError, r"features\['input_ids'\] must be a 2-D integer"),
    (lambda m: _features(m, attention_mask=np.ones((2, 4), np.float32)), TypeError, "integer array"),
    (lambda m: _features(m, attention_mask=np.ones((2, 3), np.int64)), ValueError, r"shape \(2, 3\) and input_ids"),
    (lambda m: _features(m, input_ids=np.full((2, 4), 10 ** 6)), ValueError, r"'input_ids'\] holds values outside"),
    (lambda m: _features(m, input_ids=np.full((2, 4), -1)), ValueError, "outside 0 to"),
    (lambda m: _features(m, attention_mask=np.full((2, 4), 2)), ValueError, "attention_mask is 0 or 1"),
    (lambda m: _features(m, token_type_ids=np.full((2, 4), 2)), ValueError, "'token_type_ids'\\] holds values"),
    (lambda m: m.tokenize([]), ValueError, "at least one text"),
    (lambda m: {k: np.ones((1, 65), np.int64) for k in ("input_ids", "attention_mask")}, ValueError,
     "1 to 64 tokens"),
])
def test_forward_refuses_features_the_model_cannot_take(cls_tiny, make, error, match):
    with pytest.raises(error, match=match):
        cls_tiny.forward(make(cls_tiny))


def test_forward_and_finish_check_their_options(cls_tiny):
    features = cls_tiny.tokenize(TEXTS)
    with pytest.raises(ValueError, match="output_value must be one of"):
        cls_tiny.forward(features, "cls")
    without_types = {k: features[k] for k in ("input_ids", "attention_mask")}  # token_type_ids are optional
    np.testing.assert_array_equal(cls_tiny.forward(without_types), cls_tiny.forward(features))
    vectors = cls_tiny.forward(features)
    with pytest.raises(ValueError, match="truncate_dim must be an integer from 1 to 32"):
        cls_tiny.finish(vectors, truncate_dim=33)
    with pytest.raises(ValueError, match="precision must be one of"):
        cls_tiny.finish(vectors, precision="float16")
    with pytest.raises(TypeError, match=r"2-D array \[n, dim\].*v\[None\]"):
        cls_tiny.finish(vectors[0])
    tokens = cls_tiny.encode(TEXTS, output_value="token_embeddings")
    assert cls_tiny.finish(tokens, truncate_dim=4) is tokens  # token embeddings: only precision applies
    assert all(t.dtype == np.int8 for t in cls_tiny.finish(tokens, precision="int8"))
