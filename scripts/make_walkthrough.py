"""Write docs/walkthrough.md — and the explain golden text and example picture — by running the model.

    python scripts/make_walkthrough.py            # rewrite docs/walkthrough.md, tests/golden/explain.txt,
                                                  # docs/attention.svg
    python scripts/make_walkthrough.py --check    # exit 1 if any of them is out of date

Every number in the walkthrough is computed here with tinyminilm's own functions on one example sentence, and
every code block is the current source of the function it shows (inspect.getsource), so the document cannot
drift from the code: tests/test_explain.py regenerates it in memory and compares. Floats are rounded to 4
decimals and compared at that rounding (a last-digit wobble between BLAS builds is tolerated, see
`same_at_rounding`). Rerun this script whenever tinyminilm/model.py or the tokenization code changes.
"""

from __future__ import annotations

import argparse
import difflib
import inspect
import json
import math
import re
import sys
import textwrap
from collections.abc import Callable
from pathlib import Path

import numpy as np

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

import tinyminilm
from tinyminilm import tokenization
from tinyminilm import explain
from tinyminilm import model as textbook

DOC = ROOT / "docs" / "walkthrough.md"
PICTURE = ROOT / "docs" / "attention.svg"
GOLDEN_EXPLAIN = ROOT / "tests" / "golden" / "explain.txt"

SENTENCE = "The quick brown fox jumps over the lazy dog."
SHORT = "A lazy dog."  # padded next to SENTENCE to show the mask
SUBWORDS = "Tokenization splits unbelievably rare words."
NEIGHBOURS = ("A fast brown fox leaps over a sleepy dog.", "Stock markets fell sharply on Monday.")
FOCUS = "fox"  # the token whose numbers we follow through the network
HEAD = 1  # the head (1-based) of layer 1 whose scores we print

REGENERATE = "run python scripts/make_walkthrough.py"


# --------------------------------------------------------------------------------------------------------------
# Formatting
# --------------------------------------------------------------------------------------------------------------


def f4(x: float) -> str:
    """A float with 4 decimals ("-0.0000" written as "0.0000")."""
    s = f"{float(x):.4f}"
    return "0.0000" if s == "-0.0000" else s


def vec(v: np.ndarray, n: int = 4) -> str:
    """The first n values of a vector: "[0.1234, -0.5678, …]"."""
    more = ", …" if v.size > n else ""
    return "[" + ", ".join(f4(x) for x in np.asarray(v).ravel()[:n]) + more + "]"


def shape(a: np.ndarray | tuple) -> str:
    return "[" + ", ".join(str(int(s)) for s in (a.shape if hasattr(a, "shape") else a)) + "]"


def norm(v: np.ndarray) -> float:
    return float(np.sqrt((np.asarray(v, np.float64) ** 2).sum()))


def code(*objs: Callable) -> str:
    """The current source of functions (methods dedented), as one python code block."""
    parts = [textwrap.dedent(inspect.getsource(o)).rstrip() for o in objs]
    return "```python\n" + "\n\n\n".join(parts) + "\n```"


def helpers(fns: list[Callable], shown: set[Callable]) -> list[Callable]:
    """The other model.py functions that `fns` call (transitively), in first-call order, so an excerpt is whole."""
    own = {name: f for name, f in vars(textbook).items() if inspect.isfunction(f) and f.__module__ == textbook.__name__}
    found: list[Callable] = []
    todo = list(fns)
    while todo:
        src = inspect.getsource(todo.pop(0))
        for name in re.findall(r"\b([A-Za-z_]\w*)\(", src):
            f = own.get(name)
            if f is not None and f not in shown and f not in found and f not in fns:
                found.append(f)
                todo.append(f)
    return found


def table(header: list[str], rows: list[list[str]]) -> str:
    """A Markdown table."""
    lines = ["| " + " | ".join(header) + " |", "|" + "|".join("---" for _ in header) + "|"]
    lines += ["| " + " | ".join(r) + " |" for r in rows]
    return "\n".join(lines)


def tok_md(t: str) -> str:
    """A token inside a Markdown table cell, as code so that [CLS] and ## are shown literally."""
    return "`" + t.replace("|", "\\|") + "`"


# --------------------------------------------------------------------------------------------------------------
# Comparing regenerated text with the committed one
# --------------------------------------------------------------------------------------------------------------

