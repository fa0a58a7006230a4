"""Models by Hub id from the Hugging Face cache, with no network: HF_HUB_OFFLINE=1 (or local_files_only=True).

Each real Hub shape of tests/model_fixtures.py (random weights, in both file formats) is laid out under its real
Hub id exactly as huggingface_hub lays out its cache (blobs, relative snapshot symlinks, refs/main), and loaded by
that id through tinyminilm.load, SentenceTransformer and `tinyminilm embed --model ID`; the vectors must be
sentence-transformers 6.2's (tests/golden/models.npz) within 1e-5 of each vector's norm. Then what an id means
(the short name, a branch, a tag, a commit) and every way the cache can fail to hold a model, each with the error a
user reads. The Hub itself (a stand-in on 127.0.0.1) is tests/test_hub_fetch.py's.
"""

from __future__ import annotations

import json
import shutil
from pathlib import Path

import numpy as np
import pytest

import cross_models
import tiny_bert
import tinyminilm
from model_fixtures import FORMATS, SHAPES, build_model, golden, golden_texts, hf_cache
from tinyminilm import ConfigError, CrossEncoder, DownloadError, SentenceTransformer, hf_cache as cache, hub
from tinyminilm.cli import main

# The Hub id of the real model each shape copies.
IDS = {"minilm-l12": "sentence-transformers/all-MiniLM-L12-v2", "bge-small": "BAAI/bge-small-en-v1.5",
       "e5-small": "intfloat/e5-small-v2", "gte-small": "thenlper/gte-small",
       "multilingual-minilm": "sentence-transformers/paraphrase-multilingual-MiniLM-L12-v2"}
CASES = [(shape, fmt) for fmt in FORMATS for shape in SHAPES]
TINY = "acme/tiny-bert"  # a small model for the tests of ids and revisions, where only which model loads matters


@pytest.fixture(scope="module")
def shape_cache(model_dir, tmp_path_factory):
    """shape_cache(shape, fmt) -> (cache root, commit): the shape in format fmt, under its Hub id, in the Hugging
    Face cache of that format (one cache per format: both hold the same ids). Built on first use."""
    root = tmp_path_factory.mktemp("hub-ids")
    built: dict[tuple[str, str], str] = {}

    def get(shape: str, fmt: str) -> tuple[Path, str]:
        if (shape, fmt) not in built:
            folder = build_model(shape, root / "folders", fmt, model_dir)
            built[shape, fmt] = hf_cache(root / fmt, IDS[shape], folder).name
        return root / fmt, built[shape, fmt]

    return get


@pytest.fixture
def offline(monkeypatch, tmp_path):
    """HF_HUB_OFFLINE=1, and an empty Hugging Face cache in tmp_path/"hf" unless a test points HF_HUB_CACHE
    elsewhere; returns a function that does."""
    monkeypatch.setenv("HF_HUB_OFFLINE", "1")
    monkeypatch.setenv("HF_HUB_CACHE", str(tmp_path / "hf"))

    def use(root: Path) -> Path:
        monkeypatch.setenv("HF_HUB_CACHE", str(root))
        return root

    return use


def assert_golden(vectors: np.ndarray, shape: str) -> None:
    """vectors are sentence-transformers 6.2's `encode` of golden_texts(shape) within 1e-5 of each row's norm."""
    want = golden(shape)["encode"]
    assert vectors.shape == want.shape and vectors.dtype == np.float32
    error = np.abs(vectors - want).max(axis=1) / np.linalg.norm(want, axis=1)  # [n]
    assert error.max() <= 1e-5, f"texts {np.nonzero(error > 1e-5)[0].tolist()} differ by up to {error.max():.2e}"


# --------------------------------------------------------------------------------------------------------------
# Every shape, both formats, by its id, through each front end
# --------------------------------------------------------------------------------------------------------------

