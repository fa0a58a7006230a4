"""Look inside the model for one text: its tokens, every layer's hidden states, and where each head attends.

    exp = explain_text(model, "The quick brown fox jumps over the lazy dog.")
    print(format_explanation(exp))           # tokens and ids, shapes, hidden-state norms, top token per head
    write_svg("attention.svg", render_svg(exp))   # a layers × heads grid of attention heatmaps

This backs `tinyminilm explain TEXT [--svg FILE]`. The functions return data and strings; only the CLI prints.
The SVG is written by hand (no plotting dependency): one <rect class="cell"> per (layer, head, query, key).
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING
from xml.sax.saxutils import escape

import numpy as np

from .errors import ArgumentError, ArgumentTypeError, check_int

if TYPE_CHECKING:
    from .encoder import SentenceEncoder

SVG_MAX_TOKENS = 32  # beyond this the picture shows the first tokens only: 6·12·32² = 73,728 cells, ~5 MB


@dataclass(frozen=True)
class Explanation:
    """What the model computes for one text (a batch of one, so no padding anywhere).

    tokens, ids: the L WordPiece tokens the model sees, [CLS] … [SEP], after truncation at max_seq_length.
    n_tokens_untruncated: how many tokens the text has without truncation (== L unless it was cut).
    hidden_states: 1 + n_layers float32 arrays [L, H], after the embeddings and after each encoder layer.
    attentions: n_layers float32 arrays [n_head, L, L]; attentions[l][h, i, j] is how much query token i
        takes from key token j in head h of layer l + 1 (each row sums to 1).
    pooled: float32 [H], the pooled vector before normalization; embedding: float32 [H], the sentence vector.
    """

    text: str
    tokens: list[str]
    ids: list[int]
    n_tokens_untruncated: int
    max_seq_length: int
    pooling_mode: str
    hidden_states: list[np.ndarray]
    attentions: list[np.ndarray]
    pooled: np.ndarray
    embedding: np.ndarray

    @property
    def n_layers(self) -> int:
        """Number of encoder layers."""
        return len(self.attentions)

    @property
    def n_heads(self) -> int:
        """Attention heads per layer."""
        return int(self.attentions[0].shape[0]) if self.attentions else 0


def explain_text(model: SentenceEncoder, text: str) -> Explanation:
    """Run `model` on one text and keep everything a learner may want to look at (see `Explanation`).

    Only the encoder's public API: tokenize, then forward for the hidden states (and attention weights) and the
    pooled vector of a batch of one, and finish for the sentence vector.
    """
    if not isinstance(text, str):
        raise ArgumentTypeError(f"text is {type(text).__name__}, expected str")
    features = model.tokenize([text])  # int64 [1, L] each: a batch of one, so no padding
    ids = features["input_ids"][0].tolist()
    attentions: list[np.ndarray] = []  # filled by the model: per layer [1, n_head, L, L]
    hidden = model.forward(features, "hidden_states", attentions=attentions)  # 1 + n_layers × [1, L, H]
    pooled = model.forward(features, "pooled")  # [1, H]: the Pooling module's vector
    # [1, H]: the sentence vector, after the model's Normalize if it has one (finish normalizes as that module does)
    embedding = model.finish(pooled, normalize_embeddings=model.describe()["normalize"])
    return Explanation(
        text=text,
        tokens=model.convert_ids_to_tokens(ids),
        ids=ids,
        n_tokens_untruncated=model.untruncated_length(text),
        max_seq_length=model.max_seq_length,
        pooling_mode=model.pooling_mode,
        hidden_states=[h[0] for h in hidden],
        attentions=[a[0] for a in attentions],
        pooled=pooled[0],
        embedding=embedding[0],
    )


def top_attended(exp: Explanation, ignore: tuple[int, ...] = ()) -> list[list[tuple[int, float]]]:
    """For each layer and head, the key token that receives the most attention, averaged over all query tokens.

    ignore: key positions left out of the choice (e.g. (0, L - 1) for [CLS] and [SEP]); at least one must remain.
    Returns [n_layers][n_head] pairs (key position, mean weight in [0, 1]).
    """
    L = len(exp.tokens)
    keep = np.array([j not in ignore for j in range(L)])
    if not keep.any():
        raise ArgumentError(f"ignore={ignore!r} leaves no key token of the {L} to choose from")
    out = []
    for a in exp.attentions:  # [n_head, L, L]
        received = a.mean(axis=1)  # [n_head, L]: average over queries of the weight each key gets
        best = np.where(keep, received, -1.0).argmax(axis=1)  # [n_head]
        out.append([(int(j), float(received[h, j])) for h, j in enumerate(best)])
    return out


def _label(exp: Explanation, pos: int) -> str:
    return f"{exp.tokens[pos]}#{pos}"


def format_explanation(exp: Explanation) -> str:
    """The text report of `tinyminilm explain`: tokens and ids, shapes and norms per stage, top token per head.

    Every float is printed with 4 decimals, so the report is stable across BLAS builds up to the last digit.
    """
    L = len(exp.ids)
    lines = [f"text: {exp.text!r}"]
    cut = (f"; truncated from {exp.n_tokens_untruncated} tokens at max_seq_length {exp.max_seq_length}"
           if exp.n_tokens_untruncated > L else f"; max_seq_length {exp.max_seq_length}")
    lines += ["", f"tokens: {L} (WordPiece, [CLS] … [SEP]{cut})", "  pos  id      token"]
    lines += [f"  {i:>3}  {t_id:<6}  {tok}" for i, (t_id, tok) in enumerate(zip(exp.ids, exp.tokens))]

    lines += ["", "hidden states: shape and L2 norm of each token's vector",
              (f"  {'stage':<11} {'hidden':<14} {'attention':<18} {'mean norm':>9}  {'min norm (token)':<24}"
              f"{'max norm (token)'}")]
    for s, h in enumerate(exp.hidden_states):
        norms = np.sqrt((h.astype(np.float64) ** 2).sum(axis=-1))  # [L]
        lo, hi = int(norms.argmin()), int(norms.argmax())
        name = "embeddings" if s == 0 else f"layer {s}"
        att = _shape([1, *exp.attentions[s - 1].shape]) if s else "-"
        lines.append(f"  {name:<11} {_shape([1, *h.shape]):<14} {att:<18} {norms.mean():>9.4f}  "
                     f"{f'{norms[lo]:.4f} {_label(exp, lo)}':<24}{norms[hi]:.4f} {_label(exp, hi)}")
    pooled_norm = float(np.sqrt((exp.pooled.astype(np.float64) ** 2).sum()))
    emb_norm = float(np.sqrt((exp.embedding.astype(np.float64) ** 2).sum()))
    lines += ["", (f"sentence vector: {exp.pooling_mode} pooling of layer {exp.n_layers} over {L} tokens -> "
                  f"{_shape(list(exp.pooled.shape))}, norm {pooled_norm:.4f}; normalized: norm {emb_norm:.4f}"),
              "  first 8 values: " + " ".join(f"{v:.4f}" for v in exp.embedding[:8])]

    lines += ["", (f"most-attended token per head (the key with the largest attention weight, averaged over the "
                  f"{L} query tokens)")]
    lines += _top_table(exp, top_attended(exp))
    if L > 2:
        lines += ["", "the same, leaving out [CLS] and [SEP] (where many heads park attention they do not need)"]
        lines += _top_table(exp, top_attended(exp, ignore=(0, L - 1)))
    return "\n".join(lines) + "\n"


def _top_table(exp: Explanation, top: list[list[tuple[int, float]]]) -> list[str]:
    """Rows = heads, columns = layers, each cell "token#position weight"."""
    width = max(len(f"{_label(exp, j)} 0.0000") for layer in top for j, _ in layer) + 2
    lines = ["  head  " + "".join(f"{f'layer {i + 1}':<{width}}" for i in range(exp.n_layers)).rstrip()]
    for h in range(exp.n_heads):
        cells = "".join(f"{f'{_label(exp, top[i][h][0])} {top[i][h][1]:.4f}':<{width}}" for i in range(exp.n_layers))
        lines.append(f"  {h + 1:>4}  {cells}".rstrip())
    return lines


def _shape(shape: list[int]) -> str:
    return "[" + ", ".join(str(int(s)) for s in shape) + "]"


# --------------------------------------------------------------------------------------------------------------
# The picture
# --------------------------------------------------------------------------------------------------------------


def render_svg(exp: Explanation, max_tokens: int = SVG_MAX_TOKENS) -> str:
    """A standalone SVG of every head's attention: a grid of n_layers rows × n_head columns of L × L heatmaps.

    In each heatmap, row i is query token i (who looks), column j is key token j (looked at); the darker the
    cell, the larger the weight (linear, 0 = white, 1 = darkest). Query labels run down the left of each row,
    key labels along the bottom (every k-th token only when the cells are too small for every label). Texts
    longer than `max_tokens` tokens show their first `max_tokens` tokens only (the picture says so). Returns the SVG document as a str, with one <rect class="cell"> per
    (layer, head, query token, key token) shown.
    """
    check_int(max_tokens, "max_tokens")
    L_all = len(exp.tokens)
    n = min(L_all, int(max_tokens))  # tokens shown
    cell = max(3, min(12, 144 // max(n, 1)))  # px per cell: panels stay about 144 px wide
    stride = 1 if cell >= 8 else math.ceil(8 / cell)  # small cells: label every stride-th token, ≥ 8 px apart
    font = min(10.0, cell * stride - 1.5, 8.0 if stride > 1 else 10.0)
    labels = [_short(t) if i % stride == 0 else "" for i, t in enumerate(exp.tokens[:n])]
    label_w = int(max((len(t) for t in labels), default=1) * font * 0.62) + 8
    panel, gap = n * cell, 14
    left = 64 + label_w  # "layer N" header, then query labels
    top = 76
    grid_w = exp.n_heads * panel + (exp.n_heads - 1) * gap
    grid_h = exp.n_layers * panel + (exp.n_layers - 1) * gap
    width = left + grid_w + 24
    height = top + grid_h + label_w + 64

    title = f"Self-attention of every head on {exp.text!r}"
    if len(title) > 140:
        title = title[:137] + "…"
    note = ("rows: query token (who looks) · columns: key token (looked at) · darker = more attention, linear "
            "from 0 (white) to 1 · each row sums to 1")
    if stride > 1:
        note += f" · one token in {stride} labelled"
    if n < L_all:
        note += f" · showing the first {n} of {L_all} tokens (rows of this crop sum to ≤ 1)"
    out = [
        '<?xml version="1.0" encoding="UTF-8"?>',
        (f'<svg xmlns="http://www.w3.org/2000/svg" width="{width}" height="{height}" '
        f'viewBox="0 0 {width} {height}" font-family="Helvetica, Arial, sans-serif">'),
        ("<style>.cell{fill:#08306b;shape-rendering:crispEdges}.frame{fill:#fff;stroke:#bbb;stroke-width:.6}"
        "text{fill:#222}.tok{fill:#444}</style>"),
        f'<rect width="{width}" height="{height}" fill="#fff"/>',
        f'<text x="16" y="26" font-size="16" font-weight="bold">{escape(title)}</text>',
        f'<text x="16" y="46" font-size="11">{escape(note)}</text>',
    ]
    for h in range(exp.n_heads):
        x = left + h * (panel + gap)
        out.append(f'<text x="{x + panel / 2:g}" y="{top - 8}" font-size="11" text-anchor="middle">'
                   f'head {h + 1}</text>')
    for li, a in enumerate(exp.attentions):  # a: [n_head, L, L]
        y = top + li * (panel + gap)
        out.append(f'<text x="16" y="{y + panel / 2 + 4:g}" font-size="12" font-weight="bold">layer {li + 1}</text>')
        for i, t in enumerate(labels):  # query labels, left of the first panel
            if t:
                out.append(f'<text class="tok" x="{left - 4}" y="{y + (i + 0.5) * cell + font * 0.35:.1f}" '
                           f'font-size="{font:g}" text-anchor="end">{escape(t)}</text>')
        for h in range(exp.n_heads):
            x = left + h * (panel + gap)
            out.append(f'<g transform="translate({x},{y})"><title>layer {li + 1}, head {h + 1}</title>'
                       f'<rect class="frame" x="-0.5" y="-0.5" width="{panel + 1}" height="{panel + 1}"/>'
                       f'<g transform="scale({cell})" fill-opacity="0">')  # cells inherit 0 unless they say
            w = a[h, :n, :n]  # [n, n]
            for i in range(n):
                for j in range(n):
                    op = _opacity(w[i, j])
                    op = f' fill-opacity="{op}"' if op != "0" else ""  # most weights are ~0: keep the file small
                    out.append(f'<rect class="cell" x="{j}" y="{i}" width="1" height="1"{op}/>')
            out.append("</g></g>")
    y_keys = top + grid_h + 4
    for h in range(exp.n_heads):  # key labels, under the bottom row of panels, reading upward
        x = left + h * (panel + gap)
        for j, t in enumerate(labels):
            if not t:
                continue
            cx = x + (j + 0.5) * cell + font * 0.35
            out.append(f'<text class="tok" transform="translate({cx:.1f},{y_keys}) rotate(-90)" '
                       f'font-size="{font:g}" text-anchor="end">{escape(t)}</text>')
    # Legend: the colour scale.
    ly = height - 30
    out.append(f'<text x="16" y="{ly + 9}" font-size="11">attention weight</text>')
    for k in range(11):
        out.append(f'<rect class="cell" x="{120 + k * 18}" y="{ly}" width="18" height="12" '
                   f'fill-opacity="{k / 10:g}" stroke="#bbb" stroke-width=".4"/>'
                   .replace('class="cell"', 'class="legend" fill="#08306b"'))
    out.append(f'<text x="116" y="{ly + 24}" font-size="10">0</text>'
               f'<text x="{120 + 10 * 18 + 4}" y="{ly + 24}" font-size="10">1</text>')
    out.append("</svg>")
    return "\n".join(out) + "\n"


def _short(token: str, limit: int = 14) -> str:
    return token if len(token) <= limit else token[:limit - 1] + "…"


def _opacity(w: float) -> str:
    """A weight in [0, 1] as a short fill-opacity: 0.4213 -> ".42", 1.0 -> "1", 0.001 -> "0"."""
    s = f"{min(max(float(w), 0.0), 1.0):.2f}".rstrip("0").rstrip(".")
    if s.startswith("0."):
        s = s[1:]
    return s if s not in ("", "0") else "0"


def write_svg(path: str | Path, svg: str) -> Path:
    """Write `svg` to `path` atomically (a temporary file in the same folder, then a rename). Returns the path."""
    from .files import atomic_path

    path = Path(path)
    with atomic_path(path) as tmp:
        tmp.write_text(svg, encoding="utf-8", newline="\n")
    return path
