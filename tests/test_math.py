"""The building blocks of model.py: erf, GELU, LayerNorm, softmax — accuracy and float32 discipline."""

from __future__ import annotations

import math

import numpy as np
from hypothesis import given, settings
from hypothesis import strategies as st
from hypothesis.extra.numpy import arrays

from tinyminilm import model as M


def test_erf_is_accurate_in_float32():
    x = np.linspace(-8, 8, 400_001, dtype=np.float32)
    ref = np.array([math.erf(float(v)) for v in x])
    y = M.erf(x)
    assert y.dtype == np.float32
    assert np.abs(y - ref).max() < 2e-7  # about one float32 ulp near ±1
    assert M.erf(np.array([0.0], np.float32))[0] == 0.0
    tails = np.abs(M.erf(np.array([-1e30, -10, 10, 1e30], np.float32)))
    assert np.all(tails <= 1.0) and np.all(tails >= 1 - 6e-8)


def test_gelu_is_exact_erf_gelu_not_tanh():
    x = np.linspace(-10, 10, 20_001, dtype=np.float32)
    exact = np.array([v / 2 * (1 + math.erf(v / math.sqrt(2))) for v in x.astype(np.float64)])
    tanh = 0.5 * x * (1 + np.tanh(math.sqrt(2 / math.pi) * (x + 0.044715 * x ** 3)))
    y = M.gelu(x)
    assert y.dtype == np.float32
    assert np.abs(y - exact).max() < 1e-6  # float32 rounding of values up to 10
    assert np.abs(tanh - exact).max() > 1e-4  # the tanh approximation would fail the line above


def test_fast_paths_equal_the_plain_functions():
    rng = np.random.default_rng(0)
    h = (rng.standard_normal((70, 1536)) * 4).astype(np.float32)
    assert np.array_equal(M.gelu_inplace(h.copy(), block=1000), M.gelu(h))  # same operations, same rounding
    x, a = (rng.standard_normal((2, 5, 384)).astype(np.float32) for _ in range(2))
    g, b = rng.standard_normal(384).astype(np.float32), rng.standard_normal(384).astype(np.float32)
    np.testing.assert_allclose(M.add_layer_norm(x, a.copy(), g, b, 1e-12), M.layer_norm(x + a, g, b, 1e-12),
                               atol=2e-6)


@settings(max_examples=50, deadline=None)
@given(arrays(np.float32, (3, 8), elements=st.floats(-1e3, 1e3, width=32)))
def test_layer_norm_and_softmax_stay_float32_and_finite(x):
    g = np.ones(8, np.float32)
    b = np.zeros(8, np.float32)
    y = M.layer_norm(x, g, b, 1e-12)
    s = M.softmax(x)
    assert y.dtype == s.dtype == np.float32
    assert np.isfinite(y).all() and np.isfinite(s).all()
    np.testing.assert_allclose(s.sum(axis=-1), 1, rtol=1e-5)


def test_no_float64_in_the_forward_pass(tmp_path, monkeypatch):
    """Every array any model.py function returns is float32 (integer index arrays aside)."""
    import tiny_bert
    from tinyminilm.config import read_config
    from tinyminilm.weights import load_params

    folder = tiny_bert.make_folder(tmp_path / "t", "pooling_mode_mean_tokens", True)
    config = read_config(folder)
    params = load_params(folder / "model.safetensors", config.bert)
    seen = []
    for name in ("logit_phi", "erf", "gelu", "gelu_inplace", "layer_norm", "add_layer_norm", "linear", "softmax",
                 "embed", "attention", "feed_forward", "encoder_layer", "pool", "normalize"):
        fn = getattr(M, name)

        def spy(*a, _fn=fn, _name=name, **k):
            out = _fn(*a, **k)
            seen.append((_name, out.dtype))
            return out
        monkeypatch.setattr(M, name, spy)
    ids, types, mask = tiny_bert.random_batch()
    M.sentence_embedding(params, config, ids, mask)
    assert {n for n, _ in seen} >= {"gelu_inplace", "add_layer_norm", "layer_norm", "attention", "pool", "normalize"}
    assert all(dt == np.float32 for _, dt in seen), [s for s in seen if s[1] != np.float32]