@pytest.mark.parametrize("shape,fmt", CASES)
def test_load_by_id_from_the_cache_offline(shape, fmt, shape_cache, offline):
    root, commit = shape_cache(shape, fmt)
    offline(root)
    model = tinyminilm.load(IDS[shape])
    snapshot = root / ("models--" + IDS[shape].replace("/", "--")) / "snapshots" / commit
    assert model.source == hub.ModelSource(snapshot, IDS[shape], commit)
    assert repr(model).startswith(f"SentenceEncoder('{IDS[shape]}', revision='{commit}', ")
    assert {k: model.describe()[k] for k in ("repo_id", "revision")} == {"repo_id": IDS[shape], "revision": commit}
    assert_golden(model.encode(golden_texts(shape)), shape)


@pytest.mark.parametrize("shape,fmt", CASES)
def test_sentence_transformer_by_id_with_cache_folder_and_local_files_only(shape, fmt, shape_cache, monkeypatch,
                                                                             tmp_path):
    """sentence-transformers' arguments: cache_folder is the Hugging Face cache, local_files_only forbids the Hub
    (HF_HUB_OFFLINE is unset here and HF_HUB_CACHE points at an empty folder: cache_folder alone finds it)."""
    root, commit = shape_cache(shape, fmt)
    monkeypatch.delenv("HF_HUB_OFFLINE", raising=False)
    monkeypatch.setenv("HF_HUB_CACHE", str(tmp_path / "empty"))
    model = SentenceTransformer(IDS[shape], cache_folder=root, local_files_only=True)
    assert (model.source.repo_id, model.source.revision) == (IDS[shape], commit)
    assert_golden(model.encode(golden_texts(shape)), shape)


@pytest.mark.parametrize("shape,fmt", CASES)
def test_cli_embed_by_id_offline(shape, fmt, shape_cache, offline, capsys):
    offline(shape_cache(shape, fmt)[0])
    texts = golden_texts(shape)
    code = main(["embed", "--model", IDS[shape], "--", *texts])
    out, err = capsys.readouterr()
    assert code == 0, err
    assert_golden(np.array([json.loads(line) for line in out.splitlines()], dtype=np.float32), shape)


# --------------------------------------------------------------------------------------------------------------
# What an id means: short names, branches, tags, commits
# --------------------------------------------------------------------------------------------------------------

def test_a_short_name_means_sentence_transformers_slash_name(shape_cache, offline, capsys):
    root, commit = shape_cache("minilm-l12", "old")
    offline(root)
    want = tinyminilm.load(IDS["minilm-l12"]).encode(["a short name"])
    for model in (tinyminilm.load("all-MiniLM-L12-v2"), SentenceTransformer("all-MiniLM-L12-v2")):
        assert (model.source.repo_id, model.source.revision) == ("sentence-transformers/all-MiniLM-L12-v2", commit)
        np.testing.assert_array_equal(model.encode(["a short name"]), want)
    assert main(["embed", "--model", "all-MiniLM-L12-v2", "a short name"]) == 0
    printed = np.array([json.loads(capsys.readouterr().out)], dtype=np.float32)
    np.testing.assert_allclose(printed, want, rtol=0, atol=1e-7)  # the JSON is rounded to float32's digits


def tiny_folders(tmp_path: Path) -> tuple[Path, Path]:
    """Two small models of the same shape and different weights: which one loaded shows in the vectors."""
    return (tiny_bert.make_folder(tmp_path / "a", "pooling_mode_mean_tokens", True, seed=1),
            tiny_bert.make_folder(tmp_path / "b", "pooling_mode_mean_tokens", True, seed=2))


def test_a_revision_is_a_branch_a_tag_or_a_commit_and_the_commit_is_recorded(tmp_path, offline):
    root = offline(tmp_path / "hf")
    a, b = tiny_folders(tmp_path)
    main_commit = hf_cache(root, TINY, a).name  # refs/main
    tag_commit = hf_cache(root, TINY, b, ref="v2.0").name  # refs/v2.0, a tag or branch
    want_a, want_b = (tinyminilm.load(f).encode(["which model?"]) for f in (a, b))
    assert not np.allclose(want_a, want_b)
    for revision, commit, want in ((None, main_commit, want_a), ("main", main_commit, want_a),
                                   ("v2.0", tag_commit, want_b), (tag_commit, tag_commit, want_b),
                                   (main_commit, main_commit, want_a)):
        model = tinyminilm.load(TINY, revision=revision)
        assert (model.source.repo_id, model.source.revision) == (TINY, commit), revision
        np.testing.assert_array_equal(model.encode(["which model?"]), want)
    loose = hf_cache(root, TINY, tiny_bert.make_folder(tmp_path / "c", "pooling_mode_cls_token", False), ref=None)
    assert tinyminilm.load(TINY, revision=loose.name).source.folder == loose  # a commit no ref names
    assert SentenceTransformer(TINY, revision="v2.0").source.revision == tag_commit


