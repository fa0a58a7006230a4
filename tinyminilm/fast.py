"""The forward pass of `tinyminilm/model.py`, written for speed: what `encode` runs.

Each function here has the name and signature of a plain function in model.py and computes the same thing
(tests/test_fast_paths.py holds them to ≤ 1e-6 of each other, and to the golden files); its docstring says which
plain function it equals and why it is faster. Read model.py to learn what the model does; read this file to see
what NumPy needs to do it quickly: fewer passes over big arrays, in-place updates of temporaries nobody else
holds, blocks that stay in the CPU cache, and matrix products in the shape OpenBLAS runs fastest for their size.

Functions with no faster form here (embed, pool, exclude_prompt, normalize, pool_and_normalize) are model.py's
own, imported below so that this module offers the whole forward pass.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np

from .blas import small_products_unpacked
from .config import ModelConfig
from .model import (_CLIP, _LOGIT_PHI32, Params, classifier, embed, exclude_prompt, normalize, pool,
                    pool_and_normalize, pooler)

__all__ = ["gelu", "softmax", "layer_norm", "residual_layer_norm", "linear", "embed", "attention", "feed_forward",
           "encoder_layer", "transformer", "pool", "exclude_prompt", "normalize", "pool_and_normalize",
           "sentence_embedding", "pooler", "classifier", "sequence_classification"]


def _l2_cache_bytes(sysfs: Path = Path("/sys/devices/system/cpu/cpu0/cache")) -> int:
    """One core's L2 cache in bytes, as Linux reports it (e.g. "2048K"), kept within 256 KiB–4 MiB; 1 MiB where
    the OS does not say (macOS, Windows, some containers)."""
    try:
        for index in sysfs.glob("index*"):
            if (index / "level").read_text().strip() == "2" and (index / "type").read_text().strip() != "Instruction":
                text = (index / "size").read_text().strip().upper()
                scale = {"K": 1 << 10, "M": 1 << 20}.get(text[-1:], 1)
                return min(max(int(text.rstrip("KM")) * scale, 256 << 10), 4 << 20)
    except (OSError, ValueError):
        pass
    return 1 << 20


# Block sizes follow this CPU's L2 (measured on a 2 MiB L2, where these give the values measured best; halving
# them cost nothing measurable there, so a smaller L2 gets blocks that fit it rather than spill).
_L2_FLOATS = _l2_cache_bytes() // 4
_GELU_BLOCK = _L2_FLOATS // 8  # elements per block of gelu: three scratch buffers and the block, half of L2


_C0, _C_MID, _C_TOP = _LOGIT_PHI32[0], _LOGIT_PHI32[-2:0:-1], _LOGIT_PHI32[-1]


def _gelu_block(v: np.ndarray, xc: np.ndarray, t: np.ndarray, p: np.ndarray) -> None:
    """v[...] = model.gelu(v), with three scratch arrays of v's shape. Horner's rule runs with negated
    coefficients so that it ends with −ℓ(x) directly."""
    np.clip(v, -_CLIP, _CLIP, out=xc)
    np.multiply(xc, xc, out=t)
    np.multiply(t, -_C_TOP, out=p)
    for c in _C_MID:
        p -= c
        p *= t
    p -= _C0
    p *= xc  # p = −xc · P(xc²) = −ℓ(x)
    np.exp(p, out=p)
    p += np.float32(1.0)
    np.divide(v, p, out=v)  # x / (1 + exp(−ℓ(x))) = x · σ(ℓ(x))


def _gelu_in_place(x: np.ndarray, block: int = _GELU_BLOCK) -> np.ndarray:
    """Overwrite a C-contiguous float32 array with its GELU: `x[...] = model.gelu(x)`, and return x.

    It walks the array in cache-sized blocks and reuses three scratch buffers instead of making a dozen
    full-size temporaries.
    """
    assert x.flags.c_contiguous and x.dtype == np.float32, "_gelu_in_place needs a C-contiguous float32 array"
    flat = x.reshape(-1)  # a view, thanks to the assert
    scratch = [np.empty(min(block, flat.size), np.float32) for _ in range(3)]
    for start in range(0, flat.size, block):
        v = flat[start:start + block]  # [n] view into x
        _gelu_block(v, *(a[:v.size] for a in scratch))
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
# Up to this many rows, on one BLAS thread and an AVX-512 kernel, products by column blocks of the weight are
# faster still (measured, 24 products of a query on one thread: 8.7 → 5.5 ms at 12 rows, 6.4 → 1.9 ms at 4,
# 10.0 → 8.8 ms at 24; no gain from 32 rows on). See _column_block_product.
_BLOCKED_ROWS = 24
_SMALL_MATRIX_MACS = 100 ** 3  # OpenBLAS's limit for its small-matrix path, in multiply-adds per product
_BLOCK_FLOATS = 12 * 1024  # a [K, width] weight block of at most 48 KiB, an L1 cache's worth (measured best)


def _column_block_product(x: np.ndarray, w: np.ndarray, out: np.ndarray, width: int) -> None:
    """out[...] = x @ w as one product per block of `width` columns of w: [n, K] @ [K, width] each.

    Each block is small enough for OpenBLAS's small-matrix path, which reads the weight where it lies instead of
    first copying (packing) it into its own layout. The blocks are views, no copy: w is the transposed view of an
    [N, K] C-contiguous matrix (how the weights are loaded), so w.T's rows width at a time are [K, width] columns.
    """
    K, N = w.shape
    blocks = w.T.reshape(N // width, width, K).transpose(0, 2, 1)  # [N/width, K, width] views of w
    np.matmul(x, blocks, out=out.reshape(len(x), N // width, width).transpose(1, 0, 2))  # [N/width, n, width]


def _block_width(x: np.ndarray, w: np.ndarray) -> int | None:
    """The column-block width for x @ w when _column_block_product is the faster way, else None: few rows,
    BLAS on one thread with a small-matrix path, w the transposed view of a C-contiguous matrix, and a
    power-of-two width up to 32 that divides w's columns and keeps each product under OpenBLAS's limit and
    each block in _BLOCK_FLOATS."""
    K, N = w.shape
    if len(x) > _BLOCKED_ROWS or not w.T.flags.c_contiguous or not small_products_unpacked():
        return None
    width = 32
    while width > 1 and (N % width or len(x) * K * width > _SMALL_MATRIX_MACS or K * width > _BLOCK_FLOATS):
        width //= 2
    return width if width > 1 else None


def _product(x: np.ndarray, w: np.ndarray, out: np.ndarray) -> None:
    """out[...] = x @ w for 2-D arrays, in the form OpenBLAS runs fastest for len(x) rows."""
    width = _block_width(x, w)
    if width is not None and out.flags.c_contiguous:  # the blocks write through a reshaped view of out
        _column_block_product(x, w, out, width)
    elif len(x) < _FEW_ROWS:
        out[...] = (w.T @ x.T).T
    else:
        np.matmul(x, w, out=out)


def linear(x: np.ndarray, w: np.ndarray, b: np.ndarray) -> np.ndarray:
    """= model.linear(x, w, b); one 2-D GEMM (NumPy runs [B, L, in] @ [in, out] as B small ones, ~4× slower),
    and for few rows the weight as left operand, (wᵀ·xᵀ)ᵀ, which OpenBLAS packs and runs faster — or, on one
    BLAS thread with AVX-512 kernels, products by column blocks that it need not pack at all (see _product)."""
    x2 = x.reshape(-1, x.shape[-1])  # [B·L, in]
    y = np.empty((len(x2), w.shape[1]), np.float32)  # [B·L, out]
    _product(x2, w, y)
    y += b
    return y.reshape(*x.shape[:-1], w.shape[1])  # [..., out]


_SCORES_PER_CHUNK = _L2_FLOATS // 2  # attention scores computed at once: half of L2 (1 MiB of a 2 MiB L2)
# exp(score) without the max shift is used when every row's sum lands in this range: no overflow to inf, and the
# largest term of every row is a normal float32 (a row whose sum is below 1e-30 has every score below -69).
_EXP_SUM_RANGE = (np.float32(1e-30), np.float32(1e30))


def _key_lengths(mask_bias: np.ndarray) -> np.ndarray | None:
    """Real keys per sequence [B] when each sequence's padding is a run at its end (as `encode` pads), else None."""
    real = mask_bias == 0  # [B, L]
    n = real.sum(axis=1)
    return n if np.array_equal(real, np.arange(real.shape[1]) < n[:, None]) else None


