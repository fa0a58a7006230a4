"""A tiny random BERT sentence-transformers folder, made from a seed, for tests that need no download.

scripts/make_golden.py builds the same folders from the same seeds and records what Hugging Face transformers and
sentence-transformers compute with them (tests/golden/tiny.npz); tests rebuild them and compare. Only numpy,
tokenizers and safetensors are used here, so the test suite needs no torch.
"""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np

VOCAB = (["[PAD]", "[UNK]", "[CLS]", "[SEP]", "[MASK]"]
         + list("abcdefghijklmnopqrstuvwxyz")
         + ["the", "cat", "dog", "sat", "on", "mat", "a", "quick", "brown", "fox", "jumps", "over", "lazy", "hello",
            "world", "sentence", "vector", "##s", "##ing", "##ed", "##ly", ".", ",", "!", "?"])

CONFIG = {
    "architectures": ["BertModel"], "model_type": "bert", "hidden_act": "gelu",
    "vocab_size": len(VOCAB), "hidden_size": 32, "num_hidden_layers": 2, "num_attention_heads": 4,
    "intermediate_size": 37, "max_position_embeddings": 64, "type_vocab_size": 2, "layer_norm_eps": 1e-12,
    "pad_token_id": 0, "position_embedding_type": "absolute",
    "attention_probs_dropout_prob": 0.0, "hidden_dropout_prob": 0.0, "initializer_range": 0.02,
}
MAX_SEQ_LENGTH = 16  # small, so that truncation is exercised

TEXTS = [
    "the cat sat on the mat.",
    "a quick brown fox jumps over the lazy dog!",
    "hello world",
    "Hello, World?",
    "the dogs jumped quickly",
    "sentence vectors",
    "",
    "unknown words like zebra become pieces",
    "the cat the cat the cat the cat the cat the cat the cat",  # longer than MAX_SEQ_LENGTH tokens
    "fox",
]

# (folder name, pooling flag in 1_Pooling/config.json, has a Normalize module)
# Every pooling mode config.py accepts, each checked against sentence-transformers (tests/golden/tiny.npz).
VARIANTS = [("tiny-mean", "pooling_mode_mean_tokens", True), ("tiny-cls", "pooling_mode_cls_token", False),
            ("tiny-max", "pooling_mode_max_tokens", True),
            ("tiny-mean-sqrt", "pooling_mode_mean_sqrt_len_tokens", False)]


def make_weights(seed: int = 0, config: dict | None = None, num_labels: int | None = None,
                 prefix: str = "") -> dict[str, np.ndarray]:
    """Random checkpoint tensors under transformers' BertModel key names (pooler and position_ids included).

    config: a config.json dict of any BERT shape (default: the tiny CONFIG). num_labels: also a classifier head
    [num_labels, H] as BertForSequenceClassification has (keys `classifier.*`); its BERT keys then take
    prefix="bert." as that class saves them. The same seed and config give the same tensors on every machine
    (NumPy's PCG64), so a golden script and the tests build identical models without sharing a file.
    """
    config = CONFIG if config is None else config
    rng = np.random.default_rng(seed)
    H, I, V, P, T = (config[k] for k in ("hidden_size", "intermediate_size", "vocab_size",
                                           "max_position_embeddings", "type_vocab_size"))

    def w(*shape: int, scale: float = 0.2) -> np.ndarray:
        return (rng.standard_normal(shape) * scale).astype(np.float32)

    t = {
        "embeddings.word_embeddings.weight": w(V, H, scale=1.0),
        "embeddings.position_embeddings.weight": w(P, H, scale=0.5),
        "embeddings.token_type_embeddings.weight": w(T, H, scale=0.5),
        "embeddings.LayerNorm.weight": 1 + w(H, scale=0.1),
        "embeddings.LayerNorm.bias": w(H, scale=0.1),
        "embeddings.position_ids": np.arange(P, dtype=np.int64)[None],
        "pooler.dense.weight": w(H, H),
        "pooler.dense.bias": w(H),
    }
    for i in range(config["num_hidden_layers"]):
        p = f"encoder.layer.{i}."
        for name, (n_out, n_in) in {"attention.self.query": (H, H), "attention.self.key": (H, H),
                                    "attention.self.value": (H, H), "attention.output.dense": (H, H),
                                    "intermediate.dense": (I, H), "output.dense": (H, I)}.items():
            t[p + name + ".weight"] = w(n_out, n_in, scale=n_in ** -0.5)
            t[p + name + ".bias"] = w(n_out, scale=0.1)
        for ln in ("attention.output.LayerNorm", "output.LayerNorm"):
            t[p + ln + ".weight"] = 1 + w(H, scale=0.1)
            t[p + ln + ".bias"] = w(H, scale=0.1)
    t = {prefix + k: v for k, v in t.items()}
    if num_labels is not None:
        t["classifier.weight"] = w(num_labels, H, scale=H ** -0.5)
        t["classifier.bias"] = w(num_labels, scale=0.1)
    return t


