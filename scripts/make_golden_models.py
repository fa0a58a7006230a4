"""Write the model fixtures of tests/fixtures/models/ and their golden outputs with sentence-transformers 6.2 itself.

Run it in the reference environment (torch CPU, sentence-transformers 6.2, transformers 5):

    /work/refvenv/bin/python scripts/make_golden_models.py [--train-tokenizer] [--shapes bge-small ...]

For each shape of tests/model_fixtures.py (all-MiniLM-L12-v2, bge-small-en-v1.5, e5-small-v2, gte-small and
paraphrase-multilingual-MiniLM-L12-v2, each with random weights of the real layer shapes) it
  1. builds the BERT weights with tests/tiny_bert.make_weights(seed, config) and loads them into transformers'
     BertModel through a sentence-transformers Transformer module, then adds Pooling (+ Normalize), the prompts and
     max_seq_length, and SAVES the model with sentence-transformers 6.2 (its new format);
  2. copies the small JSON files it wrote to tests/fixtures/models/<shape>/st6/ (never model.safetensors nor the
     tokenizer.json, which the tests take from the pinned folder or from the shape's own tokenizer.json; nor a
     README.md: the model card is not written);
  3. writes the same model in the format sentence-transformers 2.x-5.x wrote to tests/fixtures/models/<shape>/old/
     (pooling_mode_* flags; max_seq_length and do_lower_case in sentence_bert_config.json;
     `sentence_transformers.models.*` module paths; config.json as transformers 4 wrote it), each shape as one era
     of the library wrote it (OLD_ERA below; these files are modelled on what those versions save, not copied);
  4. rebuilds both folders exactly as the tests do (tests/model_fixtures.build_model), loads each with
     sentence-transformers 6.2 and asserts that their outputs are identical to those of the folder it saved, and
     that the ids equal what the `tokenizers` library computes from the folder's tokenizer.json;
  5. records token ids and encode / encode_query / encode_document on golden texts (tests/golden/models_texts.json:
     common texts plus, per shape, one text of exactly max_seq_length tokens and one a token longer) in
     tests/golden/models.npz, and the library versions in tests/golden/models_versions.json.

The multilingual shape's vocabulary is OURS, not the real model's 250k SentencePiece vocabulary (which cannot be
fetched here); its layer shapes are the real ones. It is a Unigram model trained with the `tokenizers` library on
scripts/data/stdlib_docstrings.txt and scripts/data/multilingual.txt (vocab 8000 + <mask>), laid out as XLM-R's:
<s>=0, <pad>=1, </s>=2, <unk>=3, "<s> $A </s>", no token_type_ids, no lower-casing, WhitespaceSplit + Metaspace and
no normalizer. No normalizer, because transformers 5 rebuilds an XLMRobertaTokenizer from the vocabulary and keeps
only a Precompiled (SentencePiece) normalizer, which the `tokenizers` library cannot create: any other normalizer
in tokenizer.json would be dropped by the reference, whose ids would then differ from the file's. The tokenizer is
trained only with --train-tokenizer (or when tests/fixtures/models/multilingual-minilm/tokenizer.json is missing):
the Unigram trainer is not bit-reproducible (its piece set is, its scores vary by ~1e-2 from run to run), so the
committed file is the reference.
"""

from __future__ import annotations

import argparse
import datetime
import json
import os
import re
import shutil
import sys
import tempfile
from pathlib import Path

import numpy as np

ROOT = Path(__file__).resolve().parent.parent
GOLDEN = ROOT / "tests" / "golden"
DATA = ROOT / "scripts" / "data"
PINNED = Path(os.environ.get("TINYMINILM_HOME", "/work/models")) / "all-MiniLM-L6-v2"
sys.path[:0] = [str(ROOT), str(ROOT / "tests"), str(ROOT / "scripts")]
os.environ.setdefault("HF_HUB_OFFLINE", "1")  # every folder here is local

import model_fixtures  # noqa: E402  (tests/model_fixtures.py)
from make_golden import ragged, st_token_ids  # noqa: E402
from make_golden import versions as reference_versions  # noqa: E402
from tiny_bert import make_weights  # noqa: E402

