"""Each speed-up in the forward pass gives the plain computation's numbers (and the golden files pin both)."""

from __future__ import annotations

import numpy as np
import pytest

import tiny_bert
from tinyminilm import model as M
from tinyminilm.config import read_config
from tinyminilm.weights import load_params


@pytest.fixture(scope="module")
def tiny(tmp_path_factory):
    folder = tiny_bert.make_folder(tmp_path_factory.mktemp("t") / "m", "pooling_mode_mean_tokens", True)
    config = read_config(folder)
    return config, load_params(folder / "model.safetensors", config.bert)


def plain_attention(x, mask_bias, qkv, out, n_head):
    """The textbook version: all sequences at once, out-of-place softmax, q, k, v from separate slices."""
    B, L, H = x.shape
    D = H // n_head
    q, k, v = np.split(x @ qkv["w"] + qkv["b"], 3, axis=-1)
    q, k, v = (a.reshape(B, L, n_head, D).transpose(0, 2, 1, 3) for a in (q, k, v))
    w = M.softmax(q @ k.transpose(0, 1, 3, 2) / np.float32(np.sqrt(D)) + mask_bias[:, None, None, :])
    return (w @ v).transpose(0, 2, 1, 3).reshape(B, L, H) @ out["w"] + out["b"]


def test_chunked_attention_equals_all_at_once(tiny, monkeypatch):
    config, params = tiny
    ids, types, mask = tiny_bert.random_batch(batch=5)
    x = M.embed(ids, types, params, 1e-12)
    bias = (1 - mask.astype(np.float32)) * np.finfo(np.float32).min
    layer = params["layers"][0]
    ref = plain_attention(x, bias, layer["qkv"], layer["attn_out"], 4)
    whole = M.attention(x, bias, layer["qkv"], layer["attn_out"], 4)
    monkeypatch.setattr(M, "_SCORES_PER_CHUNK", 1)  # one sequence per chunk
    weights = []
    chunked = M.attention(x, bias, layer["qkv"], layer["attn_out"], 4, weights)
    np.testing.assert_allclose(whole, ref, atol=1e-6)
    np.testing.assert_allclose(chunked, whole, atol=1e-6)
    assert weights[0].shape == (5, 4, 12, 12)
    np.testing.assert_allclose(weights[0].sum(-1), 1, atol=1e-6)
    assert np.all(weights[0][mask[:, None, None, :].repeat(12, 2).repeat(4, 1) == 0] == 0)  # padding keys get 0


@pytest.mark.parametrize("rows", [7, 300])  # both sides of model._FEW_ROWS: (wᵀxᵀ)ᵀ and x·w
def test_linear_2d_gemm_equals_batched_matmul(tiny, rows):
    _, params = tiny
    x = np.random.default_rng(0).standard_normal((3, rows, 32)).astype(np.float32)
    w = params["layers"][0]["ffn_in"]
    y = M.linear(x, **w)
    assert y.flags.c_contiguous and y.dtype == np.float32 and y.shape == (3, rows, 37)
    np.testing.assert_allclose(y, x @ w["w"] + w["b"], atol=1e-6)


def test_threads_give_the_sequential_results(model, golden_texts):
    texts = [t["text"] for t in golden_texts[:80]]
    old = model.threads
    try:
        model.threads = 1
        one = model.encode(texts, batch_size=8)
        model.threads = 2
        two = model.encode(texts, batch_size=8)
    finally:
        model.threads = old
    assert np.abs(one - two).max() <= 1e-6


@pytest.mark.parametrize("bad", [0, -1, 1.5, True, "2"])
def test_threads_is_checked(model, bad):
    with pytest.raises(ValueError, match="threads must be a positive integer"):
        model.threads = bad
