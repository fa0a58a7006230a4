"""Hostile text: every str gives a finite unit vector, non-text is refused by index, and the embedding of a text
does not depend on its batch. Long texts are cut before tokenizing, and the cut is proven not to change the ids."""

from __future__ import annotations

import tracemalloc

import numpy as np
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from tinyminilm import tokenization as T

HOSTILE = {
    "empty": "",
    "spaces": "   ",
    "whitespace mix": " \t\n\r\x0b\x0c\u00a0\u2003\u3000",
    "control": "\x01\x02\x07\x1b[31m red \x1b[0m\x7f\x9f",
    "nul": "\x00",
    "nul inside": "before\x00after",
    "only zero-width": "\u200b\u200c\u200d\u2060\ufeff",
    "zero-width inside": "zero\u200bwidth\u200djoin",
    "combining marks": "e\u0301\u0302\u0303\u0304\u0305\u0306\u0307\u0308" * 5,
    "only combining": "\u0301\u0302\u0303",
    "zalgo": "h\u0335\u031b\u0321e\u0336\u0322l\u0337\u0323l\u0338o\u0334",
    "rtl": "\u0645\u0631\u062d\u0628\u0627 \u0628\u0627\u0644\u0639\u0627\u0644\u0645 \u05e9\u05dc\u05d5\u05dd",
    "bidi controls": "\u202eevil\u202c \u2066isolate\u2069 \u200f",
    "emoji zwj": "\U0001f469\u200d\U0001f469\u200d\U0001f467\u200d\U0001f466 \U0001f3f3\ufe0f\u200d\U0001f308",
    "flags and skin": "\U0001f1fa\U0001f1f3\U0001f44d\U0001f3fd",
    "cjk": "\u4eca\u65e5\u306f\u3044\u3044\u5929\u6c14\uc548\ub155\ud558\uc138\uc694",
    "replacement char": "\ufffd\ufffd",
    "private use": "\ue000\U000f0000",
    "unassigned": "\U000e0080\U0010fffd",
    "noncharacters": "\uffff\ufffe",
    "one long word": "supercalifragilistic" * 20,
    "special tokens as text": "[CLS] [SEP] [MASK] [PAD] [UNK]",
}


def finite_unit(v: np.ndarray) -> bool:
    return bool(np.isfinite(v).all()) and np.allclose(np.linalg.norm(v, axis=-1), 1.0, atol=1e-5)


def test_hostile_texts_give_finite_unit_vectors(model):
    emb = model.encode(list(HOSTILE.values()))
    assert emb.shape == (len(HOSTILE), 384) and emb.dtype == np.float32
    for name, v in zip(HOSTILE, emb):
        assert finite_unit(v), name


@pytest.mark.parametrize("bad,type_name", [(None, "NoneType"), (b"bytes", "bytes"), (3, "int"), (2.5, "float"),
                                           (["nested"], "list"), (np.str_("x").encode(), "bytes")])
def test_non_text_items_raise_type_error_by_index(model, bad, type_name):
    with pytest.raises(TypeError) as e:
        model.encode(["fine", "also fine", bad])
    assert f"texts[2] is {type_name}, expected str" in str(e.value)
    if isinstance(bad, bytes):
        assert "decode" in str(e.value)


def test_non_text_argument(model):
    with pytest.raises(TypeError, match="bytes"):
        model.encode(b"a byte string")
    with pytest.raises(TypeError, match="NoneType"):
        model.encode(None)


@pytest.mark.parametrize("text,where", [("\ud800", 0), ("abc\udfff", 3), ("ok \ud83d alone", 3)])
def test_lone_surrogate_is_a_value_error_naming_index_and_position(model, text, where):
    """Decision: refuse rather than guess. A lone surrogate cannot be UTF-8; replacing it would embed other text."""
    with pytest.raises(ValueError) as e:
        model.encode(["fine", text])
    msg = str(e.value)
    assert "texts[1]" in msg and "lone surrogate" in msg and f"at character {where}" in msg


def test_lone_surrogate_far_past_the_cut_is_still_refused(model):
    """The verdict is about the text, not about the part of it that survives truncation."""
    with pytest.raises(ValueError, match=r"texts\[0\].*at character 1000000"):
        model.token_ids(["word " * 200_000 + "\ud800"])


def test_surrogate_pairs_written_as_one_character_are_fine(model):
    assert finite_unit(model.encode(["\U0001f600 is \ud83d\ude00".encode("utf-16", "surrogatepass")
                                     .decode("utf-16")]))


# ------------------------------------------------------------------------------------------------------------
# Very long texts: cut before tokenizing, with the same ids as the whole text
# ------------------------------------------------------------------------------------------------------------