BGE_QUERY = "Represent this sentence for searching relevant passages: "
# name: (num_hidden_layers, max_seq_length, pooling mode, Normalize, prompts, vocab_size). Hidden 384, 12 heads,
# FFN 1536 and 512 positions for all, as the real models have them.
SPECS = {
    "minilm-l12": (12, 128, "mean", True, None, 30522),
    "bge-small": (12, 512, "cls", True, {"query": BGE_QUERY}, 30522),
    "e5-small": (12, 512, "mean", False, {"query": "query: ", "document": "passage: "}, 30522),
    "gte-small": (12, 512, "mean", False, None, 30522),
    "multilingual-minilm": (12, 128, "mean", False, None, None),  # vocab_size: our tokenizer's
}
UNIGRAM_VOCAB = 8000  # trained pieces; <mask> comes after them

# The era of sentence-transformers each old/ folder imitates, and the do_lower_case it has.
#   "2.0": 1_Pooling with the four flags of 2.0; config_sentence_transformers.json with __version__ only
#   "2.2": six flags (weightedmean, lasttoken), no include_prompt; prompts + default_prompt_name (2.4+)
#   "3":   six flags + include_prompt; prompts, default_prompt_name, similarity_fn_name
#   "5":   as "3", plus model_type in config_sentence_transformers.json and empty query/document prompts
#   "1":   four flags and no config_sentence_transformers.json at all (folders saved before 2.0)
OLD_ERA = {"minilm-l12": ("2.0", False), "bge-small": ("2.2", True), "e5-small": ("3", False),
           "gte-small": ("5", False), "multilingual-minilm": ("1", False)}
ERA_VERSIONS = {"2.0": {"sentence_transformers": "2.0.0", "transformers": "4.6.1", "pytorch": "1.8.1"},
                "2.2": {"sentence_transformers": "2.2.2", "transformers": "4.28.1", "pytorch": "1.13.0+cu117"},
                "3": {"sentence_transformers": "3.3.1", "transformers": "4.46.3", "pytorch": "2.5.1+cu124"},
                "5": {"sentence_transformers": "5.1.0", "transformers": "4.56.1", "pytorch": "2.8.0+cu128"}}
FLAGS = {"cls": "pooling_mode_cls_token", "mean": "pooling_mode_mean_tokens", "max": "pooling_mode_max_tokens",
         "mean_sqrt_len_tokens": "pooling_mode_mean_sqrt_len_tokens",
         "weightedmean": "pooling_mode_weightedmean_tokens", "lasttoken": "pooling_mode_lasttoken"}

# XLM-R's tokenizer_config.json / special_tokens_map.json as transformers 4 wrote them (the multilingual shape's old/
# folder, and the tokenizer the reference model is built from).
XLMR_MASK = {"content": "<mask>", "single_word": False, "lstrip": True, "rstrip": False, "normalized": False}
XLMR_SPECIALS = {"bos_token": "<s>", "eos_token": "</s>", "unk_token": "<unk>", "sep_token": "</s>",
                 "pad_token": "<pad>", "cls_token": "<s>"}
XLMR_TOKENIZER_CONFIG = {**XLMR_SPECIALS, "mask_token": {**XLMR_MASK, "__type": "AddedToken"},
                         "model_max_length": 512, "special_tokens_map_file": None,
                         "tokenizer_class": "XLMRobertaTokenizer"}

COMMON_TEXTS = [  # short queries, non-ASCII, special tokens and whitespace inside a text, empty, far past any limit
    "how do I parse command line arguments", "why is the sky blue", "read a file line by line",
    "The quick brown fox jumps over the lazy dog.", "HELLO World, Hello world, hello WORLD",
    "Québec, São Paulo, Zürich", "東京タワーの高さは何メートルですか",
    "Возвращает список элементов, отсортированных по возрастанию.", "Ελληνικά и русский",
    "Die Straßenbahn fährt über die Brücke.", "emoji 🎉👩‍💻", "a\u200bb\u0301c", "ﬁnancial ＡＢＣ ① ½",
    "  double  spaces\tand\ttabs\nand a newline  ", "fill the [MASK] and the <mask> in, then [SEP] and </s>",
    "3.14159 1,000,000 2024-05-03 user@example.com https://example.com/a?b=c", "", " ", "x" * 3000, "word " * 600,
]


