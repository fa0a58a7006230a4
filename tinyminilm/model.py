"""The forward pass of a BERT sentence encoder, in NumPy, top to bottom — the textbook version.

    text ids ─► embeddings ─► N × encoder layer ─► pooling ─► L2 normalize ─► sentence vector

Everything here is a plain function of arrays, written to be read: one idea per function, a shape comment per
step, nothing done for speed. `tinyminilm/fast.py` holds the same functions written for speed (what `encode`
runs); tests/test_fast_paths.py checks that each one gives what its plain twin here gives.

The weights arrive as a nested dict built by `tinyminilm.weights` (short names, every matrix stored as [in, out]
so that a linear layer is `x @ w + b`); the sizes come from `tinyminilm.config.ModelConfig`. Float32 in, float32
out: no step upcasts to float64 (every constant is a np.float32).

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
# within 6e-7. NumPy has no erf, but its exp and tanh are fast vectorized loops.
_LOGIT_PHI = (1.5957704248589097, 0.07266417786563505, -6.323726614304446e-05, -0.000111358773690128,
              8.055517479954065e-06, -2.7388113361455226e-07, 3.75923174306863e-09)
_LOGIT_PHI32 = tuple(np.float32(c) for c in _LOGIT_PHI)
_CLIP = np.float32(5.5)
_SQRT2 = np.float32(np.sqrt(2.0))


def logit_phi(x: np.ndarray) -> np.ndarray:
    """ℓ(x) = log(Φ(x) / (1 − Φ(x))), elementwise: float32 array of any shape -> the same shape."""
    xc = np.clip(x, -_CLIP, _CLIP)  # beyond ±5.5, Φ is 0 or 1 in float32 anyway
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


def softmax(x: np.ndarray) -> np.ndarray:
    """Softmax over the last axis, shifted by the row maximum so exp never overflows: [..., n] -> [..., n]."""
    e = np.exp(x - x.max(axis=-1, keepdims=True))
    return e / e.sum(axis=-1, keepdims=True)


def layer_norm(x: np.ndarray, g: np.ndarray, b: np.ndarray, eps: float) -> np.ndarray:
    """Normalize the last axis to zero mean and unit variance, then scale by g and shift by b: [..., H]."""
    mean = x.mean(axis=-1, keepdims=True)  # [..., H] -> [..., 1]
    var = ((x - mean) ** 2).mean(axis=-1, keepdims=True)  # [..., 1], biased variance as torch's LayerNorm
    return (x - mean) / np.sqrt(var + np.float32(eps)) * g + b  # [..., H]


def linear(x: np.ndarray, w: np.ndarray, b: np.ndarray) -> np.ndarray:
    """A dense layer: [..., in] @ [in, out] + [out] -> [..., out]."""
    return x @ w + b


# --------------------------------------------------------------------------------------------------------------
# The transformer
# --------------------------------------------------------------------------------------------------------------


def embed(input_ids: np.ndarray, token_type_ids: np.ndarray, params: Params, eps: float) -> np.ndarray:
    """Token ids [B, L] -> the first hidden states [B, L, H]: word + position + token-type embeddings, LayerNorm."""
    positions = np.arange(input_ids.shape[1])  # [L]: 0, 1, …, L-1 (absolute positions)
    x = (params["word_embeddings"][input_ids]  # [B, L] -> [B, L, H]
         + params["position_embeddings"][positions]  # [L, H], broadcast over the batch
         + params["token_type_embeddings"][token_type_ids])  # [B, L, H]; all type 0 for single sentences
    return layer_norm(x, **params["ln_emb"], eps=eps)  # [B, L, H]


def attention(x: np.ndarray, mask_bias: np.ndarray, qkv: Params, proj: Params, n_head: int,
              attentions: list | None = None) -> np.ndarray:
    """Multi-head self-attention: every token mixes in the values of every real token, weighted by q·k.

    x [B, L, H]; mask_bias [B, L], 0 for real tokens and a huge negative number for padding. Returns [B, L, H].
    attentions: if a list, the attention weights [B, n_head, L, L] are appended to it (for `explain`).
    """
    B, L, H = x.shape
    D = H // n_head
    q, k, v = np.split(linear(x, **qkv), 3, axis=-1)  # [B, L, H] -> [B, L, 3H] -> 3 × [B, L, H]
    q = q.reshape(B, L, n_head, D).transpose(0, 2, 1, 3)  # [B, n_head, L, D]: the heads side by side
    k = k.reshape(B, L, n_head, D).transpose(0, 2, 1, 3)  # [B, n_head, L, D]
    v = v.reshape(B, L, n_head, D).transpose(0, 2, 1, 3)  # [B, n_head, L, D]
    scores = q @ k.transpose(0, 1, 3, 2) / np.sqrt(np.float32(D))  # [B, n_head, L, L]: query i · key j / √D
    scores = scores + mask_bias[:, None, None, :]  # padding keys get a huge negative score, so weight 0
    weights = softmax(scores)  # [B, n_head, L, L]: each row sums to 1
    if attentions is not None:
        attentions.append(weights)
    ctx = weights @ v  # [B, n_head, L, D]: a weighted mean of the values, per head
    ctx = ctx.transpose(0, 2, 1, 3).reshape(B, L, H)  # the heads side by side again: [B, L, H]
    return linear(ctx, **proj)  # [B, L, H]


def feed_forward(x: np.ndarray, ffn_in: Params, ffn_out: Params) -> np.ndarray:
    """The position-wise MLP: widen to I, GELU, project back to H: [B, L, H] -> [B, L, H]."""
    return linear(gelu(linear(x, **ffn_in)), **ffn_out)  # [B, L, H] -> [B, L, I] -> [B, L, H]


def encoder_layer(x: np.ndarray, mask_bias: np.ndarray, layer: Params, n_head: int, eps: float,
                  attentions: list | None = None) -> np.ndarray:
    """One post-LN transformer block: x = LN(x + attention(x)); x = LN(x + FFN(x)). [B, L, H] -> [B, L, H]."""
    a = attention(x, mask_bias, layer["qkv"], layer["attn_out"], n_head, attentions)  # [B, L, H]
    x = layer_norm(x + a, **layer["ln_attn"], eps=eps)  # [B, L, H]
    f = feed_forward(x, layer["ffn_in"], layer["ffn_out"])  # [B, L, H]
    return layer_norm(x + f, **layer["ln_ffn"], eps=eps)  # [B, L, H]


def transformer(params: Params, config: ModelConfig, input_ids: np.ndarray, attention_mask: np.ndarray,
                token_type_ids: np.ndarray | None = None, attentions: list | None = None,
                all_layers: bool = True) -> list[np.ndarray]:
    """Run BERT on a padded batch; return the hidden states after the embeddings and after each layer.

    input_ids, attention_mask, token_type_ids: integer arrays [B, L]; attention_mask is 1 for real tokens and
    0 for padding. Returns a list of 1 + num_hidden_layers float32 arrays [B, L, H]; the last is the output.
    attentions: if a list, each layer's attention weights [B, n_head, L, L] are appended to it.
    all_layers: False keeps only the last hidden state (the list holds one array), so each layer's input can be
    freed as soon as the next layer has run.
    """
    bert = config.bert
    if token_type_ids is None:
        token_type_ids = np.zeros_like(input_ids)
    # Additive mask, as transformers builds it: 0 for real keys, the most negative float32 for padding keys.
    mask_bias = (np.float32(1) - attention_mask.astype(np.float32)) * np.finfo(np.float32).min  # [B, L]
    x = embed(input_ids, token_type_ids, params, bert.layer_norm_eps)  # [B, L, H]
    hidden_states = [x] if all_layers else []  # with all_layers=False, each layer's input is freed as we go
    for layer in params["layers"]:
        x = encoder_layer(x, mask_bias, layer, bert.num_attention_heads, bert.layer_norm_eps, attentions)
        if all_layers:
            hidden_states.append(x)
    return hidden_states if all_layers else [x]


# --------------------------------------------------------------------------------------------------------------
# From token vectors to one sentence vector
# --------------------------------------------------------------------------------------------------------------


def pool(token_embeddings: np.ndarray, attention_mask: np.ndarray, mode: str) -> np.ndarray:
    """[B, L, H] token vectors -> [B, H] sentence vectors, looking only at the tokens the mask keeps."""
    if mode == "cls":
        first = attention_mask.argmax(axis=1)  # [B]: 0, the [CLS] token, unless exclude_prompt masked it
        return token_embeddings[np.arange(len(first)), first]  # [B, H]
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
    raise ValueError(f"unknown pooling mode {mode!r}")  # config.py accepts only the four above


def exclude_prompt(attention_mask: np.ndarray, prompt_length: int) -> np.ndarray:
    """The mask pooling reads when the Pooling module leaves the prompt out (include_prompt false in its config):
    the first prompt_length positions, [CLS] and the prompt's tokens, set to 0, as sentence-transformers 6.2 does.
    Attention still sees them; only pooling skips them. [B, L] -> [B, L]"""
    mask = attention_mask.copy()  # [B, L]
    mask[:, :prompt_length] = 0  # every row starts with the same prompt (right padding)
    return mask  # [B, L]


def normalize(x: np.ndarray) -> np.ndarray:
    """Scale each row to unit L2 norm (a zero row stays zero), as torch.nn.functional.normalize: [B, H]."""
    norm = np.sqrt((x * x).sum(axis=-1, keepdims=True))  # [B, 1]
    return x / np.maximum(norm, np.float32(1e-12))  # [B, H]


def pool_and_normalize(token_embeddings: np.ndarray, attention_mask: np.ndarray, config: ModelConfig) -> np.ndarray:
    """The modules after the transformer, as the model folder lists them: Pooling in config.pooling_mode, then
    Normalize if modules.json has it. [B, L, H] token vectors -> [B, H] sentence vectors."""
    x = pool(token_embeddings, attention_mask, config.pooling_mode)  # [B, H]
    return normalize(x) if config.normalize else x  # [B, H]


def sentence_embedding(params: Params, config: ModelConfig, input_ids: np.ndarray,
                       attention_mask: np.ndarray) -> np.ndarray:
    """The whole model: ids [B, L] and mask [B, L] -> sentence vectors [B, H] float32."""
    token_embeddings = transformer(params, config, input_ids, attention_mask, all_layers=False)[-1]  # [B, L, H]
    return pool_and_normalize(token_embeddings, attention_mask, config)  # [B, H]


# --------------------------------------------------------------------------------------------------------------
# Cross-encoders: scores for a pair of texts read together (BertForSequenceClassification)
# --------------------------------------------------------------------------------------------------------------
#
# A cross-encoder such as cross-encoder/ms-marco-MiniLM-L6-v2 reads a query and a document as one sequence,
# "[CLS] query [SEP] document [SEP]", the document's tokens with token type 1 (the second row of the token-type
# embeddings, which single sentences never use). Attention mixes the two texts in every layer; then the [CLS]
# token's last hidden state becomes the scores: BERT's pooler (a dense layer and tanh, from BERT's pre-training),
# then a linear classifier with one output per label. With one label, that logit is the relevance score; the
# activation sentence-transformers puts on top (sigmoid, or none) is applied by tinyminilm.cross_encoder.
# Reference: Nogueira & Cho, "Passage Re-ranking with BERT", 2019.


def pooler(hidden_states: np.ndarray, dense: Params) -> np.ndarray:
    """BERT's pooler: tanh of a dense layer on the [CLS] token's vector. [B, L, H] -> [B, H]."""
    cls = hidden_states[:, 0]  # [B, L, H] -> [B, H]: the first token, [CLS]
    return np.tanh(linear(cls, **dense))  # [B, H] @ [H, H] + [H] -> [B, H], squashed into (-1, 1)


def classifier(pooled: np.ndarray, head: Params) -> np.ndarray:
    """The classification head: one logit per label. [B, H] @ [H, num_labels] + [num_labels] -> [B, num_labels]."""
    return linear(pooled, **head)  # [B, num_labels]


def sequence_classification(params: Params, config: Any, input_ids: np.ndarray, attention_mask: np.ndarray,
                            token_type_ids: np.ndarray) -> np.ndarray:
    """The whole cross-encoder: ids, mask and token types [B, L] -> logits [B, num_labels] float32, before any
    activation. config: anything with the `bert` shape (a tinyminilm.cross_config.CrossEncoderConfig)."""
    hidden = transformer(params, config, input_ids, attention_mask, token_type_ids, all_layers=False)[-1]  # [B, L, H]
    pooled = pooler(hidden, params["pooler"])  # [B, H]
    return classifier(pooled, params["classifier"])  # [B, num_labels]
