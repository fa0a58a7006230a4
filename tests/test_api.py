"""The sentence-transformers calling conventions of SentenceEncoder: encode's options, encode_iter, similarity.

Golden values come from SentenceTransformer.encode / .similarity themselves (tests/golden/util.npz, written by
scripts/make_golden_util.py). Option semantics that need no golden numbers run on the tiny random BERT of
tests/tiny_bert.py, so that the real model runs only on a handful of short texts.
"""

from __future__ import annotations

import json
import shutil
import sys

import numpy as np
import pytest
import tiny_bert
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

import tinyminilm
from conftest import GOLDEN
from tinyminilm import util

ENCODE_TEXTS = 6  # scripts/make_golden_util.py encodes golden_texts[:6] with each option


@pytest.fixture(scope="module")
def gu() -> dict[str, np.ndarray]:
    with np.load(GOLDEN / "util.npz") as z:
        return dict(z)


@pytest.fixture(scope="module")
def texts(golden_texts) -> list[str]:
    return [t["text"] for t in golden_texts[:ENCODE_TEXTS]]


@pytest.fixture(scope="module")
def tiny(tmp_path_factory):
    """The tiny BERT with CLS pooling and no Normalize module, so normalize_embeddings has work to do."""
    return tinyminilm.load(tiny_bert.make_folder(tmp_path_factory.mktemp("tiny") / "cls", "pooling_mode_cls_token",
                                                 False))


@pytest.fixture(scope="module")
def floats(model, texts) -> np.ndarray:
    return model.encode(texts)


# --------------------------------------------------------------------------------------------------------------
# encode against SentenceTransformer.encode
# --------------------------------------------------------------------------------------------------------------

def test_encode_matches_sentence_transformers(gu, floats):
    assert floats.dtype == np.float32 and floats.shape == (ENCODE_TEXTS, 384)
    np.testing.assert_allclose(floats, gu["enc_float32"], atol=1e-6, rtol=0)


def test_truncate_dim_comes_before_normalization(gu, model, texts):
    got = model.encode(texts, truncate_dim=64, normalize_embeddings=True)
    assert got.shape == (ENCODE_TEXTS, 64)
    np.testing.assert_allclose(got, gu["enc_truncate64_normalized"], atol=1e-6, rtol=0)
    np.testing.assert_allclose(np.linalg.norm(got, axis=1), 1, atol=1e-6)
    plain = model.encode(texts, truncate_dim=64)  # without normalize_embeddings, the first 64 numbers as they are
    np.testing.assert_allclose(plain, gu["enc_truncate64"], atol=1e-6, rtol=0)
    assert np.all(np.linalg.norm(plain, axis=1) < 0.9)


@pytest.mark.parametrize("precision", ["int8", "uint8", "binary", "ubinary"])
def test_precision_quantizes_the_whole_output(gu, model, texts, floats, precision):
    got = model.encode(texts, precision=precision)
    want = gu[f"enc_{precision}"]
    assert got.dtype == want.dtype and got.shape == want.shape
    np.testing.assert_array_equal(got, util.quantize_embeddings(floats, precision))  # quantized as a whole
    # Our floats differ from torch's by ~1e-7, which can move a value across a bucket edge: one bucket at most,
    # rarely (measured 7-9 of 15,360 int8 entries on held-out texts, 0 of the binary ones).
    diff = np.abs(got.astype(np.int16) - want.astype(np.int16))
    assert diff.max() <= 1 and (diff > 0).mean() < 0.01


def test_token_embeddings_are_unpadded_per_text(gu, model, texts):
    got = model.encode(texts[:3], output_value="token_embeddings")
    assert isinstance(got, list) and [len(t) for t in got] == gu["enc_tokens_lengths"].tolist()
    assert [len(ids) for ids in model.token_ids(texts[:3])] == [len(t) for t in got]
    assert all(t.dtype == np.float32 and t.shape[1] == 384 for t in got)
    np.testing.assert_allclose(np.concatenate(got), gu["enc_tokens"], atol=1e-5, rtol=0)  # unnormalized, |x| ~ 10
    single = model.encode(texts[1], output_value="token_embeddings")
    np.testing.assert_allclose(single, got[1], atol=1e-5)
    # truncate_dim and normalize_embeddings apply to sentence embeddings only, as in sentence-transformers
    same = model.encode(texts[:3], output_value="token_embeddings", truncate_dim=8, normalize_embeddings=True)
    assert [t.shape for t in same] == [t.shape for t in got]


