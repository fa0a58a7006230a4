"""tinyminilm/fast.py gives what the textbook tinyminilm/model.py gives: function by function, and end to end on
the tiny random BERT and on the real model's golden texts (≤ 1e-6). The golden files pin both to
sentence-transformers."""

from __future__ import annotations

import numpy as np
import pytest

import tiny_bert
from tinyminilm import fast as F
from tinyminilm import model as M
from tinyminilm.config import read_config
from tinyminilm.weights import load_params

TOL = 1e-6


@pytest.fixture(scope="module")
def tiny(tmp_path_factory):
    folder = tiny_bert.make_folder(tmp_path_factory.mktemp("t") / "m", "pooling_mode_mean_tokens", True)
    config = read_config(folder)
    return config, load_params(folder / "model.safetensors", config.bert)


def mask_bias(mask: np.ndarray) -> np.ndarray:
    return (1 - mask.astype(np.float32)) * np.finfo(np.float32).min  # as model.transformer builds it


def test_fast_names_are_the_plain_names():
    plain = {n for n, f in vars(M).items() if callable(f) and getattr(f, "__module__", "") == M.__name__
             and not n.startswith("_")}
    assert set(F.__all__) - {"residual_layer_norm"} <= plain  # every fast function has a plain twin
    for name in F.__all__:
        assert getattr(F, name).__doc__, name
    for name in ("gelu", "softmax", "layer_norm", "linear", "attention", "feed_forward", "encoder_layer",
                 "transformer", "sentence_embedding"):  # written again for speed, and saying which plain one
        fn = getattr(F, name)
        assert fn is not getattr(M, name) and fn.__doc__.startswith(f"= model.{name}"), name
        assert fn.__module__ == F.__name__ and fn.__code__ is not getattr(M, name).__code__, name  # written here


def test_elementwise_functions_equal_the_plain_ones():
    rng = np.random.default_rng(0)
    h = (rng.standard_normal((70, 1536)) * 4).astype(np.float32)
    before = h.copy()
    assert np.array_equal(F.gelu(h), M.gelu(h))  # the same operations in the same order: the same rounding
    assert np.array_equal(h, before)  # the input is left alone
    assert np.array_equal(F._gelu_in_place(h.copy(), block=1000), M.gelu(h))  # blocks of any size
    x, a = (rng.standard_normal((2, 5, 384)).astype(np.float32) for _ in range(2))
    g, b = rng.standard_normal(384).astype(np.float32), rng.standard_normal(384).astype(np.float32)
    np.testing.assert_allclose(F.layer_norm(x, g, b, 1e-12), M.layer_norm(x, g, b, 1e-12), atol=2e-6)
    np.testing.assert_allclose(F.residual_layer_norm(x, a.copy(), g, b, 1e-12), M.layer_norm(x + a, g, b, 1e-12),
                               atol=2e-6)
    s = (rng.standard_normal((3, 4, 9, 9)) * 10).astype(np.float32)
    np.testing.assert_allclose(F.softmax(s), M.softmax(s), atol=TOL)


@pytest.mark.parametrize("rows", [7, 300])  # both sides of fast._FEW_ROWS: (wᵀxᵀ)ᵀ and x·w
def test_linear_equals_the_plain_one(tiny, rows):
    _, params = tiny
    x = np.random.default_rng(0).standard_normal((3, rows, 32)).astype(np.float32)
    w = params["layers"][0]["ffn_in"]
    y = F.linear(x, **w)
    assert y.flags.c_contiguous and y.dtype == np.float32 and y.shape == (3, rows, 37)
    np.testing.assert_allclose(y, M.linear(x, **w), atol=TOL)


@pytest.mark.parametrize("size, expected", [("2048K", 2 << 20), ("1024K", 1 << 20), ("512K", 512 << 10),
                                             ("2M", 2 << 20), ("64K", 256 << 10), ("32M", 4 << 20),
                                             ("lots", 1 << 20), (None, 1 << 20)])
