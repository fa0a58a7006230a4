"""Write tests/golden/cross.npz: what sentence-transformers' CrossEncoder computes with random cross-encoders.

Run it where the `reference` extra is installed (torch CPU, sentence-transformers 6.2, transformers 5):

    /work/refvenv/bin/python scripts/make_golden_cross.py

The models are BertForSequenceClassification checkpoints of cross-encoder/ms-marco-MiniLM-L6-v2's shape (6 layers,
hidden 384, 12 heads, FFN 1536, vocabulary 30522, 512 positions) with random weights from tests/tiny_bert.py's
make_weights (seed tests/cross_models.SEED) and the real uncased tokenizer of the pinned all-MiniLM-L6-v2. The
variants (tests/cross_models.VARIANTS) pin where the default activation comes from. This script writes their small
JSON files into tests/fixtures/cross/<variant>/, taking each from sentence-transformers 6.2's own `save` and changing
only what the variant is about (never weights, never the pinned tokenizer files: the tests rebuild every folder
from those files, the tokenizer files of the `model_dir` fixture and the seed). Then it loads each rebuilt folder
with CrossEncoder and records, for tests/cross_models.PAIRS and RANK_DOCS, the token ids and token types of each
pair, `predict` (the default activation, an explicit activation_fn, apply_softmax for three labels) and `rank`
(with and without top_k). It also writes tests/golden/cross_versions.json, the library versions that made them.

What sentence-transformers 6.2 saves for a CrossEncoder (read in cross_encoder/model.py and base/model.py, and
seen in the files it writes): modules.json (one Transformer module), sentence_bert_config.json (transformer_task
"sequence-classification", no max_seq_length), config_sentence_transformers.json ("model_type": "CrossEncoder" and
"activation_fn", the class path of the activation in use) and the transformers files. It no longer writes
config.json's `sentence_transformers.activation_fn` (sentence-transformers 4-5 did); it only reads it.

The default activation, as 6.2 picks it when CrossEncoder(activation_fn=None):
  1. config_sentence_transformers.json "activation_fn" — read only for a folder with modules.json whose
     config_sentence_transformers.json says "model_type": "CrossEncoder";
  2. config.json "sentence_transformers": {"activation_fn": ...};
  3. config.json "sbert_ce_default_activation_function" (before sentence-transformers 4);
  4. Sigmoid for one label, Identity for more.
A class path is imported only if it starts with "torch." (or trust_remote_code=True); otherwise 6.2 logs a
warning and goes on down the list.

Where max_length comes from when the caller gives none (base/modules/transformer.py, Transformer.__init__ and
load_config; checked below by the max_length each variant gets):
  1. CrossEncoder(max_length=N): the tokenizer's model_max_length = N, not capped (a value beyond
     max_position_embeddings fails only at the forward pass);
  2. else, for a folder with modules.json: sentence_bert_config.json "max_seq_length", also not capped;
  3. else tokenizer_config.json "model_max_length" (transformers' default when the key is absent: 1e30),
     capped at config.json "max_position_embeddings". CrossEncoder(max_length=N).save writes N here.
tokenizer.json's own truncation length (128 in all-MiniLM-L6-v2's file) is never used. Pairs are truncated with
the tokenizers library's "longest_first" strategy at that length, [CLS] and both [SEP]s counted.
"""

from __future__ import annotations

import json
import shutil
import sys
import tempfile
from pathlib import Path

import numpy as np

ROOT = Path(__file__).resolve().parent.parent
GOLDEN = ROOT / "tests" / "golden"
sys.path[:0] = [str(ROOT), str(ROOT / "tests")]

import cross_models as cm  # noqa: E402  (tests/ on the path first)

SHAPE = {  # cross-encoder/ms-marco-MiniLM-L6-v2's config.json, less what transformers adds on save
    "architectures": ["BertForSequenceClassification"], "model_type": "bert", "hidden_act": "gelu",
    "vocab_size": 30522, "hidden_size": 384, "num_hidden_layers": 6, "num_attention_heads": 12,
    "intermediate_size": 1536, "max_position_embeddings": 512, "type_vocab_size": 2, "layer_norm_eps": 1e-12,
    "pad_token_id": 0, "position_embedding_type": "absolute", "attention_probs_dropout_prob": 0.1,
    "hidden_dropout_prob": 0.1, "initializer_range": 0.02,
}
SAVED_FILES = ("config.json", "config_sentence_transformers.json", "sentence_bert_config.json", "modules.json")


