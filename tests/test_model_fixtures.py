"""The model fixtures themselves (tests/model_fixtures.py): real shapes, ids equal to the golden file, and a Hugging
Face cache that huggingface_hub's own reader accepts. No tinyminilm here: these check the ground the tests of
models by Hub id stand on."""

from __future__ import annotations

import json
import os
import shutil

import numpy as np
import pytest
from safetensors import safe_open
from safetensors.numpy import load_file
from tokenizers import Tokenizer

import model_fixtures as mf
from conftest import golden_ids

# What the real models are, written down here independently of the script that wrote the fixtures:
# (layers, vocab_size, pooling, Normalize, max_seq_length, prompts, first ids of the tokenizer's template)
REAL = {
    "minilm-l12": (12, 30522, "mean", True, 128, {}, (101, 102)),
    "bge-small": (12, 30522, "cls", True, 512,
                  {"query": "Represent this sentence for searching relevant passages: "}, (101, 102)),
    "e5-small": (12, 30522, "mean", False, 512, {"query": "query: ", "document": "passage: "}, (101, 102)),
    "gte-small": (12, 30522, "mean", False, 512, {}, (101, 102)),
    "multilingual-minilm": (12, None, "mean", False, 128, {}, (0, 2)),  # our vocabulary: <s> = 0, </s> = 2
}
FLAG = {"mean": "pooling_mode_mean_tokens", "cls": "pooling_mode_cls_token"}


def read(folder, name):
    return json.loads((folder / name).read_text(encoding="utf-8"))


@pytest.fixture
def built(tmp_path, model_dir):
    """build_model; everything under tmp_path (130 MB of weights a folder, and the cache's blobs) goes at the end."""
    def build(shape, fmt):
        return mf.build_model(shape, tmp_path, fmt, model_dir=model_dir)
    yield build
    for child in tmp_path.iterdir():
        shutil.rmtree(child, ignore_errors=True)


@pytest.mark.parametrize("shape", mf.SHAPES)
def test_built_folders_have_the_real_shape_and_the_golden_ids(built, shape):
    """Both formats of each shape: the real layer shapes, the real pooling, limit and prompts, the golden ids."""
    layers, vocab, pooling, normalize, limit, prompts, (first, last) = REAL[shape]
    golden = mf.golden(shape)
    texts = mf.golden_texts(shape)
    assert int(golden["max_seq_length"]) == limit
    assert golden["encode"].shape == (len(texts), 384) and golden["encode"].dtype == np.float32
    assert np.isfinite(golden["encode"]).all()
    assert np.allclose(np.linalg.norm(golden["encode"], axis=1), 1, atol=1e-5) == normalize
    for fmt in mf.FORMATS:
        folder = built(shape, fmt)
        config = read(folder, "config.json")
        assert (config["model_type"], config["num_hidden_layers"], config["hidden_size"],
                config["num_attention_heads"], config["intermediate_size"],
                config["max_position_embeddings"]) == ("bert", layers, 384, 12, 1536, 512)
        tok = Tokenizer.from_file(str(folder / "tokenizer.json"))
        assert config["vocab_size"] == (vocab or tok.get_vocab_size())
        with safe_open(str(folder / "model.safetensors"), "np") as f:
            keys = set(f.keys())
            assert f.get_slice("embeddings.word_embeddings.weight").get_shape() == [config["vocab_size"], 384]
            assert f.get_slice(f"encoder.layer.{layers - 1}.intermediate.dense.weight").get_shape() == [1536, 384]
        assert f"encoder.layer.{layers}.output.dense.weight" not in keys
        assert mf.weights_digest(load_file(str(folder / "model.safetensors"))) == str(golden["weights_sha256"])

        modules = read(folder, "modules.json")
        assert [m["path"] for m in modules] == ["", "1_Pooling"] + ["2_Normalize"] * normalize
        pool = read(folder, "1_Pooling/config.json")
        prompts_saved = {}
        if (folder / "config_sentence_transformers.json").exists():
            prompts_saved = read(folder, "config_sentence_transformers.json").get("prompts", {})
        assert {k: v for k, v in prompts_saved.items() if v} == prompts
        if fmt == "st6":
            assert modules[1]["type"] == "sentence_transformers.sentence_transformer.modules.pooling.Pooling"
            assert pool["pooling_mode"] == pooling and "max_seq_length" not in read(folder, "sentence_bert_config.json")
            assert read(folder, "tokenizer_config.json")["model_max_length"] == limit
        else:
            assert modules[1]["type"] == "sentence_transformers.models.Pooling"
            assert [k for k, v in pool.items() if v is True and k.startswith("pooling_mode")] == [FLAG[pooling]]
            assert read(folder, "sentence_bert_config.json")["max_seq_length"] == limit

        # The tokenizer files reproduce the golden ids: tokenizer.json alone, cut to the limit, last special kept
        # (the pinned tokenizer.json pads and truncates to 128 itself, which sentence-transformers overrides).
        tok.no_truncation()
        tok.no_padding()
        for i, text in enumerate(texts):
            ids = tok.encode(text).ids
            ids = ids if len(ids) <= limit else ids[:limit - 1] + ids[-1:]
            assert ids == golden_ids(golden, i), (fmt, i, text[:40])
            assert ids[0] == first and ids[-1] == last
        assert len(golden_ids(golden, len(texts) - 2)) == limit  # the at-limit text: exactly the limit
        assert len(tok.encode(texts[-1]).ids) == limit + 1  # and the one a token past it
        shutil.rmtree(folder)