def test_block_sizes_follow_the_l2_cache_linux_reports(tmp_path, size, expected):
    """fast's blocks are sized from one core's L2 (sysfs, as Linux reports it), clamped, 1 MiB when unknown;
    the L1 data and instruction caches listed beside it are not taken for it."""
    for i, (level, kind, text) in enumerate([("1", "Data", "48K"), ("1", "Instruction", "32K"), ("2", "Unified", size)]):
        if text is not None:
            folder = tmp_path / f"index{i}"
            folder.mkdir()
            for name, value in (("level", level), ("type", kind), ("size", text)):
                (folder / name).write_text(value + "\n")
    assert F._l2_cache_bytes(tmp_path) == expected
    assert F._l2_cache_bytes(tmp_path / "missing") == 1 << 20
    l2 = F._l2_cache_bytes()
    assert F._SCORES_PER_CHUNK == l2 // 8 and F._GELU_BLOCK == l2 // 32 and F._GELU_ROWS == max(1, l2 // 32 // 1536)


@pytest.mark.parametrize("rows, K, N, width", [(1, 384, 1152, 32), (12, 1536, 384, 8), (24, 384, 384, 32),
                                                 (5, 32, 96, 16)])
def test_column_block_product_equals_the_plain_product(rows, K, N, width):
    rng = np.random.default_rng(rows)
    w = (rng.standard_normal((N, K)) / np.sqrt(K)).astype(np.float32).T  # stored [out, in], as loaded
    x = rng.standard_normal((rows, K)).astype(np.float32)
    out = np.full((rows, N), np.nan, np.float32)
    F._column_block_product(x, w, out, width)
    exact = x.astype(np.float64) @ w.astype(np.float64)  # outputs ~1: float32's rounding over K terms is ~1e-6
    np.testing.assert_allclose(out, exact, atol=1e-5)
    assert np.abs(out - exact).max() <= 2 * np.abs(x @ w - exact).max() + 1e-6  # as close as the one-product form


def test_product_chooses_column_blocks_only_for_few_rows_on_a_small_matrix_thread(monkeypatch):
    """_product takes the column-block form exactly when fast._block_width gives a width: at most 24 rows, BLAS
    on one thread with a small-matrix path, and a weight stored [out, in] whose columns split into blocks."""
    rng = np.random.default_rng(0)
    w_in, w_out, w_odd = (rng.standard_normal(s).astype(np.float32).T for s in ((1536, 384), (384, 1536), (37, 32)))
    monkeypatch.setattr(F, "small_products_unpacked", lambda: True)
    assert F._block_width(np.zeros((24, 384), np.float32), w_in) == 32  # [K, width] blocks of 48 KiB
    assert F._block_width(np.zeros((12, 1536), np.float32), w_out) == 8
    assert F._block_width(np.zeros((25, 384), np.float32), w_in) is None  # too many rows
    assert F._block_width(np.zeros((3, 384), np.float32), np.ascontiguousarray(w_in)) is None  # not [out, in]
    assert F._block_width(np.zeros((3, 32), np.float32), w_odd) is None  # 37 columns: no power-of-two block
    calls = []
    monkeypatch.setattr(F, "_column_block_product", lambda *a: calls.append(a[3]))
    F._product(np.zeros((12, 1536), np.float32), w_out, np.empty((12, 384), np.float32))
    assert calls == [8]
    strided = np.zeros((12, 768), np.float32)[:, ::2]  # an output that no reshape can view: the packed form
    F._product(np.ones((12, 1536), np.float32), w_out, strided)
    assert calls == [8] and np.allclose(strided, np.ones((12, 1536), np.float32) @ w_out, atol=1e-4)
    monkeypatch.setattr(F, "small_products_unpacked", lambda: False)  # BLAS on several threads, or no such path
    assert F._block_width(np.zeros((12, 384), np.float32), w_in) is None
    F._product(np.zeros((12, 1536), np.float32), w_out, np.empty((12, 384), np.float32))
    assert calls == [8]


@pytest.mark.parametrize("chunk", [None, 1])  # all sequences in one chunk, and one sequence per chunk
def test_attention_equals_the_plain_one(tiny, monkeypatch, chunk):
    config, params = tiny
    if chunk is not None:
        monkeypatch.setattr(F, "_SCORES_PER_CHUNK", chunk)
    ids, types, mask = tiny_bert.random_batch(batch=5)
    x = M.embed(ids, types, params, 1e-12)
    layer = params["layers"][0]
    plain_w, fast_w = [], []
    ref = M.attention(x, mask_bias(mask), layer["qkv"], layer["attn_out"], 4, plain_w)
    got = F.attention(x, mask_bias(mask), layer["qkv"], layer["attn_out"], 4, fast_w)
    np.testing.assert_allclose(got, ref, atol=TOL)
    np.testing.assert_allclose(fast_w[0], plain_w[0], atol=TOL)
    assert plain_w[0].shape == (5, 4, 12, 12)
    np.testing.assert_allclose(plain_w[0].sum(-1), 1, atol=1e-6)
    padding_keys = np.broadcast_to(mask[:, None, None, :] == 0, plain_w[0].shape)
    assert np.all(plain_w[0][padding_keys] == 0) and np.all(fast_w[0][padding_keys] == 0)