def test_token_embeddings_quantize_with_shared_ranges(gu, model, texts):
    got = model.encode(texts[:3], output_value="token_embeddings", precision="int8")
    floats = model.encode(texts[:3], output_value="token_embeddings")
    assert [t.dtype for t in got] == [np.int8] * 3
    for g, w in zip(got, util.quantize_embeddings(floats, "int8")):
        np.testing.assert_array_equal(g, w)
    diff = np.abs(np.concatenate(got).astype(np.int16) - gu["enc_tokens_int8"].astype(np.int16))
    assert diff.max() <= 1 and (diff > 0).mean() < 0.01


# --------------------------------------------------------------------------------------------------------------
# encode: input and output forms (tiny model)
# --------------------------------------------------------------------------------------------------------------

TINY_TEXTS = ["the cat sat on the mat.", "hello world", "a quick brown fox jumps over the lazy dog!", "fox",
              "the dogs jumped quickly", ""]


def test_single_text_gives_a_vector(tiny):
    v = tiny.encode("hello world")
    assert v.shape == (32,) and v.dtype == np.float32
    np.testing.assert_array_equal(v, tiny.encode(["hello world"])[0])
    assert tiny.encode("hello world", convert_to_numpy=False).shape == (32,)
    assert tiny.encode("fox", precision="ubinary").shape == (4,)


@pytest.mark.parametrize("precision,shape,dtype", [("float32", (0, 32), np.float32), ("int8", (0, 32), np.int8),
                                                   ("uint8", (0, 32), np.uint8), ("binary", (0, 4), np.int8),
                                                   ("ubinary", (0, 4), np.uint8)])
def test_empty_input_gives_zero_rows(tiny, precision, shape, dtype):
    """A deliberate difference: sentence-transformers returns np.array([]) (shape (0,), float64)."""
    out = tiny.encode([], precision=precision)
    assert out.shape == shape and out.dtype == dtype
    assert tiny.encode(iter([])).shape == (0, 32)
    assert tiny.encode([], convert_to_numpy=False) == []
    assert tiny.encode([], output_value="token_embeddings") == []


def test_iterables_of_any_kind(tiny):
    want = tiny.encode(TINY_TEXTS)
    np.testing.assert_array_equal(tiny.encode(t for t in TINY_TEXTS), want)  # sentence-transformers refuses this
    np.testing.assert_array_equal(tiny.encode(tuple(TINY_TEXTS)), want)
    np.testing.assert_array_equal(tiny.encode(np.array(TINY_TEXTS)), want)


def test_convert_to_numpy_false_gives_a_list_of_vectors(tiny):
    rows = tiny.encode(TINY_TEXTS, convert_to_numpy=False)
    assert isinstance(rows, list) and len(rows) == len(TINY_TEXTS) and all(r.shape == (32,) for r in rows)
    np.testing.assert_array_equal(np.stack(rows), tiny.encode(TINY_TEXTS))
    q = tiny.encode(TINY_TEXTS, convert_to_numpy=False, precision="int8")
    assert all(r.dtype == np.int8 for r in q)


def test_normalize_embeddings(tiny):
    raw = tiny.encode(TINY_TEXTS)
    assert not np.allclose(np.linalg.norm(raw, axis=1), 1)
    unit = tiny.encode(TINY_TEXTS, normalize_embeddings=True)
    np.testing.assert_allclose(unit, raw / np.linalg.norm(raw, axis=1, keepdims=True), atol=1e-6)
    t = tiny.encode(TINY_TEXTS, truncate_dim=5, normalize_embeddings=True)
    np.testing.assert_allclose(t, raw[:, :5] / np.linalg.norm(raw[:, :5], axis=1, keepdims=True), atol=1e-6)