_NUM = re.compile(r"(?<![\w.])-?\d+\.\d{4}(?![\d.])")  # the numbers this script writes: 4 decimals
_PY_FENCE = re.compile(r"```python\n.*?```", re.DOTALL)  # code excerpts: compared exactly


def _numbers(text: str) -> tuple[str, list[float]]:
    """The text with every generated 4-decimal number (outside python blocks) replaced by "#", and the numbers."""
    fences = [m.span() for m in _PY_FENCE.finditer(text)]
    out, nums, last = [], [], 0
    for m in _NUM.finditer(text):
        if any(a <= m.start() < b for a, b in fences):
            continue
        out.append(text[last:m.start()] + "#")
        nums.append(float(m.group()))
        last = m.end()
    out.append(text[last:])
    return "".join(out), nums


def same_at_rounding(a: str, b: str, units: int = 2) -> bool:
    """True if a and b are equal, except that 4-decimal numbers may differ by up to `units` in the last digit.

    Code blocks and every other character must match exactly; only the numbers this script rounds get slack,
    so that float noise across BLAS builds (1e-6 or so) never fails the comparison at a rounding boundary.
    """
    sa, na = _numbers(a)
    sb, nb = _numbers(b)
    return sa == sb and len(na) == len(nb) and all(abs(x - y) <= units * 1e-4 + 1e-9 for x, y in zip(na, nb))


def diff_hint(committed: str, fresh: str, name: str, limit: int = 40) -> str:
    """The first lines of a unified diff between the committed and the regenerated text."""
    lines = list(difflib.unified_diff(committed.splitlines(), fresh.splitlines(), f"{name} (committed)",
                                      f"{name} (regenerated)", lineterm="", n=1))
    more = [f"... {len(lines) - limit} more diff lines"] if len(lines) > limit else []
    return "\n".join(lines[:limit] + more)


# --------------------------------------------------------------------------------------------------------------
# The numbers
# --------------------------------------------------------------------------------------------------------------


def _raw_tokenizer(folder: Path):
    """tokenizer.json exactly as shipped: truncation and padding at 128."""
    from tokenizers import Tokenizer

    return Tokenizer.from_file(str(folder / "tokenizer.json"))