def make_tokenizer():
    """A WordPiece tokenizer over VOCAB with BERT's normalizer, pre-tokenizer and [CLS] … [SEP] template."""
    from tokenizers import Tokenizer, decoders, normalizers, pre_tokenizers, processors
    from tokenizers.models import WordPiece

    tok = Tokenizer(WordPiece({t: i for i, t in enumerate(VOCAB)}, unk_token="[UNK]", max_input_chars_per_word=100))
    tok.normalizer = normalizers.BertNormalizer(clean_text=True, handle_chinese_chars=True, strip_accents=None,
                                                lowercase=True)
    tok.pre_tokenizer = pre_tokenizers.BertPreTokenizer()
    tok.post_processor = processors.TemplateProcessing(
        single="[CLS] $A [SEP]", pair="[CLS] $A [SEP] $B:1 [SEP]:1",
        special_tokens=[("[CLS]", VOCAB.index("[CLS]")), ("[SEP]", VOCAB.index("[SEP]"))])
    tok.decoder = decoders.WordPiece()
    return tok


def make_folder(folder: Path, pooling_flag: str, normalize: bool, seed: int = 0) -> Path:
    """Write a complete sentence-transformers model folder for the tiny BERT."""
    from safetensors.numpy import save_file

    folder = Path(folder)
    (folder / "1_Pooling").mkdir(parents=True, exist_ok=True)
    (folder / "config.json").write_text(json.dumps(CONFIG, indent=1))
    (folder / "sentence_bert_config.json").write_text(json.dumps({"max_seq_length": MAX_SEQ_LENGTH,
                                                                  "do_lower_case": False}))
    modules = [{"idx": 0, "name": "0", "path": "", "type": "sentence_transformers.models.Transformer"},
               {"idx": 1, "name": "1", "path": "1_Pooling", "type": "sentence_transformers.models.Pooling"}]
    if normalize:
        modules.append({"idx": 2, "name": "2", "path": "2_Normalize", "type": "sentence_transformers.models.Normalize"})
    (folder / "modules.json").write_text(json.dumps(modules, indent=1))
    pooling = {"word_embedding_dimension": CONFIG["hidden_size"], "pooling_mode_cls_token": False,
               "pooling_mode_mean_tokens": False, "pooling_mode_max_tokens": False,
               "pooling_mode_mean_sqrt_len_tokens": False}
    pooling[pooling_flag] = True
    (folder / "1_Pooling" / "config.json").write_text(json.dumps(pooling, indent=1))
    make_tokenizer().save(str(folder / "tokenizer.json"))
    (folder / "vocab.txt").write_text("\n".join(VOCAB) + "\n")
    (folder / "tokenizer_config.json").write_text(json.dumps({
        "tokenizer_class": "BertTokenizerFast", "do_lower_case": True, "model_max_length": CONFIG["max_position_embeddings"],
        "unk_token": "[UNK]", "sep_token": "[SEP]", "pad_token": "[PAD]", "cls_token": "[CLS]", "mask_token": "[MASK]"}))
    save_file(make_weights(seed), str(folder / "model.safetensors"), metadata={"format": "pt"})
    return folder


def random_batch(seed: int = 1, batch: int = 4, length: int = 12) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Random ids, token types and a random right-padding mask (each row keeps at least 2 tokens)."""
    rng = np.random.default_rng(seed)
    ids = rng.integers(5, CONFIG["vocab_size"], size=(batch, length), dtype=np.int64)
    types = rng.integers(0, CONFIG["type_vocab_size"], size=(batch, length), dtype=np.int64)
    lengths = rng.integers(2, length + 1, size=batch)
    lengths[0] = length  # one row without padding
    mask = (np.arange(length)[None, :] < lengths[:, None]).astype(np.int64)
    ids[mask == 0] = 0
    return ids, types, mask