def long_paragraph(min_chars: int = 4000) -> str:
    """Docstring lines joined until past min_chars: far past 512 tokens in every tokenizer here."""
    out = []
    for line in (DATA / "stdlib_docstrings.txt").read_text(encoding="utf-8").splitlines()[100:]:
        out.append(line)
        if sum(len(x) + 1 for x in out) > min_chars:
            return " ".join(out)
    raise AssertionError("not enough docstring text")


def train_unigram(path: Path) -> None:
    """Train the multilingual shape's Unigram tokenizer (see the module docstring) and write its tokenizer.json."""
    from tokenizers import AddedToken, Tokenizer, decoders, pre_tokenizers, processors
    from tokenizers.models import Unigram
    from tokenizers.trainers import UnigramTrainer

    lines = []
    for name in ("stdlib_docstrings.txt", "multilingual.txt"):
        lines += (DATA / name).read_text(encoding="utf-8").splitlines()
    specials = ["<s>", "<pad>", "</s>", "<unk>"]
    tok = Tokenizer(Unigram())
    tok.pre_tokenizer = pre_tokenizers.Sequence([pre_tokenizers.WhitespaceSplit(),
                                                 pre_tokenizers.Metaspace(replacement="▁", prepend_scheme="always")])
    trainer = UnigramTrainer(vocab_size=UNIGRAM_VOCAB, special_tokens=specials, unk_token="<unk>",
                             max_piece_length=16, shrinking_factor=0.75, n_sub_iterations=2, show_progress=False)
    tok.train_from_iterator(lines, trainer)
    vocab = json.loads(tok.to_str())["model"]["vocab"]
    assert [p for p, _ in vocab[:4]] == specials, vocab[:4]
    # XLM-R keeps <mask> as the last piece of its vocabulary and as an added special token that eats a space before.
    final = Tokenizer(Unigram([(p, s) for p, s in vocab] + [("<mask>", 0.0)], unk_id=3, byte_fallback=False))
    final.pre_tokenizer = tok.pre_tokenizer
    final.add_special_tokens([AddedToken(t, special=True, normalized=False) for t in specials]
                             + [AddedToken("<mask>", lstrip=True, special=True, normalized=False)])
    final.post_processor = processors.TemplateProcessing(single="<s> $A </s>", pair="<s> $A </s> </s> $B </s>",
                                                         special_tokens=[("<s>", 0), ("</s>", 2)])
    final.decoder = decoders.Metaspace(replacement="▁", prepend_scheme="always")
    path.parent.mkdir(parents=True, exist_ok=True)
    final.save(str(path), pretty=False)


def bert_config(shape: str) -> dict:
    """config.json of the shape as transformers 4 wrote it: the old/ folder's, and what the reference is built from."""
    layers, _, _, _, _, vocab = SPECS[shape]
    if vocab is None:
        vocab = json.loads((model_fixtures.FIXTURES / shape / "tokenizer.json").read_text(encoding="utf-8"))
        vocab = len(vocab["model"]["vocab"])
    config = {"architectures": ["BertModel"], "attention_probs_dropout_prob": 0.1, "gradient_checkpointing": False,
              "hidden_act": "gelu", "hidden_dropout_prob": 0.1, "hidden_size": 384, "initializer_range": 0.02,
              "intermediate_size": 1536, "layer_norm_eps": 1e-12, "max_position_embeddings": 512,
              "model_type": "bert", "num_attention_heads": 12, "num_hidden_layers": layers,
              "pad_token_id": 1 if shape in model_fixtures.UNIGRAM_SHAPES else 0,  # XLM-R's <pad>
              "position_embedding_type": "absolute", "transformers_version": "4.8.2", "type_vocab_size": 2,
              "use_cache": True, "vocab_size": vocab}
    if shape == "bge-small":  # bge's config.json carries a label map and a dtype, which an encoder ignores
        config.update({"classifier_dropout": None, "id2label": {"0": "LABEL_0"}, "label2id": {"LABEL_0": 0},
                       "torch_dtype": "float32", "transformers_version": "4.30.0"})
    return config


def write_json(path: Path, data, indent: int = 2) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(json.dumps(data, indent=indent, ensure_ascii=False) + "\n", encoding="utf-8")