TEN_MB = {  # built when used: together they are 50 MB
    "words": lambda: "hello world " * (10_000_000 // 12),
    "no whitespace": lambda: "a" * 10_000_000,
    "cjk": lambda: "\u4e2d" * 3_400_000,  # 10 MB of UTF-8
    "a whitespace run": lambda: "a" + " " * 10_000_000 + "b",
    "punctuation only": lambda: ".,;!?" * 2_000_000,
}


class Spy:
    """A tokenizer stand-in that records how long each text it is given is."""

    def __init__(self, tok):
        self.tok, self.lengths = tok, []

    def encode(self, text, **kw):
        self.lengths.append(len(text))
        return self.tok.encode(text, **kw)

    def to_str(self):
        return self.tok.to_str()


@pytest.mark.parametrize("name", list(TEN_MB))
def test_ten_megabytes_are_cut_before_tokenizing(model, monkeypatch, name):
    text = TEN_MB[name]()
    spy = Spy(model.tokenizer.backend)
    monkeypatch.setattr(model.tokenizer, "backend", spy)
    tracemalloc.start()
    try:
        ids = model.token_ids([text])[0]
        peak = tracemalloc.get_traced_memory()[1]
    finally:
        tracemalloc.stop()
    assert max(spy.lengths) <= 100_000, spy.lengths  # the tokenizer never sees more than 1% of the text
    assert peak <= 12_000_000, peak  # Python-side memory stays within about one copy of the input
    assert len(ids) <= model.max_seq_length and ids[0] == 101 and ids[-1] == 102
    v = model.encode([text])
    assert finite_unit(v)


def test_long_texts_give_the_ids_of_the_whole_text(model):
    """The cut against the tokenizer run on the whole text, at the real limit (200 kB: whole texts are slow)."""
    tok = model.tokenizer.backend
    for name in ("words", "a whitespace run", "cjk", "punctuation only"):
        text = TEN_MB[name]()[:200_000] + " end"
        assert model.token_ids([text])[0] == tok.encode(text).ids, name
    text = "x " + "a" * 300_000  # a word far longer than WordPiece's 100 characters: one [UNK]
    assert model.token_ids([text])[0] == tok.encode(text).ids == [101, 1060, 100, 102]


@pytest.fixture(scope="module")
def short_tokenizer(model_dir):
    """The real tokenizer, truncating at 16 tokens, so that tiny texts are already 'long'."""
    return T.Tokenizer(model_dir / "tokenizer.json", 16, lowercase=True, pad_token_id=0).backend


@pytest.fixture(scope="module")
def plan(short_tokenizer):
    return T._cut_plan(short_tokenizer)


def cut_ids(tok, plan, text, monkeypatch, chars_per_token=2):
    monkeypatch.setattr(T, "_PRECUT_CHARS_PER_TOKEN", chars_per_token)
    return T._encode_ids(tok, text, 16, plan)


EDGE_CASES = {
    "words": "word " * 50,
    "no whitespace, letters": "a" * 500,
    "no whitespace, letters then tail": "x " * 10 + "a" * 500,
    "word of 100": "x " * 20 + "a" * 100,
    "word of 101": "x " * 20 + "a" * 101,
    "word of 102": "x " * 20 + "a" * 102,
    "accent then a long word": "x " * 20 + "\u00e9" + "a" * 300,
    "mark then a long word": "x " * 20 + "\u0301" + "a" * 300,
    "control then a long word": "x " * 20 + "\x00" + "a" * 300,
    "no whitespace, punctuation": "abc" * 100 + "!" + "def" * 50,
    "no whitespace, dense punctuation": "a,b;c" * 100,
    "long whitespace run": "x" + " " * 1000 + "y " * 40,
    "mixed whitespace runs": ("a \t\n\r  \n" * 30) + "end",
    "whitespace then the only words": " " * 5000 + "late words " * 20,
    "final sigma next to a dot": "\u0391\u03a3.\u0392 " * 40,
    "special tokens": "[MASK]" * 40,
    "special tokens in words": "a[MASK]b[SEP]" * 30,
    "broken special tokens": "[MASK [MAS K] ]" * 30,
    "combining marks at boundaries": "e\u0301\u0327 !\u0301\u0308" * 40,
    "marks before punctuation": "a\u0327\u0301\u0300." * 60,
    "cjk": "\u4e2d\u6587\u5b57" * 100,
    "cjk in words": "\u4e2da\u6587b" * 100,
    "emoji zwj": "\U0001f469\u200d\U0001f469\u200d\U0001f467 " * 30,
    "emoji, no boundary": "\U0001f600" * 300,
    "zero-width flood": "\u200b" * 300 + " word" * 30,
    "numbers": "1234567890" * 50 + ".5",
    "greek varia": "a\u1fefb" * 100,  # NFD turns U+1FEF into '`': a split the raw text does not show
    "greek question mark": "a\u037eb" * 100,  # NFD: ';'
    "next line": "x\x85y" * 100,  # U+0085 is removed by the normalizer: not a split
    "ideographic space": "a\u3000b" * 100,
}


@pytest.mark.parametrize("name", list(EDGE_CASES))
def test_cut_ids_equal_whole_text_ids(short_tokenizer, plan, monkeypatch, name):
    text = EDGE_CASES[name]
    assert cut_ids(short_tokenizer, plan, text, monkeypatch) == short_tokenizer.encode(text).ids


# No character the cut trusts: these are tokenized whole (still exact, only slower when huge).
TOKENIZED_WHOLE = {"special tokens", "special tokens in words", "emoji, no boundary", "greek varia",
                   "greek question mark", "next line"}


def test_the_edge_cases_are_actually_cut(plan):
    """Otherwise the test above would prove nothing: every other case goes down a cutting branch."""
    assert plan is not None
    whole = {n for n, t in EDGE_CASES.items() if T._precut(t, 32, plan)[0] == t}
    assert whole == TOKENIZED_WHOLE


PIECES = ["word", "Word", "a" * 120, "z" * 101, " ", "  ", "\t", "\n", "\r\n", " " * 40, ".", ",", "!", "'", "-",
          "[", "]", "[MASK]", "[SEP]", "[CLS", "\u0301", "\u0327", "\u00e9", "\u03a3", "\u0130", "\u4e2d", "\u6587",
          "\u3000", "\u00a0", "\u200b", "\u200d", "\x00", "\x85", "\x1b", "\u1fef", "\u037e", "\U0001f469",
          "\U0001f600\u200d\U0001f4bb", "\ufe0f", "\u0645\u0631", "12", "\ufffd"]


@settings(max_examples=300, deadline=None)
@given(parts=st.lists(st.one_of(st.sampled_from(PIECES), st.text(max_size=6)), max_size=60),
       chars_per_token=st.integers(1, 3))
def test_property_cut_ids_equal_whole_text_ids(short_tokenizer, plan, parts, chars_per_token):
    text = "".join(parts)
    with pytest.MonkeyPatch.context() as mp:
        assert cut_ids(short_tokenizer, plan, text, mp, chars_per_token) == short_tokenizer.encode(text).ids


def test_unknown_tokenizer_pipelines_are_not_cut():
    from tokenizers import Tokenizer, models, pre_tokenizers

    tok = Tokenizer(models.WordLevel({"a": 0, "[UNK]": 1}, unk_token="[UNK]"))
    tok.pre_tokenizer = pre_tokenizers.Whitespace()
    assert T._cut_plan(tok) is None
    text = "a " * 10_000
    assert T._precut(text, 10, None) == (text, None)


# ------------------------------------------------------------------------------------------------------------
# Properties over arbitrary unicode, on the real model
# ------------------------------------------------------------------------------------------------------------

# Each example runs the real model, so texts are short and examples few; hypothesis varies them run to run.
TEXTS = st.lists(st.text(max_size=20), min_size=1, max_size=4)
PROPERTY = settings(max_examples=25, deadline=None, suppress_health_check=[HealthCheck.too_slow])


@PROPERTY
@given(texts=TEXTS)
def test_property_finite_and_unit_norm(model, texts):
    emb = model.encode(texts)
    assert emb.shape == (len(texts), 384) and finite_unit(emb)


@PROPERTY
@given(texts=TEXTS, batch_size=st.integers(1, 8))
def test_property_a_text_does_not_depend_on_its_batch(model, texts, batch_size):
    """Each text alone vs in a batch of any size with any neighbours (sentence-transformers #1356, #3197)."""
    together = model.encode(texts, batch_size=batch_size)
    alone = np.stack([model.encode(t) for t in texts])
    assert np.abs(together - alone).max() <= 1e-6


@PROPERTY
@given(texts=TEXTS, data=st.data())
def test_property_order_invariance(model, texts, data):
    perm = data.draw(st.permutations(range(len(texts))))
    emb = model.encode(texts)
    shuffled = model.encode([texts[i] for i in perm])
    assert np.abs(shuffled - emb[list(perm)]).max() <= 1e-6


@PROPERTY
@given(texts=TEXTS, data=st.data())
def test_property_a_row_of_forward_does_not_depend_on_its_batch(model, texts, data):
    """Through forward, which computes every row (encode computes duplicates once, so it cannot show this): each
    text beside copies of itself, other texts and a longer one that pads it, in any order, gives its vector alone
    within 1e-6 — the padding mask and each row's independence at work."""
    picks = data.draw(st.lists(st.integers(0, len(texts) - 1), min_size=1, max_size=4))
    longer = " ".join(data.draw(st.lists(st.sampled_from(["word", "cat", "x", "über", "漢"]), min_size=25,
                                         max_size=40)))  # more tokens than any of texts: every one is padded
    batch = data.draw(st.permutations(texts + [texts[i] for i in picks] + [longer]))
    features = model.tokenize(batch)
    assert (features["attention_mask"] == 0).any()
    together = model.forward(features)
    alone = {text: model.forward(model.tokenize([text]))[0] for text in set(batch)}  # no padding, no neighbour
    for text, row in zip(batch, together):
        assert np.abs(row - alone[text]).max() <= 1e-6, text
