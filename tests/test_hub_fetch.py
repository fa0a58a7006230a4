"""Models by Hub id fetched from the Hub into the Hugging Face cache, then loaded from it offline.

The Hub is a stand-in on 127.0.0.1 (tests/standin_hub.py) that huggingface_hub is pointed at with HF_ENDPOINT; the
cache is a temporary folder (HF_HUB_CACHE). Checked: only the files a model needs are fetched, into huggingface_hub's
own layout (so sentence-transformers finds them too), at the revision asked for, and the commit the Hub reported is
what ModelSource.revision records; a second load needs no Hub; `tinyminilm download ID` refreshes a branch that
moved; and each way the Hub can fail to give a model is one error naming the id and the revision.
"""

from __future__ import annotations

import logging
import shutil
from pathlib import Path

import numpy as np
import pytest

import tiny_bert
import tinyminilm
from model_fixtures import hf_cache
from standin_hub import StandInHub
from tinyminilm import ConfigError, DownloadError, hub
from tinyminilm.cli import main

TINY = "acme/tiny-bert"
COMMIT = "0123456789abcdef0123456789abcdef01234567"
NEWER = "fedcba9876543210fedcba9876543210fedcba98"
NEEDED = {"config.json", "modules.json", "sentence_bert_config.json", "1_Pooling/config.json", "tokenizer.json",
          "tokenizer_config.json", "vocab.txt", "model.safetensors"}  # every file of tiny_bert.make_folder


@pytest.fixture
def cache(tmp_path, monkeypatch) -> Path:
    """An empty Hugging Face cache (HF_HUB_CACHE), the Hub switched on, no proxy: the Hub path is taken."""
    for var in ("HF_HUB_OFFLINE", "TRANSFORMERS_OFFLINE", "HTTPS_PROXY", "https_proxy", "HTTP_PROXY", "http_proxy",
                "ALL_PROXY"):
        monkeypatch.delenv(var, raising=False)
    monkeypatch.setenv("HF_HOME", str(tmp_path / "hf-home"))  # huggingface_hub's own bookkeeping stays in tmp_path
    monkeypatch.setenv("HF_HUB_CACHE", str(tmp_path / "hf"))
    return tmp_path / "hf"


@pytest.fixture
def repo(tmp_path) -> Path:
    """A small model folder as a Hub repository holds it: with weights in other formats and files tinyminilm does not
    need beside the ones it does, so that fetching only the needed ones shows."""
    folder = tiny_bert.make_folder(tmp_path / "repo", "pooling_mode_mean_tokens", True, seed=1)
    (folder / "pytorch_model.bin").write_bytes(b"pickled torch weights, never fetched")
    (folder / "onnx").mkdir()
    (folder / "onnx" / "model.onnx").write_bytes(b"an onnx graph, never fetched")
    (folder / "README.md").write_text("# tiny-bert\n")
    return folder


def fetched(standin: StandInHub) -> set[str]:
    """The repository files the stand-in sent (GET), by path."""
    return {path.split("/resolve/", 1)[1].split("/", 1)[1] for method, path in standin.requests
            if method == "GET" and "/resolve/" in path}


@pytest.fixture
def standin(monkeypatch):
    """A running stand-in Hub, HF_ENDPOINT pointing at it, and a function for serving it: standin.add(...)."""
    hub_ = StandInHub()
    with hub_.serve() as url:
        monkeypatch.setenv("HF_ENDPOINT", url)
        hub_.url = url
        yield hub_


def test_a_model_is_fetched_by_id_into_the_cache_then_loaded_offline(repo, cache, standin, monkeypatch, caplog,
                                                                      capfd):
    standin.add(TINY, repo, COMMIT)
    with caplog.at_level(logging.INFO, logger="tinyminilm"):
        model = tinyminilm.load(TINY)
    snapshot = cache / "models--acme--tiny-bert" / "snapshots" / COMMIT
    assert model.source == hub.ModelSource(snapshot, TINY, COMMIT)  # the commit the Hub reported
    assert fetched(standin) == NEEDED  # not pytorch_model.bin, onnx/, README.md
    assert (cache / "models--acme--tiny-bert" / "refs" / "main").read_text() == COMMIT
    messages = [r.getMessage() for r in caplog.records if r.name == "tinyminilm"]
    size = sum((repo / name).stat().st_size for name in NEEDED) / 1e6
    assert messages == [f"downloading {TINY} at revision main (commit {COMMIT[:12]}): 8 files, {size:.1f} MB, from "
                        f"the Hugging Face Hub ({standin.url}/{TINY}) into {cache}",
                        f"{TINY} at commit {COMMIT} is in {snapshot}"]
    assert capfd.readouterr() == ("", "")  # nothing printed, not even huggingface_hub's bars (no terminal)
    want = tinyminilm.load(repo).encode(["fetched"])
    np.testing.assert_array_equal(model.encode(["fetched"]), want)

    from huggingface_hub import try_to_load_from_cache  # the same copy huggingface_hub (sentence-transformers) reads

    assert try_to_load_from_cache(TINY, "config.json", cache_dir=cache) == str(snapshot / "config.json")
    standin.requests.clear()
    monkeypatch.setenv("HF_HUB_OFFLINE", "1")
    again = tinyminilm.load(TINY)
    assert again.source == model.source and standin.requests == []
    np.testing.assert_array_equal(again.encode(["fetched"]), want)


def test_a_tag_or_a_commit_is_fetched_and_the_commit_recorded(repo, cache, standin):
    standin.add(TINY, repo, COMMIT, refs=("main", "v1.0"))
    assert tinyminilm.load(TINY, revision="v1.0").source.revision == COMMIT
    assert (cache / "models--acme--tiny-bert" / "refs" / "v1.0").read_text() == COMMIT
    shutil.rmtree(cache)
    assert tinyminilm.load(TINY, revision=COMMIT).source.revision == COMMIT  # a commit needs no ref


