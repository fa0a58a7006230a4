"""all-MiniLM-L6-v2 against sentence-transformers' own outputs (tests/golden/, made by scripts/make_golden.py)."""

from __future__ import annotations

import numpy as np
import pytest

from conftest import golden_ids

EMBEDDING_TOL = 1e-6  # max abs difference per component; float32 rounding alone is ~1e-7
HIDDEN_TOL = 1e-4


def test_golden_covers_what_it_should(golden_texts, golden):
    cats = {t["category"] for t in golden_texts}
    assert len(golden_texts) >= 300
    assert {"query", "long", "punctuation", "accents", "cjk", "emoji", "whitespace", "edge"} <= cats
    assert "" in [t["text"] for t in golden_texts]
    lengths = np.diff(golden["ids_offsets"])
    assert lengths.max() == 256, "some texts must be truncated at max_seq_length"
    assert (lengths > 128).sum() >= 10, "texts between 128 and 256 tokens catch the shipped 128-token truncation"


def test_token_ids_match_sentence_transformers(model, golden_texts, golden):
    ids = model.token_ids([t["text"] for t in golden_texts])
    mismatched = [i for i in range(len(ids)) if ids[i] != golden_ids(golden, i)]
    assert not mismatched, f"token ids differ for texts {mismatched[:10]}: {golden_texts[mismatched[0]]['text']!r}"


def test_tokenize_pads_to_longest_not_128(model):
    batch = model.tokenize(["hi", "a somewhat longer sentence here"])
    assert batch["input_ids"].shape == batch["attention_mask"].shape == (2, 7)
    assert batch["attention_mask"].sum(axis=1).tolist() == [3, 7]
    assert batch["input_ids"][0, 3:].tolist() == [0, 0, 0, 0]


def test_embeddings_match_sentence_transformers(model, golden_texts, golden):
    emb = model.encode([t["text"] for t in golden_texts], batch_size=32)
    ref = golden["embeddings"]
    assert emb.dtype == np.float32 and emb.shape == ref.shape
    diff = np.abs(emb - ref).max(axis=1)
    worst = int(diff.argmax())
    print(f"max abs diff {diff.max():.3g} (text {worst}); first values {emb[worst, :4]} vs {ref[worst, :4]}")
    assert diff.max() <= EMBEDDING_TOL, (
        f"text {worst} ({golden_texts[worst]['category']}) differs by {diff[worst]:.3g}; "
        "if sentence-transformers changed on purpose, rerun scripts/make_golden.py")
    np.testing.assert_allclose(np.linalg.norm(emb, axis=1), 1.0, atol=1e-6)


@pytest.mark.parametrize("which", range(6))
def test_hidden_states_per_layer(model, golden_texts, golden, which):
    i = int(golden["hidden_index"][which])
    hs = np.stack(model.hidden_states(golden_texts[i]["text"]))
    ref = golden[f"hidden_{i}"]
    assert hs.shape == ref.shape  # [1 + layers, n_tokens, 384]
    per_layer = np.abs(hs - ref).max(axis=(1, 2))
    assert per_layer.max() <= HIDDEN_TOL, f"text {i}: max abs diff per layer {per_layer}"


def test_single_string_gives_a_vector(model, golden_texts, golden):
    i = [t["text"] for t in golden_texts].index("")
    v = model.encode("")  # the empty string is [CLS] [SEP]: a real vector, not zeros or NaN
    assert v.shape == (384,) and v.dtype == np.float32
    assert np.abs(v - golden["embeddings"][i]).max() <= EMBEDDING_TOL
