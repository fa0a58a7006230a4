"""The forward pass of `tinyminilm/model.py`, written for speed: what `encode` runs.

Each function here has the name and signature of a plain function in model.py and computes the same thing
(tests/test_fast_paths.py holds them to ≤ 1e-6 of each other, and to the golden files); its docstring says which
plain function it equals and why it is faster. Read model.py to learn what the model does; read this file to see
what NumPy needs to do it quickly: fewer passes over big arrays, in-place updates of temporaries nobody else
holds, blocks that stay in the CPU cache, and 2-D matrix products in the shape OpenBLAS runs fastest.

Functions with no faster form here (embed, pool, normalize) are model.py's own, imported below so that this
module offers the whole forward pass.
"""

from __future__ import annotations

import types

import numpy as np

from . import model
from .model import _CLIP, _LOGIT_PHI32, Params, embed, normalize, pool

__all__ = ["gelu", "softmax", "layer_norm", "residual_layer_norm", "linear", "embed", "attention", "feed_forward",
           "encoder_layer", "transformer", "pool", "normalize", "sentence_embedding"]

_GELU_BLOCK = 1 << 16  # elements per block of gelu: 256 KiB of float32 per scratch buffer, well inside L2


def _gelu_in_place(x: np.ndarray, block: int = _GELU_BLOCK) -> np.ndarray:
    """Overwrite a C-contiguous float32 array with its GELU: `x[...] = model.gelu(x)`, and return x.

    It walks the array in cache-sized blocks and reuses three scratch buffers instead of making a dozen
    full-size temporaries. Horner's rule runs with negated coefficients so that it ends with −ℓ(x) directly.
    """
    assert x.flags.c_contiguous and x.dtype == np.float32, "_gelu_in_place needs a C-contiguous float32 array"
    flat = x.reshape(-1)  # a view, thanks to the assert
    c0, c_mid, c_top = _LOGIT_PHI32[0], _LOGIT_PHI32[-2:0:-1], _LOGIT_PHI32[-1]
    scratch = [np.empty(min(block, flat.size), np.float32) for _ in range(3)]
    for start in range(0, flat.size, block):
        v = flat[start:start + block]  # [n] view into x
        xc, t, p = (a[:v.size] for a in scratch)
        np.clip(v, -_CLIP, _CLIP, out=xc)
        np.multiply(xc, xc, out=t)
        np.multiply(t, -c_top, out=p)
        for c in c_mid:
            p -= c
            p *= t
        p -= c0
        p *= xc  # p = −xc · P(xc²) = −ℓ(x)
        np.exp(p, out=p)
        p += np.float32(1.0)
        np.divide(v, p, out=v)  # x / (1 + exp(−ℓ(x))) = x · σ(ℓ(x))
    return x


def gelu(x: np.ndarray) -> np.ndarray:
    """= model.gelu(x); in cache-sized blocks with three scratch buffers (see _gelu_in_place)."""
    return _gelu_in_place(np.array(x, dtype=np.float32, order="C"))  # a copy: x itself is left as it was


def softmax(x: np.ndarray) -> np.ndarray:
    """= model.softmax(x); shift, exponentiate and divide in one buffer instead of three."""
    e = x - x.max(axis=-1, keepdims=True)
    np.exp(e, out=e)
    e /= e.sum(axis=-1, keepdims=True)
    return e


def _layer_norm_in_place(x: np.ndarray, g: np.ndarray, b: np.ndarray, eps: float) -> np.ndarray:
    """x[...] = model.layer_norm(x, g, b, eps), and return x: every step in x's own memory."""
    x -= x.mean(axis=-1, keepdims=True)
    var = np.square(x).mean(axis=-1, keepdims=True)  # [..., 1]
    x /= np.sqrt(var + np.float32(eps))
    x *= g
    x += b
    return x


def layer_norm(x: np.ndarray, g: np.ndarray, b: np.ndarray, eps: float) -> np.ndarray:
    """= model.layer_norm(x, g, b, eps); one working buffer instead of five temporaries."""
    return _layer_norm_in_place(np.array(x, dtype=np.float32), g, b, eps)


def residual_layer_norm(x: np.ndarray, a: np.ndarray, g: np.ndarray, b: np.ndarray, eps: float) -> np.ndarray:
    """= model.layer_norm(x + a, g, b, eps), computed in a's memory (a is overwritten: pass a temporary).

    The residual add and the post-LN of a transformer block in one buffer: four full-size temporaries saved.
    """
    a += x  # the residual connection
    return _layer_norm_in_place(a, g, b, eps)


_FEW_ROWS = 256  # below this many rows BLAS is faster computing (wᵀ·xᵀ)ᵀ than x·w (measured: 1.3–2× at 9 rows)


def linear(x: np.ndarray, w: np.ndarray, b: np.ndarray) -> np.ndarray:
    """= model.linear(x, w, b); one 2-D GEMM (NumPy runs [B, L, in] @ [in, out] as B small ones, ~4× slower),
    and for few rows the weight as left operand, (wᵀ·xᵀ)ᵀ, which OpenBLAS packs and runs faster."""
    x2 = x.reshape(-1, x.shape[-1])  # [B·L, in]
    if len(x2) < _FEW_ROWS:
        y = np.ascontiguousarray((w.T @ x2.T).T)  # = x2 @ w
    else:
        y = x2 @ w
    y += b
    return y.reshape(*x.shape[:-1], w.shape[1])  # [..., out]


