"""The building blocks of model.py: erf, GELU, LayerNorm, softmax — accuracy and float32 discipline."""

from __future__ import annotations

import math

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from hypothesis.extra.numpy import arrays

from tinyminilm import fast as F
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


@pytest.mark.parametrize("impl", [M, F], ids=["model", "fast"])
def test_no_float64_in_the_forward_pass(tmp_path, monkeypatch, impl):
    """Every array any function of the forward pass returns is float32, in the textbook and in the fast path."""
    import tiny_bert
    from tinyminilm.config import read_config
    from tinyminilm.weights import load_params

    folder = tiny_bert.make_folder(tmp_path / "t", "pooling_mode_mean_tokens", True)
    config = read_config(folder)
    params = load_params(folder / "model.safetensors", config.bert)
    seen = []
    names = [n for n in ("logit_phi", "gelu", "_bias_gelu_in_place", "layer_norm", "residual_layer_norm", "linear",
                         "softmax", "embed", "attention", "feed_forward", "encoder_layer", "pool", "normalize")
             if hasattr(impl, n)]
    for module in {impl, M}:  # fast.py runs model.py's embed, pool and normalize, and those call model.layer_norm
        for name in names:
            if not hasattr(module, name):
                continue
            fn = getattr(module, name)

            def spy(*a, _fn=fn, _name=name, **k):
                out = _fn(*a, **k)
                seen.append((_name, out.dtype))
                return out
            monkeypatch.setattr(module, name, spy)
    ids, types, mask = tiny_bert.random_batch()
    impl.sentence_embedding(params, config, ids, mask)
    expected = {"layer_norm", "attention", "linear", "feed_forward", "pool", "normalize"}
    expected |= {"_bias_gelu_in_place", "residual_layer_norm"} if impl is F else {"gelu", "softmax"}
    assert {n for n, _ in seen} >= expected
    assert all(dt == np.float32 for _, dt in seen), [s for s in seen if s[1] != np.float32]