def write_old(shape: str, folder: Path) -> None:
    """The shape's old/ files: as sentence-transformers of OLD_ERA[shape] (and transformers 4) wrote them."""
    layers, max_len, mode, normalize, prompts, _ = SPECS[shape]
    era, lower = OLD_ERA[shape]
    write_json(folder / "config.json", bert_config(shape))
    modules = [{"idx": 0, "name": "0", "path": "", "type": "sentence_transformers.models.Transformer"},
               {"idx": 1, "name": "1", "path": "1_Pooling", "type": "sentence_transformers.models.Pooling"}]
    if normalize:
        modules.append({"idx": 2, "name": "2", "path": "2_Normalize", "type": "sentence_transformers.models.Normalize"})
    write_json(folder / "modules.json", modules)
    write_json(folder / "sentence_bert_config.json", {"max_seq_length": max_len, "do_lower_case": lower})
    flags = list(FLAGS.values())[:4] if era in ("1", "2.0") else list(FLAGS.values())
    pooling = {"word_embedding_dimension": 384, **{f: f == FLAGS[mode] for f in flags}}
    if era in ("3", "5"):
        pooling["include_prompt"] = True
    write_json(folder / "1_Pooling" / "config.json", pooling, indent=4)
    if era != "1":
        st_config = {"__version__": ERA_VERSIONS[era]}
        if era != "2.0":  # 5.x saves an empty query and document prompt when a model has none
            default = {"query": "", "document": ""} if era == "5" else {}
            st_config.update({"prompts": prompts or default, "default_prompt_name": None})
        if era in ("3", "5"):
            st_config["similarity_fn_name"] = "cosine"
        if era == "5":
            st_config = {"model_type": "SentenceTransformer", **st_config}
        write_json(folder / "config_sentence_transformers.json", st_config)
    if shape in model_fixtures.UNIGRAM_SHAPES:
        write_json(folder / "tokenizer_config.json", XLMR_TOKENIZER_CONFIG)
        write_json(folder / "special_tokens_map.json", {**XLMR_SPECIALS, "mask_token": XLMR_MASK})


def reference_model(shape: str, tmp: Path):
    """The shape's sentence-transformers model, assembled from modules on make_weights' tensors."""
    import torch
    from safetensors.numpy import save_file
    from sentence_transformers import SentenceTransformer
    from sentence_transformers.base.modules.normalize import Normalize
    from sentence_transformers.base.modules.transformer import Transformer
    from sentence_transformers.sentence_transformer.modules.pooling import Pooling

    _, max_len, mode, normalize, prompts, _ = SPECS[shape]
    base = tmp / f"{shape}-base"  # a plain transformers folder: config, weights, tokenizer
    write_old(shape, base)  # its config.json and (multilingual) tokenizer config are what Transformer reads
    for name in ("modules.json", "sentence_bert_config.json", "config_sentence_transformers.json"):
        (base / name).unlink(missing_ok=True)
    shutil.rmtree(base / "1_Pooling")
    if shape in model_fixtures.UNIGRAM_SHAPES:
        shutil.copyfile(model_fixtures.FIXTURES / shape / "tokenizer.json", base / "tokenizer.json")
    else:
        for name in model_fixtures.PINNED_FILES["old"]:
            shutil.copyfile(PINNED / name, base / name)
    weights = make_weights(model_fixtures.SEEDS[shape], config=bert_config(shape))
    save_file(weights, str(base / "model.safetensors"), metadata={"format": "pt"})

    transformer = Transformer(str(base), max_seq_length=max_len)
    modules = [transformer, Pooling(384, pooling_mode=mode)] + ([Normalize()] if normalize else [])
    st = SentenceTransformer(modules=modules, prompts=prompts, default_prompt_name=None, device="cpu").eval()
    state = transformer.auto_model.state_dict()
    assert set(state) == set(weights) - {"embeddings.position_ids"}, set(state) ^ set(weights)
    for k, v in state.items():
        assert torch.equal(v, torch.from_numpy(weights[k])), k
    assert st.max_seq_length == max_len, st.max_seq_length
    return st