def activation(path: str):
    """The torch module a class path names, as sentence-transformers instantiates it."""
    from sentence_transformers.util import import_from_string

    return import_from_string(path)()


def raw_folder(dest: Path, labels: int, tokenizer_dir: Path) -> Path:
    """A transformers-style folder: config.json, the pinned tokenizer files, the seeded weights."""
    dest.mkdir(parents=True)
    config = dict(SHAPE, id2label={str(i): f"LABEL_{i}" for i in range(labels)},
                  label2id={f"LABEL_{i}": i for i in range(labels)})
    (dest / "config.json").write_text(json.dumps(config, indent=2))
    for name in cm.TOKENIZER_FILES:
        shutil.copyfile(tokenizer_dir / name, dest / name)
    cm.make_weights_file(dest / "model.safetensors", config)
    return dest


def write_fixture(variant: str, files: dict[str, dict]) -> None:
    folder = cm.FIXTURES / variant
    shutil.rmtree(folder, ignore_errors=True)
    folder.mkdir(parents=True)
    for name, data in files.items():
        (folder / name).write_text(json.dumps(data, indent=2, sort_keys=True) + "\n")


def saved_json(folder: Path, names=SAVED_FILES) -> dict[str, dict]:
    return {n: json.loads((folder / n).read_text()) for n in names if (folder / n).exists()}


def make_fixtures(tmp: Path, tokenizer_dir: Path) -> None:
    """tests/fixtures/cross/<variant>/, each from what sentence-transformers 6.2 saves."""
    from sentence_transformers import CrossEncoder

    one = CrossEncoder(str(raw_folder(tmp / "raw1", 1, tokenizer_dir)), device="cpu")
    one.save(str(tmp / "saved1"))
    config = saved_json(tmp / "saved1", ["config.json"])["config.json"]  # transformers' own config.json
    assert "sentence_transformers" not in config and "sbert_ce_default_activation_function" not in config
    write_fixture("no-key", {"config.json": config})
    write_fixture("st4-config", {"config.json": dict(config, sentence_transformers={
        "activation_fn": "torch.nn.modules.linear.Identity", "version": "4.0.1"})})
    write_fixture("legacy-key", {"config.json": dict(
        config, sbert_ce_default_activation_function="torch.nn.modules.linear.Identity")})

    three = CrossEncoder(str(raw_folder(tmp / "raw3", 3, tokenizer_dir)), device="cpu", max_length=48)
    three.save(str(tmp / "saved3"))
    files = saved_json(tmp / "saved3", SAVED_FILES + ("tokenizer_config.json",))
    assert files["config_sentence_transformers.json"]["activation_fn"] == "torch.nn.modules.linear.Identity"
    assert files["tokenizer_config.json"]["model_max_length"] == 48
    write_fixture("three-labels", files)

    st4 = cm.make_folder("st4-config", tokenizer_dir, tmp / "st4")
    resaved = CrossEncoder(str(st4), device="cpu", activation_fn=activation("torch.nn.modules.activation.Sigmoid"))
    resaved.save(str(tmp / "saved-st6"))
    files = saved_json(tmp / "saved-st6")
    assert files["config.json"]["sentence_transformers"]["activation_fn"] == "torch.nn.modules.linear.Identity"
    assert files["config_sentence_transformers.json"]["activation_fn"] == "torch.nn.modules.activation.Sigmoid"
    files["sentence_bert_config.json"]["max_seq_length"] = 64  # by hand: the older files carry it; 6.2 reads it
    write_fixture("st6-saved", files)


def token_ids(model, pairs) -> tuple[list[list[int]], list[list[int]]]:
    """Each pair's input_ids and token_type_ids as sentence-transformers makes them, one pair at a time."""
    ids, types = [], []
    for pair in pairs:
        f = model.preprocess([list(pair)])
        n = int(f["attention_mask"][0].sum())
        ids.append(f["input_ids"][0, :n].tolist())
        types.append(f["token_type_ids"][0, :n].tolist())
    return ids, types