def test_a_local_folder_wins_over_the_id_it_is_named_like(tmp_path, offline, monkeypatch):
    root = offline(tmp_path / "hf")
    a, b = tiny_folders(tmp_path)
    hf_cache(root, TINY, a)
    (tmp_path / "acme").mkdir()
    shutil.copytree(b, tmp_path / TINY)
    monkeypatch.chdir(tmp_path)
    assert tinyminilm.load(TINY).source == hub.ModelSource(Path(TINY))  # ./acme/tiny-bert, a folder
    monkeypatch.chdir(tmp_path / "acme")
    assert tinyminilm.load(TINY).source.repo_id == TINY


def test_a_cross_encoder_by_id_and_its_short_name(model_dir, tmp_path, offline):
    root = offline(tmp_path / "hf")
    folder = cross_models.make_folder("no-key", model_dir, tmp_path / "ce")
    commit = hf_cache(root, "cross-encoder/ms-marco-MiniLM-L6-v2", folder).name
    pairs = [("how many people live in berlin?", "Berlin has 3.5 million people.")]
    want = CrossEncoder(folder).predict(pairs)
    for name in ("ms-marco-MiniLM-L6-v2", "cross-encoder/ms-marco-MiniLM-L6-v2"):  # a bare name: cross-encoder/
        model = CrossEncoder(name, revision=commit)
        snapshot = root / "models--cross-encoder--ms-marco-MiniLM-L6-v2" / "snapshots" / commit
        assert model.source == hub.ModelSource(snapshot, "cross-encoder/ms-marco-MiniLM-L6-v2", commit)
        assert repr(model).startswith(f"CrossEncoder('cross-encoder/ms-marco-MiniLM-L6-v2', revision='{commit}'")
        np.testing.assert_array_equal(model.predict(pairs), want)
    # the command line takes the same id and revision
    assert main(["rerank", pairs[0][0], pairs[0][1], "--model", "ms-marco-MiniLM-L6-v2", "--revision", commit,
                 "--json"]) == 0
    assert main(["rerank", pairs[0][0], pairs[0][1], "--model", "ms-marco-MiniLM-L6-v2", "--revision", "no-such",
                 "--json"]) == 2


def test_the_cache_is_where_huggingface_hub_puts_it(tmp_path, monkeypatch):
    for var in ("HF_HUB_CACHE", "HUGGINGFACE_HUB_CACHE", "HF_HOME", "XDG_CACHE_HOME"):
        monkeypatch.delenv(var, raising=False)
    monkeypatch.setenv("HOME", str(tmp_path / "home"))
    assert cache.cache_dir() == tmp_path / "home" / ".cache" / "huggingface" / "hub"
    monkeypatch.setenv("XDG_CACHE_HOME", str(tmp_path / "xdg"))
    assert cache.cache_dir() == tmp_path / "xdg" / "huggingface" / "hub"
    monkeypatch.setenv("HF_HOME", str(tmp_path / "hf-home"))
    assert cache.cache_dir() == tmp_path / "hf-home" / "hub"
    monkeypatch.setenv("HF_HUB_CACHE", str(tmp_path / "hub-cache"))
    assert cache.cache_dir() == tmp_path / "hub-cache"
    assert cache.cache_dir(tmp_path / "given") == tmp_path / "given"  # cache_folder= wins
    assert hub.hf_cache_snapshot() == (tmp_path / "hub-cache" / "models--sentence-transformers--all-MiniLM-L6-v2"
                                       / "snapshots" / hub.REVISION)  # the pinned model is looked for there too


# --------------------------------------------------------------------------------------------------------------
# When the cache does not hold the model: one error that says where, why, and how to fetch it
# --------------------------------------------------------------------------------------------------------------