def compute(model: tinyminilm.SentenceEncoder) -> dict[str, str]:
    """Every value the template refers to, as text."""
    v: dict[str, str] = {}
    cfg, bert, p = model.config, model.config.bert, model.params
    H, n_head, I = bert.hidden_size, bert.num_attention_heads, bert.intermediate_size
    D = H // n_head
    eps = bert.layer_norm_eps
    v.update(sentence=SENTENCE, short=SHORT, focus=FOCUS, H=str(H), n_head=str(n_head), D=str(D), I=str(I),
             n_layers=str(bert.num_hidden_layers), vocab=str(bert.vocab_size), eps=f"{eps:g}",
             max_pos=str(bert.max_position_embeddings), max_seq=str(model.max_seq_length),
             pooling=cfg.pooling_mode, head=str(HEAD))

    # 1. Tokenization ------------------------------------------------------------------------------------------
    exp = explain.explain_text(model, SENTENCE)
    ids, tokens = exp.ids, exp.tokens
    L = len(ids)
    pos = tokens.index(FOCUS)
    v.update(L=str(L), pos=str(pos), focus_id=str(ids[pos]), cls_id=str(ids[0]), sep_id=str(ids[-1]))
    v["token_table"] = table(["position", *[str(i) for i in range(L)]],
                             [["token", *[tok_md(t) for t in tokens]], ["id", *[str(i) for i in ids]]])
    sub_tokens = [model.tokenizer.backend.id_to_token(i) for i in model.token_ids([SUBWORDS])[0]]
    v.update(subwords=SUBWORDS, subword_tokens=" ".join(tok_md(t) for t in sub_tokens))

    raw = _raw_tokenizer(model.folder)
    raw_cfg = json.loads((model.folder / "tokenizer.json").read_text(encoding="utf-8"))
    v["raw_truncation"] = json.dumps(raw_cfg["truncation"])
    v["raw_padding"] = json.dumps(raw_cfg["padding"]["strategy"])
    enc = raw.encode(SENTENCE)
    v.update(raw_len=str(len(enc.ids)), raw_pads=str(sum(1 for m in enc.attention_mask if m == 0)))
    long_text = " ".join([SENTENCE] * 30)
    v.update(long_words=str(len(long_text.split())),
             long_full=str(model.tokenizer.untruncated_length(long_text)),
             long_raw=str(len([m for m in raw.encode(long_text).attention_mask if m])))
    long_ids = model.token_ids([long_text])[0]
    v.update(long_ours=str(len(long_ids)), long_last=model.tokenizer.backend.id_to_token(long_ids[-1]))

    batch = model.tokenize([SENTENCE, SHORT])
    v["batch_ids"] = "\n".join(" ".join(f"{i:>5}" for i in row) for row in batch["input_ids"])
    v["batch_mask"] = "\n".join(" ".join(f"{i:>5}" for i in row) for row in batch["attention_mask"])
    v["batch_shape"] = shape(batch["input_ids"])
    n_short = int(batch["attention_mask"][1].sum())
    v.update(n_short=str(n_short), n_pad=str(L - n_short))

    # 2. Embeddings ---------------------------------------------------------------------------------------------
    v.update(wte=shape(p["word_embeddings"]), wpe=shape(p["position_embeddings"]), wtt=shape(p["token_type_embeddings"]))
    word = p["word_embeddings"][ids[pos]]  # [H]
    position, ttype = p["position_embeddings"][pos], p["token_type_embeddings"][0]  # [H] each
    s = word + position + ttype  # [H]
    mu, sd = float(s.mean()), float(np.sqrt(((s - s.mean()) ** 2).mean()))
    z = (s - s.mean()) / np.sqrt(((s - s.mean()) ** 2).mean() + np.float32(eps))  # [H]
    h0 = exp.hidden_states[0][pos]  # [H]
    check = z * p["ln_emb"]["g"] + p["ln_emb"]["b"]
    _require(np.abs(check - h0).max() < 1e-4, "the embedding of the focus token, recomputed by hand")
    steps = [(f"word_embeddings[{ids[pos]}]", vec(word), ""), (f"position_embeddings[{pos}]", vec(position), ""),
             ("token_type_embeddings[0]", vec(ttype), ""),
             ("sum", vec(s), f"mean {f4(mu)}, std {f4(sd)}, norm {f4(norm(s))}"),
             ("(sum − mean) / √(var + eps)", vec(z), f"mean {f4(z.mean())}, std {f4(z.std())}"),
             ("× g + b  (the LayerNorm)", vec(h0), f"norm {f4(norm(h0))}")]
    v["embed_steps"] = "\n".join(f"{a:<30} {b:<40} {c}".rstrip() for a, b, c in steps)
    v.update(g=vec(p["ln_emb"]["g"]), b=vec(p["ln_emb"]["b"]))

    # 3. Attention ----------------------------------------------------------------------------------------------
    layer = p["layers"][0]
    x = exp.hidden_states[0][None]  # [1, L, H]
    qkv = textbook.linear(x, **layer["qkv"])  # [1, L, 3H]
    q, k, _ = np.split(qkv, 3, axis=-1)  # 3 × [1, L, H]
    h = HEAD - 1
    qh = q[0, :, h * D:(h + 1) * D]  # [L, D]: this head's slice of the query vectors
    kh = k[0, :, h * D:(h + 1) * D]  # [L, D]
    scores = qh[pos] @ kh.T / np.float32(math.sqrt(D))  # [L]: query FOCUS against every key
    weights = textbook.softmax(scores[None])[0]  # [L]
    _require(np.abs(weights - exp.attentions[0][h, pos]).max() < 1e-5,
             "layer 1's attention weights, recomputed from q and k")
    v.update(qkv_shape=shape(qkv), qkv_w=shape(layer["qkv"]["w"]), q_shape=shape((1, n_head, L, D)),
             att_shape=shape((1, n_head, L, L)), q_focus=vec(qh[pos]), k_focus=vec(kh[pos]))
    v["score_table"] = table(["key", *[tok_md(t) for t in tokens]],
                             [["score q·k/√D", *[f4(x) for x in scores]], ["weight", *[f4(x) for x in weights]]])
    v.update(weights_sum=f4(weights.sum()), score_max=f4(scores.max()),
             top_key=tokens[int(weights.argmax())], top_weight=f4(weights.max()))

    pad_att: list[np.ndarray] = []
    textbook.transformer(p, cfg, batch["input_ids"], batch["attention_mask"], batch["token_type_ids"], attentions=pad_att)
    mask_bias = (1 - batch["attention_mask"].astype(np.float32)) * np.finfo(np.float32).min  # as model.transformer
    v["mask_bias"] = " ".join(f"{b + 0.0:.4g}" for b in mask_bias[1])  # + 0.0 turns -0.0 into 0
    w_short = pad_att[0][1, h, 0]  # [L]: the short text's [CLS] looking at its 12 keys (6 of them padding)
    v["pad_weights"] = " ".join(f4(x) for x in w_short)
    v["pad_weight_sum"] = f4(w_short[n_short:].sum())
    _require(float(w_short[n_short:].max()) == 0.0, "padding keys get exactly zero attention")

    for name, offset in (("self", 0), ("prev", -1), ("next", 1)):
        # [layers, heads]: the mean weight from each token to the token `offset` positions away
        d = np.array([[np.diagonal(a, offset=offset).mean() for a in att] for att in exp.attentions])
        li, hi = (int(i) for i in np.unravel_index(d.argmax(), d.shape))
        v.update({f"l_{name}": str(li + 1), f"h_{name}": str(hi + 1), f"{name}_weight": f4(d[li, hi])})
    cls_share = float(np.mean([a[:, :, 0].mean() for a in exp.attentions[1:]]))
    v.update(cls_share=f4(cls_share), uniform=f4(1 / L))

    # 4. Residual + LayerNorm, 5. feed-forward ------------------------------------------------------------------
    a = textbook.attention(x, np.zeros((1, L), np.float32), layer["qkv"], layer["attn_out"], n_head)  # [1, L, H]
    x1 = textbook.layer_norm(x + a, **layer["ln_attn"], eps=eps)  # [1, L, H]
    pre = textbook.linear(x1, **layer["ffn_in"])  # [1, L, I]
    f = textbook.feed_forward(x1, layer["ffn_in"], layer["ffn_out"])  # [1, L, H]
    x2 = textbook.layer_norm(x1 + f, **layer["ln_ffn"], eps=eps)  # [1, L, H]
    _require(np.abs(x2[0] - exp.hidden_states[1]).max() < 1e-4, "layer 1, recomputed step by step")
    r = x + a
    rz = (r - r.mean(-1, keepdims=True)) / np.sqrt(r.var(-1, keepdims=True) + np.float32(eps))
    v.update(n_x=f4(norm(x[0, pos])), n_a=f4(norm(a[0, pos])), n_r=f4(norm(r[0, pos])), n_x1=f4(norm(x1[0, pos])),
             n_f=f4(norm(f[0, pos])), n_x2=f4(norm(x2[0, pos])), r_mean=f4(r[0, pos].mean()),
             r_std=f4(r[0, pos].std()), rz_mean=f4(rz[0, pos].mean()), rz_std=f4(rz[0, pos].std()),
             pre_shape=shape(pre), ffn_in_w=shape(layer["ffn_in"]["w"]), ffn_out_w=shape(layer["ffn_out"]["w"]),
             pre_neg=f4((pre < 0).mean()), pre_focus=vec(pre[0, pos], 6),
             gelu_focus=vec(textbook.gelu(pre[0, pos]), 6))

    grid = np.array([-3, -2, -1, -0.5, 0, 0.5, 1, 2, 3], np.float32)
    exact = [float(t) / 2 * (1 + math.erf(float(t) / math.sqrt(2))) for t in grid]
    tanh = [0.5 * float(t) * (1 + math.tanh(math.sqrt(2 / math.pi) * (float(t) + 0.044715 * float(t) ** 3)))
            for t in grid]
    ours = textbook.gelu(grid)
    v["gelu_table"] = table(["x", *[f"{t:g}" for t in grid]],
                            [["GELU(x), tinyminilm (float32)", *[f4(t) for t in ours]],
                             ["x·Φ(x) with math.erf (float64)", *[f4(t) for t in exact]],
                             ["tanh approximation", *[f4(t) for t in tanh]]])
    dense = np.linspace(-8, 8, 16_001, dtype=np.float32)
    exact_d = np.array([t / 2 * (1 + math.erf(t / math.sqrt(2))) for t in dense.astype(np.float64)])
    tanh_d = 0.5 * dense.astype(np.float64) * (1 + np.tanh(math.sqrt(2 / math.pi) * (dense + 0.044715 * dense ** 3)))
    err = float(np.abs(textbook.gelu(dense) - exact_d).max())
    v["gelu_err"] = "less than 1e-5" if err < 1e-5 else "MORE than 1e-5 (look at model.gelu)"
    v["tanh_err"] = f4(np.abs(tanh_d - exact_d).max())

    # 6. The stack ----------------------------------------------------------------------------------------------
    rows = []
    for i, hs in enumerate(exp.hidden_states):
        n = np.sqrt((hs.astype(np.float64) ** 2).sum(-1))  # [L]
        rows.append(["embeddings" if i == 0 else f"layer {i}", shape((1, *hs.shape)), f4(n.mean()),
                     f4(n[pos]), vec(hs[pos], 3)])
    v["stack_table"] = table(["after", "shape", "mean token norm", f"norm of `{FOCUS}`", f"`{FOCUS}`, first values"],
                             rows)

    # 7. Pooling, 8. normalization ------------------------------------------------------------------------------
    last = exp.hidden_states[-1]  # [L, H]
    _require(np.abs(exp.pooled - last.mean(0)).max() < 1e-5, "mean pooling equals the column mean")
    alone = model.encode(SHORT)
    in_batch = model.encode([SENTENCE, SHORT])[1]
    v.update(pooled=vec(exp.pooled, 6), pooled_norm=f4(norm(exp.pooled)), emb=vec(exp.embedding, 6),
             emb_norm=f4(norm(exp.embedding)), pad_diff=f4(np.abs(alone - in_batch).max()),
             last_shape=shape((1, *last.shape)), pooled_shape=shape((1, *exp.pooled.shape)))
    embs = model.encode([SENTENCE, *NEIGHBOURS])  # [3, H]
    v.update(n1=NEIGHBOURS[0], n2=NEIGHBOURS[1], sim1=f4(embs[0] @ embs[1]), sim2=f4(embs[0] @ embs[2]),
             encode_diff=f4(np.abs(embs[0] - exp.embedding).max()))

    # Code excerpts ---------------------------------------------------------------------------------------------
    shown = {textbook.linear, textbook.layer_norm, textbook.softmax, textbook.attention, textbook.feed_forward, textbook.gelu}
    v.update(code_tokenizer=code(tokenization.Tokenizer.__init__, tokenization.Tokenizer.pad), code_embed=code(textbook.embed),
             code_layer_norm=code(textbook.layer_norm),
             code_attention=code(textbook.linear, textbook.attention, textbook.softmax, *helpers([textbook.attention, textbook.softmax], shown)),
             code_layer=code(textbook.encoder_layer),
             code_ffn=code(textbook.feed_forward, textbook.gelu, *helpers([textbook.feed_forward, textbook.gelu], shown)),
             code_transformer=code(textbook.transformer), code_pool=code(textbook.pool),
             code_normalize=code(textbook.normalize, textbook.pool_and_normalize, textbook.sentence_embedding))
    return v