def _blocks(B: int, L: int, n_head: int, whole_sequences: bool) -> list[tuple[slice, slice]]:
    """(sequences, heads) blocks whose [b, h, L, L] scores hold about _SCORES_PER_CHUNK floats: several
    sequences when L is short, a few heads of one sequence when one sequence's scores alone would not fit."""
    if whole_sequences or n_head * L * L <= _SCORES_PER_CHUNK:
        step = max(1, _SCORES_PER_CHUNK // (n_head * L * L))
        return [(slice(s, s + step), slice(None)) for s in range(B)[::step]]
    step = max(1, _SCORES_PER_CHUNK // (L * L))
    return [(slice(i, i + 1), slice(h, h + step)) for i in range(B) for h in range(0, n_head, step)]


def attention(x: np.ndarray, mask_bias: np.ndarray, qkv: Params, proj: Params, n_head: int,
              attentions: list | None = None) -> np.ndarray:
    """= model.attention; in blocks of sequences (or of heads, for long ones) whose [b, h, L, L] scores stay in
    cache, with one elementwise pass over them where the plain softmax makes five:

    - q is scaled by 1/√D instead of the [L, L] scores;
    - exp(scores) without the shift by the row maximum: softmax is the same for any shift, and the shift only
      guards float32's range, so the row sums are checked instead and a block is recomputed with the shift in
      the rare case that one lands outside _EXP_SUM_RANGE;
    - padding keys (a run at each sequence's end, as `encode` pads) get weight 0 by zeroing that tail after exp,
      instead of adding the mask to every score; any other mask is added as in model.py;
    - the division by the row sum comes after the product with v, on L/D times less data.
    """
    B, L, H = x.shape
    D = H // n_head
    qkv_heads = linear(x, **qkv).reshape(B, L, 3, n_head, D)  # [B, L, 3H] -> q, k, v per head
    q = qkv_heads[:, :, 0].transpose(0, 2, 1, 3)  # [B, n_head, L, D]
    k = qkv_heads[:, :, 1].transpose(0, 2, 3, 1)  # [B, n_head, D, L] (already transposed for q @ k)
    v = qkv_heads[:, :, 2].transpose(0, 2, 1, 3)  # [B, n_head, L, D]
    q *= np.float32(1 / np.sqrt(D))  # = scaling the scores by 1/√D
    padded = bool(mask_bias.any())
    n_keys = _key_lengths(mask_bias) if padded else None  # [B] real keys, when padding is a tail
    ctx = np.empty((B, L, n_head, D), dtype=np.float32)
    kept = []
    lo, hi = _EXP_SUM_RANGE
    with np.errstate(over="ignore", under="ignore"):  # exp's range is checked below instead
        for bs, hs in _blocks(B, L, n_head, whole_sequences=attentions is not None):
            scores = q[bs, hs] @ k[bs, hs]  # [b, h, L, L]
            if padded and n_keys is None:
                scores += mask_bias[bs, None, None, :]
            np.exp(scores, out=scores)  # unnormalized weights
            if n_keys is not None:
                for i, n in enumerate(n_keys[bs]):
                    scores[i, :, :, n:] = 0  # padding keys: weight 0
            total = scores.sum(axis=-1, keepdims=True)  # [b, h, L, 1]
            if not (total.min() > lo and total.max() < hi):  # overflow, underflow or NaN: redo with the max shift
                scores = q[bs, hs] @ k[bs, hs]
                scores += mask_bias[bs, None, None, :]
                scores -= scores.max(axis=-1, keepdims=True)
                np.exp(scores, out=scores)
                total = scores.sum(axis=-1, keepdims=True)
            if attentions is not None:
                kept.append(scores / total)
            head_ctx = scores @ v[bs, hs]  # [b, h, L, D]
            head_ctx /= total  # = softmax(scores) @ v
            ctx[bs, :, hs] = head_ctx.transpose(0, 2, 1, 3)  # [b, L, h, D]
    if attentions is not None:
        attentions.append(np.concatenate(kept))  # [B, n_head, L, L]
    return linear(ctx.reshape(B, L, H), **proj)  # [B, L, H]


# Tokens per block of the feed-forward. Smaller blocks, whose [rows, I] intermediate would stay in L2, measured
# slower (128 rows: -12% on a 32 × 33 batch): OpenBLAS packs the whole weight matrix again for every block.
_FFN_ROWS = 512
_GELU_ROWS = max(1, _GELU_BLOCK // 1536)  # rows of the [rows, 1536] intermediate per GELU block (42 for 2 MiB)


def _bias_gelu_in_place(h: np.ndarray, b: np.ndarray, scratch: list[np.ndarray]) -> np.ndarray:
    """h[...] = model.gelu(h + b), and return h: a C-contiguous [rows, I] float32 h, in blocks of
    len(scratch[0]) rows."""
    step = len(scratch[0])
    for start in range(0, len(h), step):
        v = h[start:start + step]  # [r, I] view into h
        v += b  # the bias of the product before, added while the block is in cache
        _gelu_block(v, *(a[:len(v)] for a in scratch))
    return h


def feed_forward(x: np.ndarray, ffn_in: Params, ffn_out: Params) -> np.ndarray:
    """= model.feed_forward; in blocks of _FFN_ROWS tokens (tokens are independent) so that the [rows, I]
    intermediate stays in the L2 cache from the first product through the bias and GELU to the second, GELU in
    place in sub-blocks with three scratch buffers reused for the whole call."""
    x2 = x.reshape(-1, x.shape[-1])  # [B·L, H]
    n, inner = len(x2), ffn_in["w"].shape[1]
    result = np.empty_like(x2)
    h_all = np.empty((min(n, _FFN_ROWS), inner), np.float32)  # [rows, I], reused by every block
    scratch = [np.empty((min(n, _FFN_ROWS, _GELU_ROWS), inner), np.float32) for _ in range(3)]
    for s in range(0, n, _FFN_ROWS):
        xs, out = x2[s:s + _FFN_ROWS], result[s:s + _FFN_ROWS]
        h = h_all[:len(xs)]
        _product(xs, ffn_in["w"], h)  # [rows, I]
        _bias_gelu_in_place(h, ffn_in["b"], scratch)
        _product(h, ffn_out["w"], out)  # [rows, H]
        out += ffn_out["b"]
    return result.reshape(x.shape)


def encoder_layer(x: np.ndarray, mask_bias: np.ndarray, layer: Params, n_head: int, eps: float,
                  attentions: list | None = None) -> np.ndarray:
    """= model.encoder_layer; with the fast attention and feed-forward, and each residual add fused with its
    LayerNorm in the sublayer's output buffer."""
    a = attention(x, mask_bias, layer["qkv"], layer["attn_out"], n_head, attentions)  # [B, L, H]
    x = residual_layer_norm(x, a, **layer["ln_attn"], eps=eps)  # = layer_norm(x + a)
    f = feed_forward(x, layer["ffn_in"], layer["ffn_out"])  # [B, L, H]
    return residual_layer_norm(x, f, **layer["ln_ffn"], eps=eps)  # = layer_norm(x + f)


def transformer(params: Params, config: ModelConfig, input_ids: np.ndarray, attention_mask: np.ndarray,
                token_type_ids: np.ndarray | None = None, attentions: list | None = None,
                all_layers: bool = True) -> list[np.ndarray]:
    """= model.transformer: the same loop, over this module's encoder_layer (embed is model.py's own).

    Returns 1 + num_hidden_layers float32 arrays [B, L, H], or with all_layers=False only the last (each layer's
    input is then freed as soon as the next layer has run).
    """
    bert = config.bert
    if token_type_ids is None:
        token_type_ids = np.zeros_like(input_ids)
    mask_bias = (np.float32(1) - attention_mask.astype(np.float32)) * np.finfo(np.float32).min  # as model.py's
    x = embed(input_ids, token_type_ids, params, bert.layer_norm_eps)  # [B, L, H]
    hidden_states = [x] if all_layers else []
    for layer in params["layers"]:
        x = encoder_layer(x, mask_bias, layer, bert.num_attention_heads, bert.layer_norm_eps, attentions)
        if all_layers:
            hidden_states.append(x)
    return hidden_states if all_layers else [x]


def sentence_embedding(params: Params, config: ModelConfig, input_ids: np.ndarray,
                       attention_mask: np.ndarray) -> np.ndarray:
    """= model.sentence_embedding: this module's transformer, then model.py's pool_and_normalize. [B, H] float32."""
    token_embeddings = transformer(params, config, input_ids, attention_mask, all_layers=False)[-1]  # [B, L, H]
    return pool_and_normalize(token_embeddings, attention_mask, config)  # [B, H]


# --------------------------------------------------------------------------------------------------------------
# Cross-encoders
# --------------------------------------------------------------------------------------------------------------

# The head has no faster form: two products on the [CLS] rows only ([B, H] @ [H, H], [B, H] @ [H, num_labels]),
# a few microseconds beside the transformer. So pooler and classifier are model.py's own, imported above.


def sequence_classification(params: Params, config: object, input_ids: np.ndarray, attention_mask: np.ndarray,
                            token_type_ids: np.ndarray) -> np.ndarray:
    """= model.sequence_classification, running this module's transformer; the head is model.py's own (above).
    ids, mask and token types [B, L] -> logits [B, num_labels] float32."""
    hidden = transformer(params, config, input_ids, attention_mask, token_type_ids, all_layers=False)[-1]  # [B, L, H]
    return classifier(pooler(hidden, params["pooler"]), params["classifier"])  # [B, H] -> [B, num_labels]