def test_output_order_is_input_order_whatever_the_batching(tiny):
    texts = TINY_TEXTS * 3
    want = np.stack([tiny.encode(t) for t in texts])
    for batch_size in (1, 2, 5, 64):
        np.testing.assert_allclose(tiny.encode(texts, batch_size=batch_size), want, atol=1e-6)


@pytest.mark.parametrize("kwargs,error,match", [
    ({"batch_size": 0}, ValueError, "batch_size must be a positive integer"),
    ({"batch_size": 2.0}, ValueError, "batch_size"),
    ({"output_value": "cls"}, ValueError, "output_value must be"),
    ({"precision": "float16"}, ValueError, "precision must be one of"),
    ({"truncate_dim": 0}, ValueError, "truncate_dim must be an integer from 1 to 32"),
    ({"truncate_dim": 33}, ValueError, "truncate_dim"),  # sentence-transformers silently keeps all 32
    ({"truncate_dim": True}, ValueError, "truncate_dim"),
])
def test_bad_options_are_refused(tiny, kwargs, error, match):
    with pytest.raises(error, match=match):
        tiny.encode(TINY_TEXTS, **kwargs)


def test_bad_inputs_are_refused(tiny):
    with pytest.raises(TypeError, match="bytes"):
        tiny.encode(b"hello")
    with pytest.raises(TypeError, match=r"texts\[1\] is int"):
        tiny.encode(["hello", 3])
    with pytest.raises(TypeError, match="iterable of str"):
        tiny.encode(42)


@pytest.mark.parametrize("precision", ["int8", "uint8"])
def test_scalar_quantization_of_one_text_is_refused(tiny, precision):
    """sentence-transformers raises too (no range in one row); ours says so before running the model."""
    with pytest.raises(ValueError, match="single text has no range"):
        tiny.encode("hello world", precision=precision)
    with pytest.raises(ValueError, match="single text"):
        tiny.encode(["hello world"], precision=precision)


def test_progress_bar_counts_texts(tiny, capsys):
    tiny.encode(TINY_TEXTS[:5], batch_size=2, show_progress_bar=True)  # 3 batches, 5 texts
    err = capsys.readouterr().err
    assert "5/5" in err and "text" in err
    for show in (None, False):
        tiny.encode(TINY_TEXTS[:5], batch_size=2, show_progress_bar=show)
        assert capsys.readouterr().err == ""


# --------------------------------------------------------------------------------------------------------------
# Properties
# --------------------------------------------------------------------------------------------------------------

WORDS = st.sampled_from(["the", "cat", "dog", "sat", "on", "mat", "quick", "brown", "fox", "hello", "world", "zebra",
                         ".", "!", "Hello", "sentences"])
TEXT = st.lists(WORDS, max_size=20).map(" ".join)