def test_the_hub_completes_an_incomplete_snapshot(repo, cache, standin):
    snapshot = hf_cache(cache, TINY, repo, revision=COMMIT)
    (snapshot / "tokenizer.json").resolve().unlink()  # an interrupted download: neither the blob
    (snapshot / "tokenizer.json").unlink()  # nor the link
    standin.add(TINY, repo, COMMIT)
    assert tinyminilm.load(TINY).source == hub.ModelSource(snapshot, TINY, COMMIT)
    assert fetched(standin) == {"tokenizer.json"}  # the rest was there already


def test_a_cached_branch_is_used_as_it_is_and_download_refreshes_it(repo, cache, standin, tmp_path, capsys):
    standin.add(TINY, repo, COMMIT)
    assert main(["download", TINY]) == 0
    out, err = capsys.readouterr()
    assert out == f"{TINY} at commit {COMMIT} in {cache / 'models--acme--tiny-bert' / 'snapshots' / COMMIT}\n"
    assert err.startswith(f"tinyminilm: downloading {TINY} at revision main (commit {COMMIT[:12]}): 8 files, ")
    newer = tiny_bert.make_folder(tmp_path / "newer", "pooling_mode_mean_tokens", True, seed=2)
    standin.add(TINY, newer, NEWER)  # main moved on the Hub
    standin.requests.clear()
    assert tinyminilm.load(TINY).source.revision == COMMIT and standin.requests == []  # the cache is read first
    assert main(["download", TINY]) == 0 and f"{TINY} at commit {NEWER} in " in capsys.readouterr().out
    model = tinyminilm.load(TINY)
    assert model.source.revision == NEWER
    np.testing.assert_array_equal(model.encode(["moved"]), tinyminilm.load(newer).encode(["moved"]))
    assert main(["download", TINY, "--revision", "main", "--dir", str(tmp_path / "other")]) == 0  # another cache
    assert capsys.readouterr().out.startswith(f"{TINY} at commit {NEWER} in {tmp_path / 'other'}")


def test_a_missing_repository_or_revision_is_named(repo, cache, standin):
    standin.add(TINY, repo, COMMIT)
    with pytest.raises(DownloadError) as e:
        tinyminilm.load("acme/absent")
    assert str(e.value).startswith(
        f"acme/absent (revision main) is not in the Hugging Face cache {cache}: it has no folder models--acme--absent; "
        f"and the Hub could not provide it: the Hub ({standin.url}) has no model acme/absent that this machine may "
        "read: check the id, or log in for a private or gated model")
    with pytest.raises(DownloadError, match=rf"the Hub could not provide it: {TINY} has no revision 'v9' on the Hub"):
        tinyminilm.load(TINY, revision="v9")


def test_weights_only_in_pytorch_model_bin_are_refused_before_anything_is_fetched(repo, cache, standin):
    (repo / "model.safetensors").unlink()
    standin.add(TINY, repo, COMMIT)
    with pytest.raises(ConfigError, match=rf"^{TINY} at revision main \(commit {COMMIT}\) on the Hub has its weights "
                                          "only in pytorch_model.bin, not in model.safetensors: tinyminilm reads "
                                          "only safetensors weights"):
        tinyminilm.load(TINY)
    assert fetched(standin) == set()


def test_a_repository_without_a_needed_file_is_refused(repo, cache, standin):
    (repo / "tokenizer.json").unlink()
    standin.add(TINY, repo, COMMIT)
    with pytest.raises(ConfigError, match=rf"{TINY} at revision main \(commit {COMMIT}\) on the Hub has no "
                                          "tokenizer.json: it is not a sentence-transformers model tinyminilm can run"):
        tinyminilm.load(TINY)
    assert fetched(standin) == set()


def test_a_module_folder_the_repository_lacks_is_refused(repo, cache, standin):
    standin.add(TINY, repo, COMMIT, skip=("1_Pooling/config.json",))
    with pytest.raises(ConfigError, match=rf"{TINY} at revision main \(commit {COMMIT}\) has no 1_Pooling/config.json "
                                          "on the Hub, which its modules.json names"):
        tinyminilm.load(TINY)


def test_an_unreachable_hub_fails_at_once_saying_how_to_fetch(cache, monkeypatch):
    import huggingface_hub

    def must_not_run(*a, **k):
        raise AssertionError("huggingface_hub was called although the Hub's host is unreachable")

    monkeypatch.setattr(huggingface_hub, "snapshot_download", must_not_run)
    monkeypatch.setattr(huggingface_hub, "HfApi", must_not_run)
    monkeypatch.setenv("HF_ENDPOINT", "http://127.0.0.1:9")  # the discard port: nothing listens there
    with pytest.raises(DownloadError) as e:
        tinyminilm.load(TINY)
    assert str(e.value).startswith(f"{TINY} (revision main) is not in the Hugging Face cache {cache}: it has no "
                                   "folder models--acme--tiny-bert; and the Hub could not provide it: 127.0.0.1:9 is "
                                   "unreachable")
    assert str(e.value).endswith(f"Fetch it with `tinyminilm download {TINY}` (or huggingface_hub's `hf download "
                                 f"{TINY}`) where the Hub is reachable (into this cache), or copy that model's folder "
                                 "here and pass its path")


def test_download_of_a_folder_is_refused(tmp_path, capsys):
    assert main(["download", str(tmp_path)]) == 2
    assert "is a path, not a Hub id" in capsys.readouterr().err