def _require(ok: bool, what: str) -> None:
    if not ok:
        raise RuntimeError(f"{what} does not match what tinyminilm computes: tinyminilm/model.py changed in a way "
                           "scripts/make_walkthrough.py does not follow yet; update the script (and its prose)")


# --------------------------------------------------------------------------------------------------------------
# The document
# --------------------------------------------------------------------------------------------------------------

TEMPLATE = r"""# From text to vector: a walkthrough of all-MiniLM-L6-v2 in NumPy

<!-- Generated by scripts/make_walkthrough.py: edit the template there, then run it. Do not edit by hand. -->

This page follows one sentence through the whole model, from a string to a 384-dimensional unit vector:

> {{sentence}}

Every code block below is the current source of the function it shows, pulled from tinyminilm with
`inspect.getsource`, and every number was computed by running that code on this sentence
(`scripts/make_walkthrough.py` writes the page; `tests/test_explain.py` regenerates it and fails if it is out
of date). Floats are rounded to 4 decimals. To see the same things for your own text:

```sh
tinyminilm explain "{{sentence}}" --svg attention.svg
```

Shape letters: B batch size, L tokens in the (padded) batch, H = {{H}} hidden size, n_head = {{n_head}} attention
heads of D = H / n_head = {{D}} dimensions each, I = {{I}} feed-forward width. The model has {{n_layers}} layers.
All arrays are float32.

```text
text ─► tokenizer ─► ids [B, L] ─► embed ─► [B, L, H] ─► {{n_layers}} × encoder_layer ─► [B, L, H] ─► pool ─► [B, H] ─► normalize ─► [B, H]
```

## 1. Tokenization: text → ids

The tokenizer (Hugging Face `tokenizers`, configured by the model's `tokenizer.json`) lowercases the text, splits
it at spaces and punctuation, and cuts each word into the longest pieces found in a {{vocab}}-entry vocabulary:
this is **WordPiece**. A piece that continues a word is written with a leading `##`. Then it adds `[CLS]` (id
{{cls_id}}) in front and `[SEP]` (id {{sep_id}}) at the end. Our sentence becomes L = {{L}} tokens:

{{token_table}}

Common words are one token each. Rarer words are split — "{{subwords}}" becomes
{{subword_tokens}}.

**Truncation at {{max_seq}}.** The model has {{max_pos}} position embeddings, but sentence-transformers runs it
with `max_seq_length` = {{max_seq}} (from `sentence_bert_config.json`): longer texts are cut to their first
{{max_seq}} tokens, `[CLS]` and `[SEP]` included. Our sentence repeated 30 times ({{long_words}} words,
{{long_full}} tokens) comes out as {{long_ours}} ids, the last one still `{{long_last}}`.

**Why this model's own tokenizer settings are overridden.** The shipped `tokenizer.json` says

```text
"truncation": {{raw_truncation}}
"padding": {"strategy": {{raw_padding}}, …}
```

Loaded as is, it turns our {{L}}-token sentence into {{raw_len}} ids, {{raw_pads}} of them `[PAD]`, and keeps only
{{long_raw}} tokens of the long text. sentence-transformers ignores both settings: it truncates at `max_seq_length` and pads each batch only
to its longest text. tinyminilm does the same (`Tokenizer` in `tokenization.py`, below) — otherwise every text longer than 128
tokens would get a different vector, and every short text would pay for 128 positions.

In a batch, shorter texts are padded with `[PAD]` (id 0) to the longest one, and an **attention mask** says which
positions are real. Our sentence next to "{{short}}" gives `input_ids` and `attention_mask` of shape
{{batch_shape}}:

```text
input_ids
{{batch_ids}}
attention_mask
{{batch_mask}}
```

{{code_tokenizer}}

## 2. Embeddings: ids → the first hidden states

Each token starts as the sum of three learned vectors of size H = {{H}}: its **word** embedding (table
`word_embeddings`, {{wte}}), the embedding of its **position** (`position_embeddings`, {{wpe}}: BERT learns one
vector per absolute position), and a **token type** embedding (`token_type_embeddings`, {{wtt}}; always type 0 for
a single sentence). The sum is normalized by a
LayerNorm.

{{code_embed}}

Following `{{focus}}` (position {{pos}}, id {{focus_id}}), first 4 of its 384 values:

```text
{{embed_steps}}
```

with the learned scale g = {{g}} and shift b = {{b}}.
LayerNorm works on each token's vector on its own: it subtracts the mean over the H values, divides by their
standard deviation (eps = {{eps}} keeps that away from zero), then applies the per-dimension scale and shift:

{{code_layer_norm}}

## 3. Self-attention: every token looks at every token

Attention lets each token gather information from the others. One matrix multiply turns every token vector into
a **query**, a **key** and a **value** ({{qkv_w}} weights, so [1, L, H] → {{qkv_shape}}, split in three). Each is
cut into n_head = {{n_head}} heads of D = {{D}} dimensions, so q, k and v are {{q_shape}}. In every head, the
**score** of query i against key j is q_i · k_j / √D; a **softmax** over j turns a row of scores into weights that
are positive and sum to 1; and token i's output is the weighted sum of the value vectors. The weights of all
heads form an array {{att_shape}}: [B, n_head, query, key].

{{code_attention}}

Layer 1, head {{head}}, query `{{focus}}`: its q starts {{q_focus}}, its own key starts
{{k_focus}}; against every key:

{{score_table}}

The weights sum to {{weights_sum}}; the largest, {{top_weight}}, goes to `{{top_key}}`. (Subtracting the row
maximum before `exp` changes nothing mathematically; it only keeps `exp` from overflowing.)

**The mask.** Padding must not be looked at. The mask becomes an additive bias: 0 for a real key, the most
negative float32 for a padding key, added to every score in that key's column. After the softmax those weights
are exactly 0. For "{{short}}" in the batch above ({{n_short}} real tokens, {{n_pad}} `[PAD]`), the bias is

```text
{{mask_bias}}
```

and its `[CLS]` query in layer 1, head {{head}} gives these weights over the {{L}} keys — the {{n_pad}} padding keys
get {{pad_weight_sum}} in total:

```text
{{pad_weights}}
```

**Heads.** The {{n_head}} heads of a layer attend independently, each in its own {{D}}-dimensional subspace; their
outputs are laid side by side again ([B, L, H]) and mixed by one more linear layer (`proj`). Different heads learn
different habits. On this sentence, head {{h_prev}} of layer {{l_prev}} sends on average {{prev_weight}} of each
token's attention to the *previous* token, head {{h_next}} of layer {{l_next}} sends {{next_weight}} to the *next*
one, and head {{h_self}} of layer {{l_self}} keeps {{self_weight}} on the token itself.
In layers 2 to {{n_layers}}, `[CLS]` receives on average {{cls_share}} of all attention (a uniform spread would
give each token {{uniform}}): many heads park attention there when they have nothing better to do. Every head
of every layer, for this sentence — rows are queries, columns are keys, darker is more weight:

![attention of every head of all-MiniLM-L6-v2 on the example sentence](attention.svg)

`tinyminilm explain TEXT --svg FILE` draws this picture for any text, and prints the most-attended token of each
head.

## 4. Residual connection + LayerNorm (post-LN)

Each layer does not replace its input; it **adds** to it (a residual connection), then normalizes the sum. BERT
normalizes *after* the add ("post-LN": x = LN(x + sublayer(x))), unlike GPT-2's pre-LN x = x + sublayer(LN(x));
the weights were trained one way and only work that way. A layer has two such blocks, attention then the
feed-forward network:

{{code_layer}}

For `{{focus}}` in layer 1 (norms of its 384-value vector):

```text
x, the input                        norm {{n_x}}
a = attention(x)                    norm {{n_a}}
x + a                               norm {{n_r}}   mean {{r_mean}}, std {{r_std}}
  normalized, before g and b        mean {{rz_mean}}, std {{rz_std}}
x1 = LN(x + a)                      norm {{n_x1}}
f = feed_forward(x1)                norm {{n_f}}
x2 = LN(x1 + f), the layer output   norm {{n_x2}}
```

The LayerNorms keep every token's vector at a similar scale however many layers are stacked.

## 5. The feed-forward block and GELU

The second half of a layer works on each token separately: a linear layer widens it from H = {{H}} to
I = {{I}} ({{ffn_in_w}}, so [1, L, H] → {{pre_shape}}), GELU bends it, and a second linear layer
({{ffn_out_w}}) brings it back to H.

{{code_ffn}}

GELU(x) = x · Φ(x), where Φ is the standard normal CDF, Φ(x) = (1 + erf(x / √2)) / 2: negative inputs are
squashed towards 0, positive ones pass almost unchanged. In layer 1, a share of {{pre_neg}} of the {{I}} × L
widened values is negative. For `{{focus}}`, the first widened values

```text
{{pre_focus}}
```

become, after GELU,

```text
{{gelu_focus}}
```

BERT uses this **exact** GELU (`hidden_act: "gelu"`), not the common tanh approximation. NumPy has no `erf`,
so tinyminilm evaluates Φ with a fitted approximation of its own (the fit is made by `scripts/fit_erf.py`; the
comment above the function in `model.py` says how it works and how accurate it is):

{{gelu_table}}

Over 16001 points in [−8, 8], tinyminilm's GELU differs from x · Φ(x) computed with `math.erf` in float64 by
{{gelu_err}} (float32 rounding); the tanh approximation is off by up to {{tanh_err}}. BERT was trained with the
exact form, and the golden tests allow the final vectors 1e-6.

## 6. Six layers

The embeddings go through {{n_layers}} identical-looking layers (each with its own weights). The additive mask
is built once and shared; the list of hidden states is what `model.hidden_states(text)` returns.

{{code_transformer}}

How the token vectors change (norms are L2 norms of a token's 384 values):

{{stack_table}}

## 7. Mean pooling: L token vectors → one sentence vector

all-MiniLM-L6-v2 averages the last layer's token vectors ({{pooling}} pooling, from `1_Pooling/config.json`),
counting only real tokens: the mask zeroes padding before the sum, and the sum is divided by the number of real
tokens. [1, L, H] = {{last_shape}} becomes {{pooled_shape}}:

{{code_pool}}

Our sentence's pooled vector starts {{pooled}} and has norm {{pooled_norm}}.
Thanks to the mask, padding changes nothing: "{{short}}" encoded alone and next to our longer sentence differ by at most {{pad_diff}}.

## 8. L2 normalization

Finally the vector is scaled to length 1 (the model's `modules.json` ends in a `Normalize` module), so that the
dot product of two sentence vectors is their cosine similarity:

{{code_normalize}}

The sentence vector of "{{sentence}}" starts {{emb}} and has norm
{{emb_norm}}. `model.encode` gives the same vector (max difference {{encode_diff}}). Compared with other sentences:

```text
cosine {{sim1}}   "{{n1}}"
cosine {{sim2}}   "{{n2}}"
```

That is the whole model. The golden tests (`tests/test_golden.py`) check these same functions against
sentence-transformers itself on 370 texts.

**What `encode` runs.** These functions are written to be read. `model.encode` runs the same functions as written
for speed in `tinyminilm/fast.py` — one 2-D matrix product per linear layer, the softmax and GELU in place and in
cache-sized blocks, each residual add fused with its LayerNorm — and `tests/test_fast_paths.py` holds every one of
them to 1e-6 of its twin here. Batching (texts sorted by length, duplicates computed once, one batch per core)
lives in `tinyminilm/batching.py`.
"""

