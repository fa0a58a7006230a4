"""Random cross-encoders of cross-encoder/ms-marco-MiniLM-L6-v2's shape, rebuilt from small files and a seed.

A variant folder is: the small JSON files of tests/fixtures/cross/<variant>/ (config.json and, where the variant
has them, sentence-transformers' own files), the real uncased tokenizer files of the pinned all-MiniLM-L6-v2 (the
`model_dir` fixture; never committed here), and model.safetensors made by tiny_bert.make_weights from SEED. So
scripts/make_golden_cross.py and the tests build identical models without sharing a weights file, and the golden
file tests/golden/cross.npz holds what sentence-transformers 6.2 computes with them.

Only numpy, tokenizers and safetensors are used here: the tests need no torch.
"""

from __future__ import annotations

import json
import shutil
from pathlib import Path

import numpy as np

import tiny_bert

FIXTURES = Path(__file__).parent / "fixtures" / "cross"
TOKENIZER_FILES = ("tokenizer.json", "vocab.txt", "tokenizer_config.json", "special_tokens_map.json")
SEED = 21

# variant -> (what it pins, the activation sentence-transformers 6.2 picks by default)
VARIANTS = {
    "st4-config": ("one label; config.json sentence_transformers.activation_fn = Identity, the layout "
                   "sentence-transformers 4-5 gave cross-encoder/ms-marco-MiniLM-L6-v2 (no modules.json)",
                   "torch.nn.modules.linear.Identity"),
    "legacy-key": ("one label; only config.json's older sbert_ce_default_activation_function = Identity",
                   "torch.nn.modules.linear.Identity"),
    "no-key": ("one label; neither key: sigmoid by default", "torch.nn.modules.activation.Sigmoid"),
    "three-labels": ("three labels, saved by sentence-transformers 6.2 (modules.json, "
                     "config_sentence_transformers.json activation_fn = Identity, tokenizer_config.json "
                     "model_max_length 48 from CrossEncoder(max_length=48))", "torch.nn.modules.linear.Identity"),
    "st6-saved": ("one label, saved by sentence-transformers 6.2 after loading st4-config with "
                  "activation_fn=Sigmoid: config_sentence_transformers.json's Sigmoid wins over config.json's "
                  "Identity; sentence_bert_config.json max_seq_length 64 added by hand",
                  "torch.nn.modules.activation.Sigmoid"),
}
ONE_LABEL = [v for v in VARIANTS if v != "three-labels"]

BERLIN = "How many people live in Berlin?"
POPULATION = "Berlin had a population of 3,520,031 registered inhabitants in an area of 891.82 square kilometers."
MUSEUMS = "Berlin is well known for its museums."
# ~300 and ~400 tokens: at max_length 512 (509 text tokens) a pair of them is cut on both sides
LONG_Q = " ".join(f"question {i} about the quick brown fox, the lazy dog and what they did;" for i in range(20))
LONG_D = " ".join(f"Paragraph {i}: the capital of Germany counts {3520031 + i} people, more than any other city."
                  for i in range(22))
# longer than 512 * 32 characters: tokenization pre-cuts them (tinyminilm.tokenization)
HUGE_Q = "how many people live in berlin, and why? " * 420
HUGE_D = "Berlin is the capital and largest city of Germany. " * 400

PAIRS = [
    (BERLIN, POPULATION),
    (BERLIN, MUSEUMS),
    ("what is the capital of france?", ""),  # an empty document
    ("", "Paris is the capital and most populous city of France."),  # an empty query
    ("Québec, São Paulo, Zürich — où est-ce?", "東京タワーの高さは何メートルですか。Ελληνικά и русский, emoji 🎉👩‍💻 a\u200bb\u0301c"),
    (LONG_Q, LONG_D),  # both cut; the first is the shorter
    (LONG_D, LONG_Q),  # both cut; the first is the longer (gets the odd token)
    (LONG_Q, LONG_Q),  # both cut, equally long
    ("a short query", LONG_D),  # only the document is cut
    (LONG_D, "a short document"),  # only the query is cut
    (HUGE_Q, HUGE_D),  # both pre-cut, then cut
    ("a short query", HUGE_D),  # the document pre-cut
    ("x" * 20000, "one word of 20,000 letters is one [UNK]"),
    (BERLIN, POPULATION),  # a duplicate: computed once, the same score
    ("  spaced\tout\n\nquery  ", "doc with    many     spaces" + " " * 17000 + "and a tail"),
]

RANK_QUERY = BERLIN
RANK_DOCS = [MUSEUMS, POPULATION, "", "Berlin, Germany's capital, dates to the 13th century.", LONG_D, POPULATION,
             "東京タワー", "the lazy dog", MUSEUMS]  # duplicates tie: the earlier corpus_id comes first

EXPLICIT_MAX_LENGTH = 40  # CrossEncoder(max_length=40): 37 text tokens, an odd number, on the no-key variant

# The activation passed to predict(activation_fn=...) per variant (a class path; tests map it to their callable).
SIGMOID, IDENTITY = "torch.nn.modules.activation.Sigmoid", "torch.nn.modules.linear.Identity"
OVERRIDES = {"st4-config": SIGMOID, "legacy-key": SIGMOID, "no-key": IDENTITY, "three-labels": SIGMOID,
             "st6-saved": "torch.nn.modules.activation.Tanh"}


def read_fixture_config(variant: str) -> dict:
    return json.loads((FIXTURES / variant / "config.json").read_text())


def num_labels(config: dict) -> int:
    return len(config["id2label"])


def make_weights_file(dest: Path, config: dict) -> Path:
    """model.safetensors of BertForSequenceClassification keys (bert.* + classifier.*) from SEED."""
    from safetensors.numpy import save_file

    weights = tiny_bert.make_weights(SEED, config=config, num_labels=num_labels(config), prefix="bert.")
    save_file(weights, str(dest), metadata={"format": "pt"})
    return dest


def make_folder(variant: str, tokenizer_dir: Path, dest: Path, weights_cache: dict | None = None) -> Path:
    """Build the variant's folder at `dest`: pinned tokenizer files, then the fixture's files (which may replace
    tokenizer_config.json), then the seeded weights. weights_cache (num_labels -> file) shares one weights file
    between variants of the same shape (by hard link, or by copy)."""
    dest = Path(dest)
    dest.mkdir(parents=True, exist_ok=True)
    for name in TOKENIZER_FILES:
        shutil.copyfile(Path(tokenizer_dir) / name, dest / name)
    for f in (FIXTURES / variant).iterdir():
        shutil.copyfile(f, dest / f.name)
    config = read_fixture_config(variant)
    key = num_labels(config)
    if weights_cache is not None and key in weights_cache:
        try:
            (dest / "model.safetensors").hardlink_to(weights_cache[key])
        except OSError:
            shutil.copyfile(weights_cache[key], dest / "model.safetensors")
    else:
        make_weights_file(dest / "model.safetensors", config)
        if weights_cache is not None:
            weights_cache[key] = dest / "model.safetensors"
    return dest


def ragged(rows: list[list[int]]) -> tuple[np.ndarray, np.ndarray]:
    """(flat, offsets) so that row i is flat[offsets[i]:offsets[i + 1]]."""
    offsets = np.cumsum([0] + [len(r) for r in rows]).astype(np.int64)
    return np.array([x for r in rows for x in r], dtype=np.int32), offsets


def unragged(flat: np.ndarray, offsets: np.ndarray) -> list[list[int]]:
    return [flat[offsets[i]:offsets[i + 1]].tolist() for i in range(len(offsets) - 1)]
