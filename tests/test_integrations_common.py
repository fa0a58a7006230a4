"""What the three framework adapters share: one loaded model per process, the options, the missing-extra message."""

from __future__ import annotations

import subprocess
import sys
import textwrap
from pathlib import Path

import numpy as np
import pytest

from tinyminilm.integrations._common import EncodeOptions, shared_cross_encoder, shared_encoder
from tinyminilm.integrations.chroma import TinyMiniLMEmbeddingFunction
from tinyminilm.integrations.langchain import TinyMiniLMCrossEncoder, TinyMiniLMEmbeddings
from tinyminilm.integrations.llama_index import TinyMiniLMEmbedding, TinyMiniLMRerank


def test_adapters_share_one_loaded_model(model_dir):
    encoders = {id(TinyMiniLMEmbeddingFunction(model_dir).options.encoder()),
                id(TinyMiniLMEmbeddings(str(model_dir)).options.encoder()),
                id(TinyMiniLMEmbedding(Path(model_dir) / ".", batch_size=8)._options.encoder()),
                id(shared_encoder(model_dir))}
    assert len(encoders) == 1
    two = shared_encoder(model_dir, threads=2)
    assert id(two) not in encoders and two.threads == 2 and shared_encoder(model_dir, 2) is two


def test_rerankers_share_one_loaded_cross_encoder_per_settings(cross_folder, monkeypatch):
    folder = cross_folder("no-key")
    one = shared_cross_encoder(folder)
    monkeypatch.chdir(folder.parent)  # a relative name of the same folder is the same model
    assert TinyMiniLMCrossEncoder(folder.name).model is one
    assert TinyMiniLMCrossEncoder(folder, activation_fn="identity", batch_size=4).model is one  # per-call options
    assert TinyMiniLMRerank(model=folder / ".", trust_remote_code=False)._model is one
    assert one.folder == folder.resolve() and one.threads == shared_cross_encoder(folder).threads
    trusting = TinyMiniLMRerank(model=folder)._model  # SentenceTransformerRerank's trust_remote_code=True
    short, two = shared_cross_encoder(folder, max_length=64), shared_cross_encoder(folder, threads=2)
    assert len({id(one), id(trusting), id(short), id(two)}) == 4
    assert (short.max_length, two.threads) == (64, 2) and shared_cross_encoder(folder, max_length=64) is short
    assert TinyMiniLMCrossEncoder(folder, threads=2).model is two


@pytest.mark.parametrize("options, error, message", [
    (dict(batch_size=0), ValueError, "batch_size must be a positive integer, got 0"),
    (dict(batch_size=True), ValueError, "batch_size must be a positive integer, got True"),
    (dict(threads=1.5), ValueError, "threads must be a positive integer, got 1.5"),
    (dict(truncate_dim=0), ValueError, "truncate_dim must be a positive integer, got 0"),
    (dict(normalize_embeddings="yes"), TypeError, "normalize_embeddings must be True or False, got 'yes'"),
    (dict(model=3), TypeError, "model must be the path of a model folder (str or Path) or None, got int"),
])
def test_bad_options_name_the_argument(options, error, message):
    for adapter in (TinyMiniLMEmbeddingFunction, TinyMiniLMEmbeddings, TinyMiniLMEmbedding):
        with pytest.raises(error) as e:
            adapter(**options)
        assert str(e.value) == message


def test_adapters_accept_the_short_name_as_load_does(model_dir, tmp_path, monkeypatch):
    """`tinyminilm.load("all-MiniLM-L6-v2")` works, so the adapters take that name too — from any cwd (it was
    resolved against the working directory: "ConfigError: model '<cwd>/all-MiniLM-L6-v2': no such folder")."""
    import tinyminilm

    monkeypatch.chdir(tmp_path)
    want = shared_encoder(model_dir)
    for name in ("all-MiniLM-L6-v2", tinyminilm.MODEL_ID):
        assert TinyMiniLMEmbeddingFunction(name).options.encoder() is want
        assert TinyMiniLMEmbeddings(name).options.encoder() is want
        assert TinyMiniLMEmbedding(name)._options.encoder() is want
    chroma = TinyMiniLMEmbeddingFunction("all-MiniLM-L6-v2")
    assert chroma.get_config()["model"] is None  # persisted as the default model, not as a path
    np.testing.assert_array_equal(chroma(["a cat"])[0], want.encode("a cat"))
    assert TinyMiniLMEmbeddings("all-MiniLM-L6-v2").embed_query("a cat") == want.encode("a cat").tolist()
    assert TinyMiniLMEmbedding("all-MiniLM-L6-v2").model_name == tinyminilm.MODEL_ID


def test_a_missing_folder_is_a_config_error(tmp_path):
    from tinyminilm.errors import ConfigError

    with pytest.raises(ConfigError, match="no such folder"):
        TinyMiniLMEmbeddings(tmp_path / "nowhere")


def test_options_are_stored_absolute_and_default_is_none(tmp_path, monkeypatch):
    import tinyminilm

    monkeypatch.chdir(tmp_path)
    (tmp_path / "m").mkdir()  # a relative folder (a bare name that is no folder here is a Hub id, as in `load`)
    assert EncodeOptions("m").model == str(tmp_path / "m")
    assert EncodeOptions(tinyminilm.MODEL_ID).model is None
    assert EncodeOptions("all-MiniLM-L6-v2").model is None  # not "<cwd>/all-MiniLM-L6-v2"
    with pytest.raises(ValueError, match=r"unknown keys \['device'\]"):
        EncodeOptions.from_config({"device": "cpu"})


@pytest.mark.parametrize("module, framework, extra", [
    ("chroma", "chromadb", "chroma"),
    ("langchain", "langchain_core", "langchain"),
    ("llama_index", "llama_index.core", "llama-index"),
])
def test_a_missing_framework_names_the_extra(module, framework, extra):
    # sys.modules[name] = None makes `import name` raise ImportError, as if the package were not installed
    script = textwrap.dedent(f"""
        import sys
        sys.modules[{framework!r}] = None
        try:
            import tinyminilm.integrations.{module}
        except ImportError as e:
            print(e)
        else:
            print("imported")
    """)
    done = subprocess.run([sys.executable, "-c", script], capture_output=True, text=True, timeout=120)
    assert done.returncode == 0, done.stderr[-2000:]
    assert done.stdout.startswith(f"tinyminilm.integrations.{module} needs {framework} (")
    assert done.stdout.rstrip().endswith(f"pip install 'tinyminilm[{extra}]'")


def test_importing_tinyminilm_imports_no_framework():
    script = ("import sys, tinyminilm, tinyminilm.integrations; "
              "print(sorted(m for m in ('chromadb', 'langchain_core', 'llama_index', 'onnxruntime') "
              "if m in sys.modules))")
    done = subprocess.run([sys.executable, "-c", script], capture_output=True, text=True, timeout=120)
    assert done.returncode == 0 and done.stdout.strip() == "[]", done.stdout + done.stderr[-2000:]