def test_attention_in_head_blocks_and_with_any_mask(tiny, monkeypatch):
    """Blocks of a few heads of one sequence (long sequences), a mask that is not a tail of padding, a sequence
    with no real key at all: each as model.attention gives it."""
    config, params = tiny
    ids, types, mask = tiny_bert.random_batch(batch=5)
    x = M.embed(ids, types, params, 1e-12)
    layer = params["layers"][0]
    args = (layer["qkv"], layer["attn_out"], 4)
    monkeypatch.setattr(F, "_SCORES_PER_CHUNK", 12 * 12 * 3)  # one sequence's scores do not fit: 3 heads a block
    assert F._blocks(5, 12, 4, whole_sequences=False)[:2] == [(slice(0, 1), slice(0, 3)), (slice(0, 1), slice(3, 6))]
    np.testing.assert_allclose(F.attention(x, mask_bias(mask), *args), M.attention(x, mask_bias(mask), *args),
                               atol=TOL)
    holes = mask.copy()
    holes[1, 3] = holes[2, 0] = 0  # padding inside a sequence, and at its start
    holes[3] = 0  # no real key at all: the plain softmax gives every key the same weight
    assert F._key_lengths(mask_bias(holes)) is None and F._key_lengths(mask_bias(mask)) is not None
    np.testing.assert_allclose(F.attention(x, mask_bias(holes), *args), M.attention(x, mask_bias(holes), *args),
                               atol=TOL)


def test_attention_redoes_a_block_whose_exp_overflows(tiny):
    """Scores beyond float32's exp range (here ~30× the usual) take the max-shifted path: still model.attention."""
    config, params = tiny
    ids, types, mask = tiny_bert.random_batch(batch=3)
    x = M.embed(ids, types, params, 1e-12)
    layer = params["layers"][0]
    qkv = {"w": layer["qkv"]["w"] * np.float32(30), "b": layer["qkv"]["b"] * np.float32(30)}
    q, k, _ = np.split(x @ qkv["w"] + qkv["b"], 3, axis=-1)
    q, k = (a.reshape(3, 12, 4, 8).transpose(0, 2, 1, 3) for a in (q, k))
    assert (q @ k.transpose(0, 1, 3, 2) / np.sqrt(8)).max() > 89  # exp would overflow float32 without the shift
    plain_w, fast_w = [], []
    ref = M.attention(x, mask_bias(mask), qkv, layer["attn_out"], 4, plain_w)
    with np.errstate(all="raise"):  # no floating-point warning escapes from the fast path
        got = F.attention(x, mask_bias(mask), qkv, layer["attn_out"], 4, fast_w)
    assert np.isfinite(got).all()
    np.testing.assert_allclose(got, ref, atol=TOL * np.abs(ref).max())
    np.testing.assert_allclose(fast_w[0], plain_w[0], atol=TOL)


def test_bias_gelu_equals_the_plain_gelu(tiny):
    rng = np.random.default_rng(2)
    h = (rng.standard_normal((23, 40)) * 4).astype(np.float32)
    b = rng.standard_normal(40).astype(np.float32)
    got = h.copy()
    F._bias_gelu_in_place(got, b, [np.empty((5, 40), np.float32) for _ in range(3)])  # blocks of 5 rows, one partial
    assert np.array_equal(got, M.gelu(h + b))  # the same operations in the same order: the same rounding


def test_feed_forward_and_layer_equal_the_plain_ones(tiny, monkeypatch):
    config, params = tiny
    monkeypatch.setattr(F, "_FFN_ROWS", 7)  # several blocks of rows, one of them partial
    monkeypatch.setattr(F, "_GELU_ROWS", 3)  # and GELU blocks inside them, one of them partial
    ids, types, mask = tiny_bert.random_batch(batch=5)
    x = M.embed(ids, types, params, 1e-12)
    layer = params["layers"][1]
    np.testing.assert_allclose(F.feed_forward(x, layer["ffn_in"], layer["ffn_out"]),
                               M.feed_forward(x, layer["ffn_in"], layer["ffn_out"]), atol=TOL)
    np.testing.assert_allclose(F.encoder_layer(x, mask_bias(mask), layer, 4, 1e-12),
                               M.encoder_layer(x, mask_bias(mask), layer, 4, 1e-12), atol=TOL)