@settings(max_examples=8, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(texts=st.lists(TEXT, min_size=1, max_size=6), batch_size=st.integers(1, 4))
def test_encode_list_equals_stacked_single_encodes(tiny, texts, batch_size):
    batched = tiny.encode(texts, batch_size=batch_size)
    # the tiny CLS model is not normalized (values up to ~3): 1e-6 relative as well as absolute, float32 rounding
    np.testing.assert_allclose(batched, np.stack([tiny.encode(t) for t in texts]), atol=1e-6, rtol=1e-6)


@settings(max_examples=8, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(texts=st.lists(TEXT, max_size=8), chunk_size=st.integers(1, 5))
def test_generator_list_and_stream_agree(tiny, texts, chunk_size):
    want = tiny.encode(texts)
    np.testing.assert_array_equal(tiny.encode(t for t in texts), want)
    streamed = list(tiny.encode_iter((t for t in texts), batch_size=2, chunk_size=chunk_size))
    assert len(streamed) == len(texts)
    if texts:
        np.testing.assert_allclose(np.stack(streamed), want, atol=1e-6)


def test_real_model_list_equals_single_encodes(model, texts, floats):
    np.testing.assert_allclose(np.stack([model.encode(t) for t in texts[:3]]), floats[:3], atol=1e-6)


# --------------------------------------------------------------------------------------------------------------
# encode_iter
# --------------------------------------------------------------------------------------------------------------

def test_encode_iter_reads_one_chunk_at_a_time(tiny):
    pulled = []

    def source():
        for i in range(100):
            pulled.append(i)
            yield TINY_TEXTS[i % len(TINY_TEXTS)]

    stream = tiny.encode_iter(source(), batch_size=2, chunk_size=7)
    assert pulled == []  # nothing read before the first vector is asked for
    first = next(stream)
    assert len(pulled) == 7, "memory bounded by one chunk, not the corpus"
    np.testing.assert_allclose(first, tiny.encode(TINY_TEXTS[0]), atol=1e-6)
    rest = list(stream)
    assert len(rest) == 99 and len(pulled) == 100
    want = tiny.encode([TINY_TEXTS[i % len(TINY_TEXTS)] for i in range(100)])
    np.testing.assert_allclose(np.stack([first] + rest), want, atol=1e-6)


def test_encode_iter_options(tiny):
    got = list(tiny.encode_iter(TINY_TEXTS, chunk_size=4, precision="ubinary", truncate_dim=16))
    np.testing.assert_array_equal(np.stack(got), tiny.encode(TINY_TEXTS, precision="ubinary", truncate_dim=16))
    tokens = list(tiny.encode_iter(TINY_TEXTS, output_value="token_embeddings", chunk_size=4))
    assert [len(t) for t in tokens] == [len(x) for x in tiny.token_ids(TINY_TEXTS)]


@pytest.mark.parametrize("args,kwargs,error,match", [
    (("hello",), {}, TypeError, "for one text use encode"),
    ((TINY_TEXTS,), {"chunk_size": 0}, ValueError, "chunk_size must be a positive integer"),
    ((TINY_TEXTS,), {"batch_size": -1}, ValueError, "batch_size"),
    ((TINY_TEXTS,), {"precision": "int8"}, ValueError, "every chunk would get its own buckets"),
    ((TINY_TEXTS,), {"precision": "int4"}, ValueError, "precision must be one of"),
    ((TINY_TEXTS,), {"convert_to_numpy": False}, TypeError, "convert_to_numpy"),
    ((TINY_TEXTS,), {"normalise": True}, TypeError, "unexpected keyword"),
    ((TINY_TEXTS,), {"output_value": "cls"}, ValueError, "output_value must be"),
    ((TINY_TEXTS,), {"truncate_dim": 0}, ValueError, "truncate_dim must be an integer from 1 to 32"),
    ((TINY_TEXTS,), {"truncate_dim": 33}, ValueError, "truncate_dim"),
])
def test_encode_iter_checks_arguments_before_reading(tiny, args, kwargs, error, match):
    with pytest.raises(error, match=match):
        tiny.encode_iter(*args, **kwargs)  # raised at the call, not at the first next()


def test_encode_iter_without_tqdm_fails_at_the_call(tiny, monkeypatch):
    monkeypatch.setitem(sys.modules, "tqdm", None)  # as if tqdm were not installed
    monkeypatch.setitem(sys.modules, "tqdm.auto", None)
    with pytest.raises(ImportError, match="needs tqdm"):
        tiny.encode_iter(TINY_TEXTS, show_progress_bar=True)
    with pytest.raises(ImportError, match="needs tqdm"):
        tiny.encode(TINY_TEXTS, show_progress_bar=True)


def test_encode_iter_shows_one_bar_for_the_whole_stream(tiny, monkeypatch, capsys):
    import tqdm.auto

    bars = []

    class CountingBar(tqdm.auto.tqdm):
        def __init__(self, *a, **k):
            bars.append(self)
            super().__init__(*a, **k)

    monkeypatch.setattr(tqdm.auto, "tqdm", CountingBar)
    got = list(tiny.encode_iter((t for t in TINY_TEXTS * 3), chunk_size=4, show_progress_bar=True))
    assert len(got) == 3 * len(TINY_TEXTS)
    assert len(bars) == 1 and bars[0].n == len(got), "one bar counting every text of the stream"


def test_token_embeddings_are_owned_arrays_even_for_duplicates(tiny):
    """Each text gets its own array: editing one never changes another, and none keeps its padded batch alive."""
    texts = ["hello world", "a quick brown fox jumps over the lazy dog!", "hello world"]
    tokens = tiny.encode(texts, output_value="token_embeddings", batch_size=3)
    assert all(t.base is None and t.flags.owndata for t in tokens)  # not views into a [B, L, H] batch
    assert not np.shares_memory(tokens[0], tokens[2])
    np.testing.assert_array_equal(tokens[0], tokens[2])
    tokens[0][:] = 0
    assert np.abs(tokens[2]).max() > 0


# --------------------------------------------------------------------------------------------------------------
# Model surface: similarity, max_seq_length, dimension, tokenize
# --------------------------------------------------------------------------------------------------------------

@pytest.mark.parametrize("name", ["cosine", "dot", "euclidean", "manhattan"])
def test_similarity_matches_sentence_transformers(gu, golden, model_dir, name):
    m = tinyminilm.load(model_dir)  # a fresh instance: the session's model keeps its default
    assert m.similarity_fn_name == "cosine"
    m.similarity_fn_name = name
    assert m.similarity_fn_name == name
    E = golden["embeddings"]
    got = m.similarity(E[:40], E[40:100])
    assert got.shape == (40, 60) and got.dtype == np.float32
    # manhattan: a float32 sum of 384 terms, ~22 here, whose rounding differs from torch's: 2e-6 relative
    tol = 2e-6 * float(np.abs(gu[f"sim_{name}_E"]).max()) if name == "manhattan" else 1e-6
    np.testing.assert_allclose(got, gu[f"sim_{name}_E"], atol=tol, rtol=0)
    pair = m.similarity_pairwise(E[:50], E[50:100])
    np.testing.assert_allclose(pair, gu[f"pairwise_{name}_E"], atol=tol, rtol=0)


def test_similarity_fn_name_is_checked_and_resettable(model_dir):
    m = tinyminilm.load(model_dir)
    with pytest.raises(ValueError, match="similarity_fn_name must be one of cosine, dot, euclidean, manhattan"):
        m.similarity_fn_name = "maxsim"
    m.similarity_fn_name = "dot"
    m.similarity_fn_name = None  # back to the default, as sentence-transformers
    assert m.similarity_fn_name == "cosine"

    class Member:  # a sentence_transformers SimilarityFunction member has the name in .value
        value = "manhattan"

    m.similarity_fn_name = Member()
    assert m.similarity_fn_name == "manhattan"


def test_similarity_fn_name_is_read_from_the_model_folder(tmp_path):
    folder = tiny_bert.make_folder(tmp_path / "m", "pooling_mode_mean_tokens", True)
    (folder / "config_sentence_transformers.json").write_text(json.dumps({"similarity_fn_name": "dot"}))
    m = tinyminilm.load(folder)
    assert m.similarity_fn_name == "dot"
    a = m.encode(["hello world", "the cat"])
    np.testing.assert_array_equal(m.similarity(a, a), util.dot_score(a, a))


def test_max_seq_length_is_settable_within_the_position_table(tmp_path):
    folder = shutil.copytree(tiny_bert.make_folder(tmp_path / "src", "pooling_mode_mean_tokens", True),
                             tmp_path / "m")
    m = tinyminilm.load(folder)
    long = "the cat " * 40
    assert len(m.token_ids([long])[0]) == tiny_bert.MAX_SEQ_LENGTH
    m.max_seq_length = 8
    assert m.max_seq_length == 8 and len(m.token_ids([long])[0]) == 8
    assert m.encode(long).shape == (32,)
    m.max_seq_length = 64  # = max_position_embeddings
    with pytest.raises(ValueError, match="max_seq_length must be an integer from 2 to 64"):
        m.max_seq_length = 65


def test_dimension_and_tokenize(model):
    assert model.get_embedding_dimension() == 384
    f = model.tokenize(["hello world", "a longer sentence than the first"])
    assert set(f) >= {"input_ids", "attention_mask"}
    assert f["input_ids"].dtype == np.int64 and f["input_ids"].shape == f["attention_mask"].shape
    assert f["attention_mask"].sum(axis=1).tolist() == [len(x) for x in model.token_ids(["hello world",
                                                                                          "a longer sentence than the first"])]
    assert f["input_ids"][0, :4].tolist() == [101, 7592, 2088, 102]  # [CLS] hello world [SEP]