def copy_st6_files(saved: Path, dest: Path) -> list[str]:
    """Copy the small files sentence-transformers saved to dest; return what was left out, by name."""
    shutil.rmtree(dest, ignore_errors=True)
    left_out = []
    for p in sorted(saved.rglob("*")):
        if p.is_dir():
            continue
        rel = p.relative_to(saved)
        if p.suffix != ".json" or rel.name == "tokenizer.json":
            left_out.append(rel.as_posix())
            continue
        text = p.read_text(encoding="utf-8")
        for bad in (str(saved), tempfile.gettempdir(), "/work/", "/root/", "/home/"):
            assert bad not in text, f"{rel} names a local path ({bad}); normalize it before committing"
        assert not re.search(r"\d{4}-\d\d-\d\dT\d\d:", text), f"{rel} holds a timestamp"
        (dest / rel).parent.mkdir(parents=True, exist_ok=True)
        shutil.copyfile(p, dest / rel)
    return left_out


def at_limit_text(st, n: int) -> str:
    """A docstring text of exactly n tokens (specials included) whose next word " a" adds exactly one more."""
    def token_count(text: str) -> int:
        return len(st.tokenizer(text, truncation=False)["input_ids"])

    words = long_paragraph(40000).split()
    text = ""
    for w in words:
        if token_count((text + " " + w).strip()) > n:
            break
        text = (text + " " + w).strip()
    while token_count(text) < n:
        text += " a"
    assert token_count(text) == n and token_count(text + " a") == n + 1, (n, token_count(text))
    return text


def outputs(st, texts: list[str]) -> dict[str, np.ndarray]:
    """Ids (plain and with each prompt) and encode / encode_query / encode_document as float32."""
    out = {}
    for kind, prompt_name in (("", None), ("query_", "query"), ("document_", "document")):
        prompt = (st.prompts.get(prompt_name) or "") if prompt_name else ""
        out[f"{kind}ids_flat"], out[f"{kind}ids_offsets"] = ragged(st_token_ids(st, [prompt + t for t in texts]))
    out["encode"] = st.encode(texts, batch_size=8, convert_to_numpy=True).astype(np.float32)
    out["encode_query"] = st.encode_query(texts, batch_size=8, convert_to_numpy=True).astype(np.float32)
    out["encode_document"] = st.encode_document(texts, batch_size=8, convert_to_numpy=True).astype(np.float32)
    # A prompt is text put in front: encoding prompt + text gives the same vectors.
    for kind in ("query", "document"):
        prompt = st.prompts.get(kind) or ""
        direct = st.encode([prompt + t for t in texts], batch_size=8, convert_to_numpy=True)
        assert np.abs(direct - out[f"encode_{kind}"]).max() < 1e-6, kind
    out["max_seq_length"] = np.array(st.max_seq_length, dtype=np.int64)
    return out


def check_ids_against_tokenizer_json(folder: Path, st, texts: list[str], max_len: int) -> None:
    """The ids sentence-transformers computed equal the `tokenizers` library's on the folder's tokenizer.json,
    cut to max_len with the final special token kept: tokenizer.json alone decides the ids."""
    from tokenizers import Tokenizer

    tok = Tokenizer.from_file(str(folder / "tokenizer.json"))
    tok.no_truncation()
    tok.no_padding()
    for i, (text, ids) in enumerate(zip(texts, st_token_ids(st, texts))):
        raw = tok.encode(text).ids
        if len(raw) > max_len:
            raw = raw[:max_len - 1] + raw[-1:]
        assert raw == ids, (folder.name, i, text[:40], raw[:12], ids[:12])