def test_tiny_bert_end_to_end(tiny):
    config, params = tiny
    ids, types, mask = tiny_bert.random_batch(batch=6, length=16)
    plain_w, fast_w = [], []
    plain = M.transformer(params, config, ids, mask, types, attentions=plain_w)
    fast = F.transformer(params, config, ids, mask, types, attentions=fast_w)
    assert len(plain) == len(fast) == 3 and len(plain_w) == len(fast_w) == 2
    real = mask.astype(bool)
    for p, f in zip(plain, fast):  # hidden states reach ~4, not unit vectors: TOL relative to their size
        assert np.abs(p[real] - f[real]).max() <= TOL * np.abs(p[real]).max()
    for p, f in zip(plain_w, fast_w):  # each layer's attention weights [B, n_head, L, L]
        np.testing.assert_allclose(f, p, atol=TOL)
    last = F.transformer(params, config, ids, mask, types, all_layers=False)
    assert len(last) == 1 and np.array_equal(last[0], fast[-1])
    np.testing.assert_allclose(F.sentence_embedding(params, config, ids, mask),
                               M.sentence_embedding(params, config, ids, mask), atol=TOL)


def test_real_model_on_the_golden_texts(model, golden_texts):
    """The whole real model, plain against fast, on every golden text (short, long, CJK, emoji, empty)."""
    texts = [t["text"] for t in golden_texts]
    order = np.argsort([len(t) for t in texts])
    worst = 0.0
    for s in range(0, len(texts), 32):  # batches of similar length, padded as encode pads them
        batch = model.tokenize([texts[i] for i in order[s:s + 32]])
        args = (model.params, model.config, batch["input_ids"], batch["attention_mask"])
        worst = max(worst, float(np.abs(F.sentence_embedding(*args) - M.sentence_embedding(*args)).max()))
    print(f"max abs diff fast vs plain over {len(texts)} golden texts: {worst:.3g}")
    assert worst <= TOL


def test_real_model_in_column_blocks_on_the_golden_texts(model, golden_texts, monkeypatch):
    """The column-block products (few rows, one BLAS thread, AVX-512 OpenBLAS), forced on whatever kernel this
    machine has: each short golden text alone, and pairs of them, as a single query or a small batch run."""
    monkeypatch.setattr(F, "small_products_unpacked", lambda: True)
    chosen = []
    monkeypatch.setattr(F, "_column_block_product", lambda *a, _real=F._column_block_product: (
        chosen.append(a[3]), _real(*a)))
    texts = [t["text"] for t in golden_texts]
    short = [t for t in texts if 0 < len(model.token_ids([t])[0]) <= 12][:40]
    worst = 0.0
    for group in [[t] for t in short[:20]] + [short[i:i + 2] for i in range(20, len(short), 2)]:
        batch = model.tokenize(group)
        args = (model.params, model.config, batch["input_ids"], batch["attention_mask"])
        worst = max(worst, float(np.abs(F.sentence_embedding(*args) - M.sentence_embedding(*args)).max()))
    assert len(short) == 40 and set(chosen) == {8, 32}  # both block widths ran
    assert worst <= TOL


def test_last_layer_only_keeps_one_array(tiny, monkeypatch):
    """all_layers=False frees each layer's input once the next layer has it: only one hidden state is alive."""
    import weakref

    config, params = tiny
    ids, types, mask = tiny_bert.random_batch()
    for impl in (M, F):
        inputs, alive = [], []
        real_layer = impl.encoder_layer

        def spy(x, *a, _real=real_layer, **k):
            alive.append(sum(r() is not None for r in inputs))  # earlier layers' inputs still referenced
            inputs.append(weakref.ref(x))
            return _real(x, *a, **k)

        monkeypatch.setattr(impl, "encoder_layer", spy)  # transformer looks encoder_layer up in its module
        out = impl.transformer(params, config, ids, mask, types, all_layers=False)
        monkeypatch.undo()
        assert len(out) == 1 and out[0].shape == (4, 12, 32) and len(alive) == 2
        assert alive == [0, 0], f"{impl.__name__}: earlier hidden states kept alive during the pass: {alive}"