_SCORES_PER_CHUNK = 1 << 18  # attention scores computed at once: 1 MiB of float32, about half an L2 cache


def attention(x: np.ndarray, mask_bias: np.ndarray, qkv: Params, proj: Params, n_head: int,
              attentions: list | None = None) -> np.ndarray:
    """= model.attention; a few sequences at a time so the [b, n_head, L, L] scores stay in cache, the softmax in
    place, q scaled by 1/√D instead of the [L, L] scores, the mask skipped when a batch has no padding, and the
    softmax's division done after the product with v, on L/D times less data."""
    B, L, H = x.shape
    D = H // n_head
    qkv_heads = linear(x, **qkv).reshape(B, L, 3, n_head, D)  # [B, L, 3H] -> q, k, v per head
    q = qkv_heads[:, :, 0].transpose(0, 2, 1, 3)  # [B, n_head, L, D]
    k = qkv_heads[:, :, 1].transpose(0, 2, 3, 1)  # [B, n_head, D, L] (already transposed for q @ k)
    v = qkv_heads[:, :, 2].transpose(0, 2, 1, 3)  # [B, n_head, L, D]
    q *= np.float32(1 / np.sqrt(D))  # = scaling the scores by 1/√D
    padded = bool(mask_bias.any())  # sorted batches often have no padding, and then no mask to add
    ctx = np.empty((B, L, n_head, D), dtype=np.float32)
    kept = []
    step = max(1, _SCORES_PER_CHUNK // (n_head * L * L))  # sequences per chunk
    for s in range(0, B, step):
        scores = q[s:s + step] @ k[s:s + step]  # [b, n_head, L, L]
        if padded:
            scores += mask_bias[s:s + step, None, None, :]
        scores -= scores.max(axis=-1, keepdims=True)
        np.exp(scores, out=scores)  # unnormalized weights
        total = scores.sum(axis=-1, keepdims=True)  # [b, n_head, L, 1]
        if attentions is not None:
            kept.append(scores / total)
        head_ctx = scores @ v[s:s + step]  # [b, n_head, L, D]
        head_ctx /= total  # = softmax(scores) @ v
        ctx[s:s + step] = head_ctx.transpose(0, 2, 1, 3)  # [b, L, n_head, D]
    if attentions is not None:
        attentions.append(np.concatenate(kept))  # [B, n_head, L, L]
    return linear(ctx.reshape(B, L, H), **proj)  # [B, L, H]


_FFN_ROWS = 512  # tokens per block of the feed-forward: bounds the [rows, I] intermediate to 3 MiB


def feed_forward(x: np.ndarray, ffn_in: Params, ffn_out: Params) -> np.ndarray:
    """= model.feed_forward; in blocks of _FFN_ROWS tokens (tokens are independent), GELU in place, so the
    [rows, I] intermediate stays small."""
    x2 = x.reshape(-1, x.shape[-1])  # [B·L, H]
    result = np.empty_like(x2)
    for s in range(0, len(x2), _FFN_ROWS):
        h = linear(x2[s:s + _FFN_ROWS], **ffn_in)  # [rows, I]
        result[s:s + _FFN_ROWS] = linear(_gelu_in_place(h), **ffn_out)  # [rows, H]
    return result.reshape(x.shape)


def encoder_layer(x: np.ndarray, mask_bias: np.ndarray, layer: Params, n_head: int, eps: float,
                  attentions: list | None = None) -> np.ndarray:
    """= model.encoder_layer; with the fast attention and feed-forward, and each residual add fused with its
    LayerNorm in the sublayer's output buffer."""
    a = attention(x, mask_bias, layer["qkv"], layer["attn_out"], n_head, attentions)  # [B, L, H]
    x = residual_layer_norm(x, a, **layer["ln_attn"], eps=eps)  # = layer_norm(x + a)
    f = feed_forward(x, layer["ffn_in"], layer["ffn_out"])  # [B, L, H]
    return residual_layer_norm(x, f, **layer["ln_ffn"], eps=eps)  # = layer_norm(x + f)


def _run_with_fast_functions(plain: types.FunctionType, doc: str) -> types.FunctionType:
    """model.py's function `plain`, its code unchanged, but calling this module's functions of the same names."""
    fn = types.FunctionType(plain.__code__, globals(), plain.__name__, plain.__defaults__, plain.__closure__)
    fn.__doc__, fn.__kwdefaults__, fn.__annotations__ = doc, plain.__kwdefaults__, plain.__annotations__
    return fn


transformer = _run_with_fast_functions(
    model.transformer, "= model.transformer: the same code, running this module's embed and encoder_layer.")
sentence_embedding = _run_with_fast_functions(
    model.sentence_embedding, "= model.sentence_embedding: the same code, running this module's transformer.")
