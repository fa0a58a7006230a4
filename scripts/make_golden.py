"""Write the golden reference outputs under tests/golden/ with sentence-transformers and transformers themselves.

Run it in an environment with the `reference` extra (torch CPU, sentence-transformers, transformers):

    python -m venv /tmp/ref && /tmp/ref/bin/pip install -e '.[reference]'
    /tmp/ref/bin/python scripts/make_golden.py

It writes
  tests/golden/minilm.npz    all-MiniLM-L6-v2 on tests/golden/texts.json: token ids, sentence embeddings
                             (SentenceTransformer.encode, batch 32), per-layer hidden states for a few texts
  tests/golden/tiny.npz      the tiny random BERT of tests/tiny_bert.py: transformers' BertModel hidden states on a
                             random padded batch, and SentenceTransformer.encode with mean and CLS pooling
  tests/golden/versions.json the library versions that made them
The tests never need torch: they read these files. Rerun this script when the texts or the tiny model change.
"""

from __future__ import annotations

import json
import platform
import sys
import tempfile
from pathlib import Path

import numpy as np

ROOT = Path(__file__).resolve().parent.parent
GOLDEN = ROOT / "tests" / "golden"
sys.path[:0] = [str(ROOT), str(ROOT / "tests")]

# Texts of tests/golden/texts.json whose per-layer hidden states are recorded (kept short: the file stays small).
HIDDEN_STATE_CATEGORIES = ("query", "sentence", "accents", "cjk", "emoji", "edge")


def ragged(id_lists: list[list[int]]) -> tuple[np.ndarray, np.ndarray]:
    """Flatten id lists into (flat ids, offsets) so that ids of text i are flat[offsets[i]:offsets[i + 1]]."""
    offsets = np.cumsum([0] + [len(x) for x in id_lists]).astype(np.int64)
    flat = np.array([i for x in id_lists for i in x], dtype=np.int32)
    return flat, offsets


def st_token_ids(model, texts: list[str]) -> list[list[int]]:
    """Token ids as sentence-transformers computes them, one text at a time (so no padding)."""
    out = []
    for t in texts:
        f = model.tokenize([t])
        n = int(f["attention_mask"][0].sum())
        out.append(f["input_ids"][0, :n].tolist())
    return out


def golden_minilm() -> dict[str, np.ndarray]:
    import torch
    from sentence_transformers import SentenceTransformer

    import tinyminilm.hub

    folder = tinyminilm.hub.ensure_model()  # the same verified files the tests load
    texts = [t["text"] for t in json.loads((GOLDEN / "texts.json").read_text(encoding="utf-8"))]
    st = SentenceTransformer(str(folder), device="cpu")
    assert st.max_seq_length == 256, st.max_seq_length
    ids = st_token_ids(st, texts)
    emb = st.encode(texts, batch_size=32, convert_to_numpy=True).astype(np.float32)
    flat, offsets = ragged(ids)
    out = {"embeddings": emb, "ids_flat": flat, "ids_offsets": offsets}

    # Per-layer hidden states: the first text of each chosen category, run alone through the transformer.
    cats = [t["category"] for t in json.loads((GOLDEN / "texts.json").read_text(encoding="utf-8"))]
    chosen = [cats.index(c) for c in HIDDEN_STATE_CATEGORIES if c in cats]
    bert = st[0].auto_model.eval()
    out["hidden_index"] = np.array(chosen, dtype=np.int64)
    for i in chosen:
        with torch.no_grad():
            x = torch.tensor([ids[i]])
            hs = bert(input_ids=x, attention_mask=torch.ones_like(x), output_hidden_states=True).hidden_states
        out[f"hidden_{i}"] = torch.stack(hs)[:, 0].numpy().astype(np.float32)  # [1 + layers, n_tokens, H]
    return out


def golden_tiny() -> dict[str, np.ndarray]:
    import torch
    from sentence_transformers import SentenceTransformer
    from transformers import BertModel

    import tiny_bert

    out: dict[str, np.ndarray] = {}
    with tempfile.TemporaryDirectory() as tmp:
        bert_dir = tiny_bert.make_folder(Path(tmp) / "bert", "pooling_mode_mean_tokens", True)
        model = BertModel.from_pretrained(str(bert_dir)).eval()
        ids, types, mask = tiny_bert.random_batch()
        with torch.no_grad():
            hs = model(input_ids=torch.from_numpy(ids), token_type_ids=torch.from_numpy(types),
                       attention_mask=torch.from_numpy(mask), output_hidden_states=True).hidden_states
        out["bert_hidden_states"] = torch.stack(hs).numpy().astype(np.float32)  # [1 + layers, B, L, H]

        for name, flag, normalize in tiny_bert.VARIANTS:
            folder = tiny_bert.make_folder(Path(tmp) / name, flag, normalize)
            st = SentenceTransformer(str(folder), device="cpu")
            assert st.max_seq_length == tiny_bert.MAX_SEQ_LENGTH, st.max_seq_length
            flat, offsets = ragged(st_token_ids(st, tiny_bert.TEXTS))
            out[f"{name}_ids_flat"], out[f"{name}_ids_offsets"] = flat, offsets
            out[f"{name}_embeddings"] = st.encode(tiny_bert.TEXTS, batch_size=4, convert_to_numpy=True)
    return out


def versions() -> dict[str, str]:
    import sentence_transformers
    import tokenizers
    import torch
    import transformers

    return {"sentence_transformers": sentence_transformers.__version__, "transformers": transformers.__version__,
            "torch": torch.__version__, "tokenizers": tokenizers.__version__, "numpy": np.__version__,
            "python": platform.python_version(), "machine": platform.machine(),
            "model": "sentence-transformers/all-MiniLM-L6-v2@c9745ed1d9f207416be6d2e6f8de32d1f16199bf",
            "made_by": "scripts/make_golden.py"}


def main() -> None:
    import argparse

    import torch

    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--tiny-only", action="store_true",
                    help="rewrite tests/golden/tiny.npz only (the library versions must equal versions.json's)")
    args = ap.parse_args()
    torch.manual_seed(0)
    written = ["tiny.npz"]
    if args.tiny_only:
        recorded = json.loads((GOLDEN / "versions.json").read_text())
        now = versions()
        differ = {k: (recorded.get(k), v) for k, v in now.items() if recorded.get(k) != v}
        if differ:
            raise SystemExit(f"--tiny-only needs the versions that made the other golden files; these differ: {differ}")
    else:
        np.savez_compressed(GOLDEN / "minilm.npz", **golden_minilm())
        (GOLDEN / "versions.json").write_text(json.dumps(versions(), indent=1) + "\n")
        written += ["minilm.npz", "versions.json"]
    np.savez_compressed(GOLDEN / "tiny.npz", **golden_tiny())
    for f in written:
        print(f"wrote {GOLDEN / f} ({(GOLDEN / f).stat().st_size:,} bytes)")


if __name__ == "__main__":
    main()