def test_hf_cache_is_what_huggingface_hub_reads(built, tmp_path):
    from huggingface_hub import scan_cache_dir, try_to_load_from_cache

    folder = built("bge-small", "st6")
    root = tmp_path / "hub"
    commit = "0123456789abcdef0123456789abcdef01234567"
    snapshot = mf.hf_cache(root, "BAAI/bge-small-en-v1.5", folder, revision=commit)
    repo = root / "models--BAAI--bge-small-en-v1.5"
    assert snapshot == repo / "snapshots" / commit
    assert (repo / "refs" / "main").read_text() == commit

    files = sorted(p.relative_to(folder).as_posix() for p in folder.rglob("*") if p.is_file())
    for name in files:
        link = snapshot / name
        target = os.readlink(link)
        assert not os.path.isabs(target) and link.resolve().parent == (repo / "blobs").resolve(), name
        assert link.read_bytes() == (folder / name).read_bytes()
    blob = os.path.basename(os.readlink(snapshot / "model.safetensors"))
    assert len(blob) == 64 and len(os.path.basename(os.readlink(snapshot / "config.json"))) == 40  # sha256 / sha1

    report = scan_cache_dir(root)
    assert report.warnings == []
    (info,) = report.repos
    assert (info.repo_id, info.repo_type) == ("BAAI/bge-small-en-v1.5", "model")
    (rev,) = info.revisions
    assert rev.commit_hash == commit and rev.refs == frozenset({"main"})
    assert sorted(f.file_path.relative_to(snapshot).as_posix() for f in rev.files) == files
    assert all(f.blob_path.parent == repo / "blobs" for f in rev.files)

    for name in ("config.json", "1_Pooling/config.json", "model.safetensors"):
        assert try_to_load_from_cache("BAAI/bge-small-en-v1.5", name, cache_dir=root) == str(snapshot / name)
        assert try_to_load_from_cache("BAAI/bge-small-en-v1.5", name, cache_dir=root, revision=commit) \
            == str(snapshot / name)
    assert try_to_load_from_cache("BAAI/bge-small-en-v1.5", "vocab.txt", cache_dir=root) is None


def test_hf_cache_default_revision_follows_the_content(built, tmp_path):
    from huggingface_hub import scan_cache_dir

    st6, old = built("e5-small", "st6"), built("e5-small", "old")
    a = mf.hf_cache(tmp_path / "hub", "intfloat/e5-small-v2", st6)
    b = mf.hf_cache(tmp_path / "hub", "intfloat/e5-small-v2", old, ref=None)
    assert a.name != b.name and len(a.name) == 40 and a.name == mf.hf_cache(tmp_path / "again", "x/y", st6).name
    (info,) = scan_cache_dir(tmp_path / "hub").repos
    assert {r.commit_hash: r.refs for r in info.revisions} == {a.name: frozenset({"main"}), b.name: frozenset()}
    weights = {r.commit_hash: next(f.blob_path for f in r.files if f.file_name == "model.safetensors")
               for r in info.revisions}
    assert weights[a.name] == weights[b.name]  # the same weights are one blob, as the Hub's cache shares them
    with pytest.raises(ValueError, match="40-hex"):
        mf.hf_cache(tmp_path / "hub", "intfloat/e5-small-v2", st6, revision="main")