def test_an_id_not_in_the_cache_offline_says_so_and_how_to_fetch_it(tmp_path, offline, capsys):
    root = offline(tmp_path / "hf")
    with pytest.raises(DownloadError) as e:
        tinyminilm.load("acme/absent")
    assert str(e.value) == (
        f"acme/absent (revision main) is not in the Hugging Face cache {root}: it has no folder models--acme--absent. "
        "HF_HUB_OFFLINE is set, so it was not downloaded: fetch it with `tinyminilm download acme/absent` (or "
        "huggingface_hub's `hf download acme/absent`) on a machine with access to the Hub (into this cache), or unset "
        "HF_HUB_OFFLINE")
    with pytest.raises(DownloadError, match=r"acme/absent \(revision v9\).*`tinyminilm download acme/absent "
                                            r"--revision v9`"):
        SentenceTransformer("acme/absent", revision="v9")
    assert main(["embed", "--model", "acme/absent", "x"]) == 2
    out, err = capsys.readouterr()
    assert out == "" and err.startswith("tinyminilm: error: acme/absent (revision main) is not in the Hugging Face "
                                        f"cache {root}") and err.count("\n") == 1


def test_local_files_only_is_named_as_the_reason(tmp_path, monkeypatch):
    monkeypatch.delenv("HF_HUB_OFFLINE", raising=False)
    with pytest.raises(DownloadError, match=r"local_files_only=True is set, so it was not downloaded: .* or pass "
                                            r"local_files_only=False$"):
        tinyminilm.load("acme/absent", cache_folder=tmp_path, local_files_only=True)


def test_an_incomplete_snapshot_is_not_loaded(tmp_path, offline):
    """A snapshot missing a file the model needs (an interrupted download, or one by a tool that fetched only some
    files) is passed over: offline, that is the error; online, the Hub completes it (test_hub_fetch.py)."""
    root = offline(tmp_path / "hf")
    folder = tiny_folders(tmp_path)[0]
    for lost in ("tokenizer.json", "1_Pooling/config.json", "model.safetensors", "config.json"):
        shutil.rmtree(root, ignore_errors=True)
        snapshot = hf_cache(root, TINY, folder)
        (snapshot / lost).unlink()
        with pytest.raises(DownloadError, match=rf"its snapshot of commit {snapshot.name} lacks {lost}\. "
                                                "HF_HUB_OFFLINE is set"):
            tinyminilm.load(TINY)
    shutil.rmtree(root)
    snapshot = hf_cache(root, TINY, folder)
    (snapshot / "tokenizer.json").resolve().unlink()  # the blob is gone: a dangling symlink
    with pytest.raises(DownloadError, match="lacks tokenizer.json"):
        tinyminilm.load(TINY)


def test_a_normalize_module_without_a_file_is_complete(tmp_path, offline):
    """sentence-transformers before 6 saved the Normalize module as no file at all (2_Normalize/ is absent from
    all-MiniLM-L6-v2's repository): that snapshot is whole."""
    root = offline(tmp_path / "hf")
    folder = tiny_folders(tmp_path)[0]
    assert "2_Normalize" in (folder / "modules.json").read_text() and not (folder / "2_Normalize").exists()
    commit = hf_cache(root, TINY, folder).name
    assert tinyminilm.load(TINY).source.revision == commit


def test_refs_pointing_at_a_missing_snapshot(tmp_path, offline):
    root = offline(tmp_path / "hf")
    snapshot = hf_cache(root, TINY, tiny_folders(tmp_path)[0])
    shutil.rmtree(snapshot)
    with pytest.raises(DownloadError, match=rf": refs/main points at commit {snapshot.name}, but models--acme--"
                                            rf"tiny-bert has no snapshot of commit {snapshot.name}\. HF_HUB_OFFLINE"):
        tinyminilm.load(TINY)
    with pytest.raises(DownloadError, match=rf"\(revision {snapshot.name}\) .*: models--acme--tiny-bert has no "
                                            f"snapshot of commit {snapshot.name}"):
        tinyminilm.load(TINY, revision=snapshot.name)
    with pytest.raises(DownloadError, match="models--acme--tiny-bert has no refs/v2"):
        tinyminilm.load(TINY, revision="v2")
    (root / "models--acme--tiny-bert" / "refs" / "main").write_text("not a commit")
    with pytest.raises(DownloadError, match="refs/main holds 'not a commit', not a commit hash"):
        tinyminilm.load(TINY)


