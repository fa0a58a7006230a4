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

# erf(x) ≈ x · P(x²) / Q(x²) on |x| ≤ 4 (erf(±4) rounds to ±1 in float32). NumPy has no erf, and the tanh
# approximation of GELU departs from BERT's exact GELU by up to ~1e-3, so we use a rational fit of our own,
# made by scripts/fit_erf.py: max error 8e-8 in float64, 4e-7 (a few float32 ulps) when evaluated in float32.
_ERF_P = (1.1283788780109263, 0.21034424906117866, 0.051950318331079326, 0.004133247340685138,
          0.00015118880774919833, -1.964865230057054e-06, 1.9156384314004103e-08)
_ERF_Q = (1.0, 0.5197421153258477, 0.11930336317264842, 0.015236598523708334, 0.0010574754047789651)
_ERF_P32 = tuple(np.float32(c) for c in _ERF_P)
_ERF_Q32 = tuple(np.float32(c) for c in _ERF_Q)


def erf(x: np.ndarray) -> np.ndarray:
    """The error function, elementwise, float32 in and out (any shape)."""
    x = np.clip(x, np.float32(-4.0), np.float32(4.0))
    t = x * x
    p = np.full_like(x, _ERF_P32[-1])
    for c in _ERF_P32[-2::-1]:  # Horner's rule: p = ((p6·t + p5)·t + …)·t + p0
        p = p * t + c
    q = np.full_like(x, _ERF_Q32[-1])
    for c in _ERF_Q32[-2::-1]:
        q = q * t + c
    return np.clip(x * p / q, np.float32(-1.0), np.float32(1.0))  # rounding must not push |erf| past 1


def gelu(x: np.ndarray) -> np.ndarray:
    """Exact GELU, x · Φ(x) = x/2 · (1 + erf(x/√2)), as BERT's `hidden_act: "gelu"`."""
    return np.float32(0.5) * x * (np.float32(1.0) + erf(x * np.float32(1 / np.sqrt(2))))


def layer_norm(x: np.ndarray, g: np.ndarray, b: np.ndarray, eps: float) -> np.ndarray:
    """Normalize the last axis to zero mean and unit variance, then scale by g and shift by b."""
    mean = x.mean(axis=-1, keepdims=True)  # [..., H] -> [..., 1]
    var = ((x - mean) ** 2).mean(axis=-1, keepdims=True)  # [..., 1], biased variance as torch's LayerNorm
    return (x - mean) / np.sqrt(var + np.float32(eps)) * g + b  # [..., H]


def linear(x: np.ndarray, w: np.ndarray, b: np.ndarray) -> np.ndarray:
    """A dense layer: [..., in] @ [in, out] + [out] -> [..., out]."""
    return x @ w + b


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


def attention(x: np.ndarray, mask_bias: np.ndarray, qkv: Params, out: Params, n_head: int,
              weights_out: list | None = None) -> np.ndarray:
    """Multi-head self-attention: every token mixes in the value of every real token, weighted by q·k.

    weights_out: if a list, the attention weights [B, n_head, L, L] are appended to it (for `explain`).
    """
    B, L, H = x.shape
    D = H // n_head
    q, k, v = np.split(linear(x, **qkv), 3, axis=-1)  # [B, L, H] -> [B, L, 3H] -> 3 × [B, L, H]
    q = q.reshape(B, L, n_head, D).transpose(0, 2, 1, 3)  # [B, n_head, L, D]
    k = k.reshape(B, L, n_head, D).transpose(0, 2, 3, 1)  # [B, n_head, D, L] (already transposed for q @ k)
    v = v.reshape(B, L, n_head, D).transpose(0, 2, 1, 3)  # [B, n_head, L, D]
    scores = q @ k * np.float32(1 / np.sqrt(D))  # [B, n_head, L, L]: query i · key j / √D
    scores = scores + mask_bias[:, None, None, :]  # padding keys get a huge negative score -> weight 0
    weights = softmax(scores)  # [B, n_head, L, L], each row sums to 1
    if weights_out is not None:
        weights_out.append(weights)
    ctx = weights @ v  # [B, n_head, L, D]
    ctx = ctx.transpose(0, 2, 1, 3).reshape(B, L, H)  # heads side by side again: [B, L, H]
    return linear(ctx, **out)  # [B, L, H]


def feed_forward(x: np.ndarray, ffn_in: Params, ffn_out: Params) -> np.ndarray:
    """The position-wise MLP: widen to I, GELU, project back to H."""
    return linear(gelu(linear(x, **ffn_in)), **ffn_out)  # [B, L, H] -> [B, L, I] -> [B, L, H]


def encoder_layer(x: np.ndarray, mask_bias: np.ndarray, layer: Params, n_head: int, eps: float,
                  attentions: list | None = None) -> np.ndarray:
    """One post-LN transformer block: x = LN(x + attention(x)); x = LN(x + FFN(x))."""
    a = attention(x, mask_bias, layer["qkv"], layer["attn_out"], n_head, attentions)  # [B, L, H]
    x = layer_norm(x + a, **layer["ln_attn"], eps=eps)
    x = layer_norm(x + feed_forward(x, layer["ffn_in"], layer["ffn_out"]), **layer["ln_ffn"], eps=eps)
    return x  # [B, L, H]


def transformer(params: Params, config: ModelConfig, input_ids: np.ndarray, attention_mask: np.ndarray,
                token_type_ids: np.ndarray | None = None, attentions: list | None = None) -> list[np.ndarray]:
    """Run BERT on a padded batch; return the hidden states after the embeddings and after each layer.

    input_ids, attention_mask, token_type_ids: integer arrays [B, L]; attention_mask is 1 for real tokens and
    0 for padding. Returns a list of 1 + num_hidden_layers float32 arrays [B, L, H]; the last is the output.
    attentions: if a list, each layer's attention weights [B, n_head, L, L] are appended to it.
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
    return hidden_states


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
    token_embeddings = transformer(params, config, input_ids, attention_mask)[-1]  # [B, L, H]
    x = pool(token_embeddings, attention_mask, config.pooling_mode)  # [B, H]
    return normalize(x) if config.normalize else x  # [B, H]
