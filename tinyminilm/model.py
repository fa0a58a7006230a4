"""The forward pass of a BERT sentence encoder, in NumPy, top to bottom.

    text ids ─► embeddings ─► N × encoder layer ─► pooling ─► L2 normalize ─► sentence vector

Everything here is a plain function of arrays. The weights arrive as a nested dict built by
`tinyminilm.weights` (short names, every matrix stored as [in, out] so that a linear layer is `x @ w + b`);
the sizes come from `tinyminilm.config.ModelConfig`. Float32 in, float32 out: no step upcasts to float64.

References:
  - Devlin et al., "BERT: Pre-training of Deep Bidirectional Transformers", 2018 (the architecture).
  - Vaswani et al., "Attention Is All You Need", 2017 (scaled dot-product attention).
  - Hugging Face transformers `modeling_bert.py` (the numerical reference: post-LN residual blocks,
    additive attention mask, exact-erf GELU, LayerNorm eps from config.json).
  - Reimers & Gurevych, "Sentence-BERT", 2019 (mean pooling over real tokens).

Shape letters: B batch, L sequence length (padded), H hidden size, I intermediate (FFN) size,
n_head attention heads, D = H // n_head size of one head.
"""

from __future__ import annotations

from typing import Any

import numpy as np

from .config import ModelConfig

Params = dict[str, Any]

# --------------------------------------------------------------------------------------------------------------
# Elementwise building blocks
# --------------------------------------------------------------------------------------------------------------

# Φ(x), the standard normal CDF that GELU needs, is a sigmoid of its own logit: Φ(x) = σ(ℓ(x)) with ℓ = logit Φ.
# ℓ is odd and ℓ(x)/x is smooth and even, so ℓ(x) ≈ x · P(x²). The familiar tanh approximation of GELU is the
# degree-1 case, P(t) = 2√(2/π)(1 + 0.044715 t) ≈ 1.5958 + 0.0714 t. Degree 6, fitted by scripts/fit_erf.py on
# |x| ≤ 5.5 (beyond which Φ rounds to 0 or 1 in float32), is exact to float32 rounding: erf within 1.5e-7, GELU
# within 6e-7. NumPy has no erf, but its exp and tanh are fast vectorized loops, so this costs few array passes.
_LOGIT_PHI = (1.5957704248589097, 0.07266417786563505, -6.323726614304446e-05, -0.000111358773690128,
              8.055517479954065e-06, -2.7388113361455226e-07, 3.75923174306863e-09)
_LOGIT_PHI32 = tuple(np.float32(c) for c in _LOGIT_PHI)
_CLIP = np.float32(5.5)
_SQRT2 = np.float32(np.sqrt(2.0))


def logit_phi(x: np.ndarray) -> np.ndarray:
    """ℓ(x) = log(Φ(x) / (1 − Φ(x))), elementwise, float32 (any shape)."""
    xc = np.clip(x, -_CLIP, _CLIP)
    t = xc * xc
    p = np.full_like(t, _LOGIT_PHI32[-1])
    for c in _LOGIT_PHI32[-2::-1]:  # Horner's rule: p = ((c6·t + c5)·t + …)·t + c0
        p = p * t + c
    return xc * p


def erf(x: np.ndarray) -> np.ndarray:
    """The error function, elementwise, float32: erf(x) = 2Φ(√2·x) − 1 = tanh(ℓ(√2·x) / 2)."""
    return np.tanh(np.float32(0.5) * logit_phi(x * _SQRT2))


def gelu(x: np.ndarray) -> np.ndarray:
    """Exact GELU, x · Φ(x) = x/2 · (1 + erf(x/√2)), as BERT's `hidden_act: "gelu"`; here x · σ(ℓ(x))."""
    return x / (np.float32(1.0) + np.exp(-logit_phi(x)))