def make_shape(shape: str, st, texts: list[str], tmp: Path) -> tuple[dict[str, np.ndarray], list[str], dict]:
    """Save `st` (the shape's reference_model), write both fixture folders, check them; return the golden outputs,
    the saved files not committed and, per format, the largest difference of its vectors from the saved model's."""
    from sentence_transformers import SentenceTransformer

    _, max_len, _, _, prompts, _ = SPECS[shape]
    saved = tmp / f"{shape}-saved"
    st.save(str(saved), create_model_card=False)
    left_out = copy_st6_files(saved, model_fixtures.FIXTURES / shape / "st6")
    old = model_fixtures.FIXTURES / shape / "old"
    shutil.rmtree(old, ignore_errors=True)
    write_old(shape, old)

    reloaded = SentenceTransformer(str(saved), device="cpu")
    assert reloaded.max_seq_length == max_len and {k: v for k, v in reloaded.prompts.items() if v} == (prompts or {})
    gold = outputs(reloaded, texts)
    diffs = {}
    built_tmp = tmp / "built"
    for fmt in model_fixtures.FORMATS:
        folder = model_fixtures.build_model(shape, built_tmp, fmt, model_dir=PINNED)
        model = SentenceTransformer(str(folder), device="cpu")
        got = outputs(model, texts)
        for k, v in gold.items():
            assert v.dtype == got[k].dtype and np.array_equal(v, got[k]), (shape, fmt, k)
        diffs[fmt] = max(float(np.abs(got[k] - gold[k]).max()) for k in ("encode", "encode_query", "encode_document"))
        check_ids_against_tokenizer_json(folder, model, texts, max_len)
        shutil.rmtree(folder)
    # and what it computed before the save, from the modules themselves
    assert np.array_equal(st.encode(texts, batch_size=8, convert_to_numpy=True), gold["encode"]), shape
    gold["weights_sha256"] = np.array(model_fixtures.weights_digest(
        make_weights(model_fixtures.SEEDS[shape], config=bert_config(shape))))
    return gold, left_out, diffs


def versions(shapes: list[str]) -> dict:
    import tokenizers
    import transformers

    v = reference_versions()
    v.update({"transformers": transformers.__version__, "tokenizers": tokenizers.__version__,
              "date": datetime.date.today().isoformat(), "made_by": "scripts/make_golden_models.py",
              "model": "random weights: tests/tiny_bert.make_weights(seed, config.json), seeds in "
                       "tests/model_fixtures.SEEDS", "shapes": shapes,
              "pinned_tokenizer": "sentence-transformers/all-MiniLM-L6-v2@c9745ed1d9f207416be6d2e6f8de32d1f16199bf"})
    return v


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--train-tokenizer", action="store_true",
                    help="retrain the multilingual shape's Unigram tokenizer (changes its ids: not bit-reproducible)")
    args = ap.parse_args()  # nothing below draws random numbers from torch: the weights come from make_weights
    tok_path = model_fixtures.FIXTURES / "multilingual-minilm" / "tokenizer.json"
    if args.train_tokenizer or not tok_path.exists():
        train_unigram(tok_path)
        print(f"trained {tok_path} ({tok_path.stat().st_size:,} bytes)")

    shapes = list(SPECS)
    assert shapes == list(model_fixtures.SHAPES), (shapes, model_fixtures.SHAPES)
    common = COMMON_TEXTS + [long_paragraph()]
    texts_json = {"common": common, "at_limit": {}, "past_limit_by_one": {}}
    golden: dict[str, np.ndarray] = {}
    with tempfile.TemporaryDirectory() as tmp:
        for shape in shapes:
            st = reference_model(shape, Path(tmp))
            texts_json["at_limit"][shape] = at_limit_text(st, SPECS[shape][1])
            texts_json["past_limit_by_one"][shape] = texts_json["at_limit"][shape] + " a"
            texts = common + [texts_json["at_limit"][shape], texts_json["past_limit_by_one"][shape]]
            gold, left_out, diffs = make_shape(shape, st, texts, Path(tmp))
            golden.update({f"{shape}/{k}": v for k, v in gold.items()})
            print(f"{shape}: {len(texts)} texts; st6 and old folders equal to the saved model "
                  f"(max |diff| {diffs}); not committed from the save: {left_out}")
            shutil.rmtree(Path(tmp) / f"{shape}-saved")
            shutil.rmtree(Path(tmp) / f"{shape}-base")
    write_json(GOLDEN / "models_texts.json", texts_json, indent=1)
    np.savez_compressed(GOLDEN / "models.npz", **golden)
    write_json(GOLDEN / "models_versions.json", versions(shapes), indent=1)
    for f in ("models.npz", "models_texts.json", "models_versions.json"):
        print(f"wrote {GOLDEN / f} ({(GOLDEN / f).stat().st_size:,} bytes)")


if __name__ == "__main__":
    main()