_PLACEHOLDER = re.compile(r"\{\{(\w+)\}\}")


def render(model: tinyminilm.SentenceEncoder) -> str:
    """The walkthrough Markdown for `model` (all-MiniLM-L6-v2)."""
    values = compute(model)
    missing = sorted({m.group(1) for m in _PLACEHOLDER.finditer(TEMPLATE)} - set(values))
    if missing:
        raise KeyError(f"TEMPLATE uses values that compute() does not make: {missing}")
    return _PLACEHOLDER.sub(lambda m: values[m.group(1)], TEMPLATE)


def render_explain_golden(model: tinyminilm.SentenceEncoder) -> str:
    """tests/golden/explain.txt: a header, then `tinyminilm explain` output for SENTENCE."""
    header = (f"# `tinyminilm explain` on the walkthrough sentence, written by scripts/make_walkthrough.py "
              f"(tinyminilm {tinyminilm.__version__}, numpy {np.__version__}); floats compared at 4 decimals\n")
    return header + explain.format_explanation(explain.explain_text(model, SENTENCE))


def strip_header(text: str) -> str:
    """The golden text without its '# ' header lines."""
    return "".join(line for line in text.splitlines(keepends=True) if not line.startswith("# "))


def outputs(model: tinyminilm.SentenceEncoder) -> dict[Path, str]:
    """Every file this script writes, with its content."""
    return {DOC: render(model), GOLDEN_EXPLAIN: render_explain_golden(model),
            PICTURE: explain.render_svg(explain.explain_text(model, SENTENCE))}


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--model", default=None, help="model folder (default: the pinned all-MiniLM-L6-v2)")
    ap.add_argument("--check", action="store_true", help="write nothing; exit 1 if a file is out of date")
    args = ap.parse_args(argv)
    model = tinyminilm.load(args.model)
    stale = []
    for path, text in outputs(model).items():
        old = path.read_text(encoding="utf-8") if path.exists() else ""
        current = same_at_rounding(strip_header(old), strip_header(text)) if path != PICTURE else old == text
        if args.check:
            if not current and path != PICTURE:  # the picture is regenerated, not checked (2-decimal opacities)
                stale.append(path)
                print(f"{path.relative_to(ROOT)}: out of date\n{diff_hint(old, text, path.name)}")
            continue
        if current and path != PICTURE:
            print(f"{path.relative_to(ROOT)}: up to date (at 4-decimal rounding), left as is")
            continue
        path.parent.mkdir(parents=True, exist_ok=True)
        explain.write_svg(path, text)  # an atomic write (temporary file + rename); works for any text
        print(f"wrote {path.relative_to(ROOT)} ({len(text):,} characters)")
    if stale:
        print(f"{len(stale)} file(s) out of date: {REGENERATE}")
        return 1
    return 0


if __name__ == "__main__":
    sys.exit(main())