def gelu_inplace(x: np.ndarray, block: int = 1 << 16) -> np.ndarray:
    """Overwrite a C-contiguous float32 array with its GELU. Equivalent to `x[...] = gelu(x)`, written for speed.

    It walks the array in blocks that fit in the CPU cache and reuses three scratch buffers, instead of making
    a dozen full-size temporaries.
    """
    assert x.flags.c_contiguous and x.dtype == np.float32, "gelu_inplace needs a C-contiguous float32 array"
    flat = x.reshape(-1)  # a view, thanks to the assert
    c0, c_mid, c_top = _LOGIT_PHI32[0], _LOGIT_PHI32[-2:0:-1], _LOGIT_PHI32[-1]
    scratch = [np.empty(min(block, flat.size), np.float32) for _ in range(3)]
    for start in range(0, flat.size, block):
        v = flat[start:start + block]  # [n] view into x
        xc, t, p = (a[:v.size] for a in scratch)
        np.clip(v, -_CLIP, _CLIP, out=xc)
        np.multiply(xc, xc, out=t)
        np.multiply(t, -c_top, out=p)  # Horner with negated coefficients, so p ends as −ℓ(x)
        for c in c_mid:
            p -= c
            p *= t
        p -= c0
        p *= xc  # p = −xc · P(xc²) = −ℓ(x)
        np.exp(p, out=p)
        p += np.float32(1.0)
        np.divide(v, p, out=v)  # x / (1 + exp(−ℓ(x))) = x · σ(ℓ(x))
    return x


def layer_norm(x: np.ndarray, g: np.ndarray, b: np.ndarray, eps: float) -> np.ndarray:
    """Normalize the last axis to zero mean and unit variance, then scale by g and shift by b."""
    mean = x.mean(axis=-1, keepdims=True)  # [..., H] -> [..., 1]
    var = ((x - mean) ** 2).mean(axis=-1, keepdims=True)  # [..., 1], biased variance as torch's LayerNorm
    return (x - mean) / np.sqrt(var + np.float32(eps)) * g + b  # [..., H]


def add_layer_norm(x: np.ndarray, a: np.ndarray, g: np.ndarray, b: np.ndarray, eps: float) -> np.ndarray:
    """layer_norm(x + a, g, b, eps): the residual add and LayerNorm of a post-LN block, computed in a's memory.

    `a` must be a temporary the caller no longer needs (it is overwritten); saves four full-size temporaries.
    """
    a += x  # the residual connection
    a -= a.mean(axis=-1, keepdims=True)
    var = np.square(a).mean(axis=-1, keepdims=True)  # [..., 1]
    a /= np.sqrt(var + np.float32(eps))
    a *= g
    a += b
    return a


_FEW_ROWS = 256  # below this many rows BLAS is faster computing (wᵀ·xᵀ)ᵀ than x·w (measured: 1.3–2× at 9 rows)


def linear(x: np.ndarray, w: np.ndarray, b: np.ndarray) -> np.ndarray:
    """A dense layer: [..., in] @ [in, out] + [out] -> [..., out]."""
    x2 = x.reshape(-1, x.shape[-1])  # one 2-D GEMM: NumPy runs [B, L, in] @ [in, out] ~4× slower
    if len(x2) < _FEW_ROWS:
        y = np.ascontiguousarray((w.T @ x2.T).T)  # = x2 @ w, the weight as the left operand
    else:
        y = x2 @ w
    y += b
    return y.reshape(*x.shape[:-1], w.shape[1])


def softmax(x: np.ndarray) -> np.ndarray:
    """Softmax over the last axis, shifted by the row maximum so exp never overflows."""
    e = np.exp(x - x.max(axis=-1, keepdims=True))
    return e / e.sum(axis=-1, keepdims=True)


# --------------------------------------------------------------------------------------------------------------
# The transformer
# --------------------------------------------------------------------------------------------------------------


def embed(input_ids: np.ndarray, token_type_ids: np.ndarray, params: Params, eps: float) -> np.ndarray:
    """Token ids -> the first hidden states: word + position + token-type embeddings, then LayerNorm."""
    positions = np.arange(input_ids.shape[1])  # [L]: 0, 1, …, L-1 (absolute positions)
    x = (params["wte"][input_ids]  # [B, L] -> [B, L, H] word embeddings
         + params["wpe"][positions]  # [L, H], broadcast over the batch
         + params["wtt"][token_type_ids])  # [B, L, H]; all zeros for single sentences
    return layer_norm(x, **params["ln_emb"], eps=eps)  # [B, L, H]