def record(out: dict, key: str, model, override: str) -> None:
    """Token ids, predict (default, override, softmax) and rank of one loaded CrossEncoder under `key`."""
    ids, types = token_ids(model, cm.PAIRS)
    out[f"{key}_ids_flat"], out[f"{key}_ids_offsets"] = cm.ragged(ids)
    out[f"{key}_types_flat"], _ = cm.ragged(types)
    out[f"{key}_max_length"] = np.array(model.max_seq_length)
    out[f"{key}_predict"] = model.predict(cm.PAIRS, batch_size=4)
    out[f"{key}_predict_override"] = model.predict(cm.PAIRS, activation_fn=activation(override))
    out[f"{key}_single"] = np.asarray(model.predict(cm.PAIRS[0]))
    if model.num_labels > 1:
        out[f"{key}_predict_softmax"] = model.predict(cm.PAIRS, apply_softmax=True)
        return
    for name, kwargs in {"rank": {}, "rank_top3": {"top_k": 3, "return_documents": True},
                         "rank_override": {"activation_fn": activation(override)}}.items():
        ranked = model.rank(cm.RANK_QUERY, cm.RANK_DOCS, batch_size=4, **kwargs)
        assert all(r.get("text", cm.RANK_DOCS[r["corpus_id"]]) == cm.RANK_DOCS[r["corpus_id"]] for r in ranked)
        out[f"{key}_{name}_ids"] = np.array([r["corpus_id"] for r in ranked], dtype=np.int64)
        out[f"{key}_{name}_scores"] = np.array([r["score"] for r in ranked], dtype=np.float64)


def golden(tmp: Path, tokenizer_dir: Path) -> dict[str, np.ndarray]:
    from sentence_transformers import CrossEncoder
    from sentence_transformers.util import fullname

    out: dict[str, np.ndarray] = {}
    cache: dict = {}
    for variant, (_, default_activation) in cm.VARIANTS.items():
        folder = cm.make_folder(variant, tokenizer_dir, tmp / "rebuilt" / variant, cache)
        model = CrossEncoder(str(folder), device="cpu")
        assert fullname(model.activation_fn) == default_activation, (variant, model.activation_fn)
        record(out, variant, model, cm.OVERRIDES[variant])
        print(f"{variant}: max_length {model.max_seq_length}, {model.num_labels} label(s), {model.activation_fn}")
    model = CrossEncoder(str(tmp / "rebuilt" / "no-key"), device="cpu", max_length=cm.EXPLICIT_MAX_LENGTH)
    record(out, "no-key-max40", model, cm.OVERRIDES["no-key"])

    lengths = {k[:-len("_max_length")]: int(v) for k, v in out.items() if k.endswith("_max_length")}
    assert lengths == {"st4-config": 512, "legacy-key": 512, "no-key": 512, "three-labels": 48, "st6-saved": 64,
                       "no-key-max40": 40}, lengths
    for key, max_length in lengths.items():  # the long pairs fill max_length exactly: truncation happened
        ids = cm.unragged(out[f"{key}_ids_flat"], out[f"{key}_ids_offsets"])
        assert max(len(x) for x in ids) == max_length and len(ids[0]) < max_length
    return out


def versions() -> dict[str, str]:
    from make_golden import versions as library_versions  # the same libraries, recorded the same way

    recorded = library_versions()
    del recorded["model"]  # no pretrained model here: random weights, the pinned model's tokenizer only
    return {**recorded, "tokenizer": "sentence-transformers/all-MiniLM-L6-v2@c9745ed1d9f207416be6d2e6f8de32d1f16199bf",
            "made_by": "scripts/make_golden_cross.py"}


def main() -> None:
    import torch

    import tinyminilm.hub

    torch.manual_seed(0)
    tokenizer_dir = tinyminilm.hub.ensure_model()  # the same verified files the tests' model_dir fixture gives
    with tempfile.TemporaryDirectory() as tmp:
        make_fixtures(Path(tmp), tokenizer_dir)
        out = golden(Path(tmp), tokenizer_dir)
    np.savez_compressed(GOLDEN / "cross.npz", **out)
    (GOLDEN / "cross_versions.json").write_text(json.dumps(versions(), indent=1) + "\n")
    for f in ("cross.npz", "cross_versions.json"):
        print(f"wrote {GOLDEN / f} ({(GOLDEN / f).stat().st_size:,} bytes)")


if __name__ == "__main__":
    main()