def test_weights_only_in_pytorch_model_bin_are_refused_by_name(tmp_path, offline):
    root = offline(tmp_path / "hf")
    folder = tiny_folders(tmp_path)[0]
    (folder / "model.safetensors").rename(folder / "pytorch_model.bin")  # its bytes: only the name matters here
    commit = hf_cache(root, TINY, folder).name
    with pytest.raises(ConfigError, match=rf"^{TINY} at revision main in the Hugging Face cache {root} has its "
                                          "weights only in pytorch_model.bin, not in model.safetensors: tinyminilm "
                                          "reads only safetensors weights"):
        tinyminilm.load(TINY)
    with pytest.raises(ConfigError, match=f"{TINY} at revision {commit} .* only in pytorch_model.bin"):
        SentenceTransformer(TINY, revision=commit)


@pytest.mark.parametrize("revision", ["../../etc", "/abs", ""])
def test_a_revision_that_leads_out_of_the_cache_is_refused(revision, offline):
    with pytest.raises(ValueError, match="is not a branch, tag or commit name"):
        tinyminilm.load(TINY, revision=revision)


# --------------------------------------------------------------------------------------------------------------
# The command line's other commands
# --------------------------------------------------------------------------------------------------------------

def test_info_reports_the_id_and_the_commit_and_never_downloads(tmp_path, offline, capsys, monkeypatch):
    root = offline(tmp_path / "hf")
    a, b = tiny_folders(tmp_path)
    main_commit, tag_commit = hf_cache(root, TINY, a).name, hf_cache(root, TINY, b, ref="v2.0").name
    assert main(["info", "--model", TINY]) == 0
    out = capsys.readouterr().out
    assert f"\nmodel           {TINY} at revision {main_commit}\n" in out
    assert f"\nfolder          {root / 'models--acme--tiny-bert' / 'snapshots' / main_commit}\n" in out
    assert "files match" not in out and "dimension       32" in out  # no SHA-256 manifest: not the pinned model
    assert main(["info", "--model", TINY, "--revision", "v2.0"]) == 0
    assert f"\nmodel           {TINY} at revision {tag_commit}\n" in capsys.readouterr().out
    monkeypatch.delenv("HF_HUB_OFFLINE")
    monkeypatch.setenv("HF_ENDPOINT", "http://127.0.0.1:9")  # would fail at once if info tried the Hub
    assert main(["info", "--model", "acme/absent"]) == 1
    out = capsys.readouterr().out
    assert ("model           acme/absent (revision main) is not in the Hugging Face cache" in out
            and "local_files_only=True is set" in out and "unreachable" not in out)


def test_info_of_the_pinned_model_names_its_id_and_revision(model_dir, capsys):
    assert main(["info", "--model", "all-MiniLM-L6-v2"]) == 0
    out = capsys.readouterr().out
    assert f"\nmodel           {hub.MODEL_ID} at revision {hub.REVISION}\n" in out and "9/9 files match" in out
    assert main(["info", "--model", "all-MiniLM-L6-v2", "--revision", "main"]) == 1
    assert "tinyminilm pins sentence-transformers/all-MiniLM-L6-v2 at revision" in capsys.readouterr().out


@pytest.mark.parametrize("command", ["embed", "search", "rerank", "dedup", "similarity", "explain", "info", "serve"])
def test_every_model_command_takes_an_id_and_a_revision(command):
    from tinyminilm.cli import build_parser

    sub = next(a for a in build_parser()._actions if a.dest == "command")
    actions = {s: a for a in sub.choices[command]._actions for s in a.option_strings}
    assert actions["--model"].help.startswith("a Hub id or a folder") and "--revision" in actions
    assert {"--revision", "--dir"} <= {s for a in sub.choices["download"]._actions for s in a.option_strings}