_SCORES_PER_CHUNK = 1 << 18  # attention scores computed at once: 1 MiB of float32, about half an L2 cache


def attention(x: np.ndarray, mask_bias: np.ndarray, qkv: Params, out: Params, n_head: int,
              weights_out: list | None = None) -> np.ndarray:
    """Multi-head self-attention: every token mixes in the value of every real token, weighted by q·k.

    weights_out: if a list, the attention weights [B, n_head, L, L] are appended to it (for `explain`).
    """
    B, L, H = x.shape
    D = H // n_head
    qkv_heads = linear(x, **qkv).reshape(B, L, 3, n_head, D)  # [B, L, H] -> [B, L, 3H] -> q, k, v per head
    q = qkv_heads[:, :, 0].transpose(0, 2, 1, 3)  # [B, n_head, L, D]
    k = qkv_heads[:, :, 1].transpose(0, 2, 3, 1)  # [B, n_head, D, L] (already transposed for q @ k)
    v = qkv_heads[:, :, 2].transpose(0, 2, 1, 3)  # [B, n_head, L, D]
    q *= np.float32(1 / np.sqrt(D))  # scale q by 1/√D now: the same as scaling the [L, L] scores, on less data
    padded = bool(mask_bias.any())  # sorted batches often have no padding, and then no mask to add
    ctx = np.empty((B, L, n_head, D), dtype=np.float32)
    weights_kept = []
    # A few sequences at a time, so that the [b, n_head, L, L] scores stay in the CPU cache. Equivalent to one
    # pass over all B sequences at once, which is what the lines below say for b = B.
    step = max(1, _SCORES_PER_CHUNK // (n_head * L * L))
    for s in range(0, B, step):
        scores = q[s:s + step] @ k[s:s + step]  # [b, n_head, L, L]: query i · key j / √D
        if padded:
            scores += mask_bias[s:s + step, None, None, :]  # padding keys get a huge negative score -> weight 0
        # softmax over the keys, in place: shift by the row maximum so exp cannot overflow, exponentiate, and
        # divide by the row sum — here after the product with v, which is the same and touches L/D times less data
        scores -= scores.max(axis=-1, keepdims=True)
        np.exp(scores, out=scores)  # unnormalized weights
        total = scores.sum(axis=-1, keepdims=True)  # [b, n_head, L, 1]
        if weights_out is not None:
            weights_kept.append(scores / total)  # each row of weights sums to 1
        head_ctx = scores @ v[s:s + step]  # [b, n_head, L, D]
        head_ctx /= total  # = (scores / total) @ v
        ctx[s:s + step] = head_ctx.transpose(0, 2, 1, 3)  # [b, n_head, L, D] -> [b, L, n_head, D]
    if weights_out is not None:
        weights_out.append(np.concatenate(weights_kept))  # [B, n_head, L, L]
    return linear(ctx.reshape(B, L, H), **out)  # heads side by side again: [B, L, H] -> [B, L, H]


_FFN_ROWS = 512  # tokens per block of the feed-forward: bounds the [rows, I] intermediate to 3 MiB


def feed_forward(x: np.ndarray, ffn_in: Params, ffn_out: Params) -> np.ndarray:
    """The position-wise MLP: widen to I, GELU, project back to H."""
    x2 = x.reshape(-1, x.shape[-1])  # [B·L, H]: every token on its own
    out = np.empty_like(x2)
    for s in range(0, len(x2), _FFN_ROWS):  # blocks of tokens, the same as all at once (tokens are independent)
        h = linear(x2[s:s + _FFN_ROWS], **ffn_in)  # [rows, H] -> [rows, I]
        out[s:s + _FFN_ROWS] = linear(gelu_inplace(h), **ffn_out)  # gelu_inplace(h) is gelu(h), in place
    return out.reshape(x.shape)  # [B, L, H]


def encoder_layer(x: np.ndarray, mask_bias: np.ndarray, layer: Params, n_head: int, eps: float,
                  attentions: list | None = None) -> np.ndarray:
    """One post-LN transformer block: x = LN(x + attention(x)); x = LN(x + FFN(x))."""
    a = attention(x, mask_bias, layer["qkv"], layer["attn_out"], n_head, attentions)  # [B, L, H]
    x = add_layer_norm(x, a, **layer["ln_attn"], eps=eps)  # LN(x + a)
    f = feed_forward(x, layer["ffn_in"], layer["ffn_out"])  # [B, L, H]
    return add_layer_norm(x, f, **layer["ln_ffn"], eps=eps)  # LN(x + f): [B, L, H]


def transformer(params: Params, config: ModelConfig, input_ids: np.ndarray, attention_mask: np.ndarray,
                token_type_ids: np.ndarray | None = None, attentions: list | None = None,
                all_layers: bool = True) -> list[np.ndarray]:
    """Run BERT on a padded batch; return the hidden states after the embeddings and after each layer.

    input_ids, attention_mask, token_type_ids: integer arrays [B, L]; attention_mask is 1 for real tokens and
    0 for padding. Returns a list of 1 + num_hidden_layers float32 arrays [B, L, H]; the last is the output.
    attentions: if a list, each layer's attention weights [B, n_head, L, L] are appended to it.
    all_layers: False keeps only the last hidden state (the returned list has one array), to save memory.
    """
    bert = config.bert
    if token_type_ids is None:
        token_type_ids = np.zeros_like(input_ids)
    # Additive mask, as transformers builds it: 0 for real keys, the most negative float32 for padding keys.
    mask_bias = (1 - attention_mask.astype(np.float32)) * np.finfo(np.float32).min  # [B, L]
    x = embed(input_ids, token_type_ids, params, bert.layer_norm_eps)  # [B, L, H]
    hidden_states = [x]
    for layer in params["layers"]:
        x = encoder_layer(x, mask_bias, layer, bert.num_attention_heads, bert.layer_norm_eps, attentions)
        hidden_states.append(x)
    return hidden_states if all_layers else hidden_states[-1:]


# --------------------------------------------------------------------------------------------------------------
# From token vectors to one sentence vector
# --------------------------------------------------------------------------------------------------------------


def pool(token_embeddings: np.ndarray, attention_mask: np.ndarray, mode: str) -> np.ndarray:
    """[B, L, H] token vectors -> [B, H] sentence vectors, looking only at real tokens."""
    if mode == "cls":
        return token_embeddings[:, 0]  # the [CLS] token's vector
    mask = attention_mask[:, :, None].astype(np.float32)  # [B, L, 1]
    if mode == "max":
        # sentence-transformers fills padding with -1e9 before taking the maximum.
        return np.where(mask > 0, token_embeddings, np.float32(-1e9)).max(axis=1)  # [B, H]
    summed = (token_embeddings * mask).sum(axis=1)  # [B, H]
    count = np.maximum(mask.sum(axis=1), np.float32(1e-9))  # [B, 1] real tokens per sentence
    if mode == "mean":
        return summed / count  # [B, H]
    if mode == "mean_sqrt_len":
        return summed / np.sqrt(count)  # [B, H]
    raise ValueError(f"unknown pooling mode {mode!r}")


def normalize(x: np.ndarray) -> np.ndarray:
    """Scale each row to unit L2 norm (a zero row stays zero), as torch.nn.functional.normalize."""
    norm = np.sqrt((x * x).sum(axis=-1, keepdims=True))  # [B, 1]
    return x / np.maximum(norm, np.float32(1e-12))  # [B, H]


def sentence_embedding(params: Params, config: ModelConfig, input_ids: np.ndarray,
                       attention_mask: np.ndarray) -> np.ndarray:
    """The whole model: ids [B, L] and mask [B, L] -> sentence vectors [B, H] float32."""
    token_embeddings = transformer(params, config, input_ids, attention_mask, all_layers=False)[-1]  # [B, L, H]
    x = pool(token_embeddings, attention_mask, config.pooling_mode)  # [B, H]
    return normalize(x) if config.normalize else x  # [B, H]
