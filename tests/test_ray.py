"""Ray Data integration: N actors on a local Ray instance give exactly the vectors of a single-process encode.

Runs on a local instance, `ray.init(num_cpus=2)`. Ray comes with the test extra (`pip install -e '.[test]'`);
where it cannot be installed, the Ray tests skip and say so.
"""

from __future__ import annotations

import faulthandler
import itertools
import json
import os
import subprocess
import sys

import numpy as np
import pytest

import pyarrow  # noqa: F401  (comes with ray[data]; the test extra installs both, so these tests always run)
import ray

from tinyminilm.integrations.ray import CorpusError, TinyMiniLMEmbedder, embed_corpus, read_embeddings  # noqa: E402

ADJECTIVES = ["red", "quiet", "old", "bright", "tiny", "heavy", "warm", "strange", "wooden", "distant"]
NOUNS = ["cat", "river", "engine", "garden", "letter", "mountain", "violin", "market", "storm", "lamp"]
VERBS = ["runs", "sleeps", "waits", "shines", "breaks", "sings", "falls", "turns", "grows", "burns",
         "moves", "rests", "glows", "drifts", "rings", "fades", "wakes", "shakes", "hums", "opens"]
TAILS = ["", " today", " near the bridge", " again and again", ", they said.", " at night?"]


def corpus(n: int) -> list[str]:
    """n distinct short texts, made deterministically from word combinations (3 to 7 words)."""
    combos = itertools.product(VERBS, NOUNS, ADJECTIVES)
    texts = [f"the {a} {noun} {verb}{TAILS[i % len(TAILS)]}" for i, (verb, noun, a) in enumerate(combos)]
    assert n <= len(texts) and len(set(texts[:n])) == n
    return texts[:n]


def run_embed_corpus(*args, timeout_s: float = 300, **kwargs) -> None:
    """embed_corpus, failing the test if it has not finished in timeout_s (a hang is a failure, not a stalled CI)."""
    import threading

    errors: list[BaseException] = []

    def target() -> None:
        try:
            embed_corpus(*args, **kwargs)
        except BaseException as e:  # re-raised in the test's thread
            errors.append(e)

    worker = threading.Thread(target=target, daemon=True)
    worker.start()
    worker.join(timeout_s)
    if worker.is_alive():
        pytest.fail(f"embed_corpus did not finish in {timeout_s:.0f} s: a Ray task is likely waiting for a CPU that "
                    "the actors hold")
    if errors:
        raise errors[0]


@pytest.fixture(scope="module")
def local_ray():
    faulthandler.dump_traceback_later(900, exit=True)  # a hung Ray run ends the test run with tracebacks, not CI's clock
    os.environ.setdefault("RAY_USAGE_STATS_ENABLED", "0")  # Ray would otherwise try to report usage over the network
    ray.init(num_cpus=2, include_dashboard=False)
    ray.data.DataContext.get_current().enable_progress_bars = False
    try:
        yield
    finally:
        ray.shutdown()
        faulthandler.cancel_dump_traceback_later()


def test_two_actors_match_single_process_encode(local_ray, model, model_dir, tmp_path):
    texts = corpus(2000)
    ids = 10_000 + 7 * np.arange(len(texts))  # not row numbers: rows must be matched by id, not by position
    src = tmp_path / "corpus.jsonl"
    with open(src, "w", encoding="utf-8") as f:
        for i, t in zip(ids.tolist(), texts):
            f.write(json.dumps({"id": i, "text": t}) + "\n")

    run_embed_corpus(src, tmp_path / "out", num_actors=2, batch_size=200, model=model_dir)

    assert list((tmp_path / "out").glob("*.parquet"))
    got_ids, got = read_embeddings(tmp_path / "out")
    assert got.dtype == np.float32 and got.shape == (2000, 384)
    assert len(np.unique(got_ids)) == 2000, "a row was written twice"
    assert set(got_ids.tolist()) == set(ids.tolist()), "a row was lost or an id changed"
    row_of = {int(i): r for r, i in enumerate(ids)}
    expected = model.encode(texts)[[row_of[int(i)] for i in got_ids]]  # single process, in the output's order
    diff = float(np.abs(got - expected).max())
    assert diff <= 1e-6, f"max abs diff {diff:.2e} between the Ray actors and model.encode"


@pytest.mark.parametrize("num_actors, blas_threads", [
    (2, None),  # the actors take both CPUs: the input is read first (listing Parquet files needs a CPU of its own)
    (1, 1),     # a CPU to spare: reading, embedding and writing stream side by side
])
def test_parquet_corpus_with_other_column_names(local_ray, model, model_dir, tmp_path, num_actors, blas_threads):
    import pyarrow as pa
    import pyarrow.parquet as pq

    texts = corpus(120)[::-1]
    ids = [f"doc-{i:03d}" for i in range(len(texts))]
    pq.write_table(pa.table({"key": ids, "body": texts, "extra": np.arange(len(texts))}), tmp_path / "c.parquet")

    run_embed_corpus(tmp_path / "c.parquet", tmp_path / "out", text_column="body", id_column="key",
                     num_actors=num_actors, blas_threads=blas_threads, batch_size=50, model=model_dir)

    got_ids, got = read_embeddings(tmp_path / "out", id_column="key")
    assert sorted(got_ids.tolist()) == sorted(ids)
    assert pq.read_schema(next((tmp_path / "out").glob("*.parquet"))).names == ["key", "embedding"]
    expected = model.encode(texts)[[ids.index(i) for i in got_ids]]
    assert float(np.abs(got - expected).max()) <= 1e-6


# ------------------------------------------------------------------------------------------------------------------
# Without a Ray instance: the callable class alone, and the checks made before any Ray work starts
# ------------------------------------------------------------------------------------------------------------------

def test_embedder_is_a_plain_callable(model, model_dir):
    embed = TinyMiniLMEmbedder(str(model_dir), keep_columns=["id"], encode_batch_size=4)
    texts = corpus(10)
    batch = {"id": np.arange(10), "text": np.array(texts, dtype=object), "other": np.zeros(10)}
    out = embed(batch)
    assert sorted(out) == ["embedding", "id"]
    np.testing.assert_array_equal(out["id"], batch["id"])
    assert out["embedding"].dtype == np.float32 and out["embedding"].shape == (10, 384)
    np.testing.assert_allclose(out["embedding"], model.encode(texts), atol=1e-6, rtol=0)
    assert sorted(TinyMiniLMEmbedder(str(model_dir))(batch)) == ["embedding", "id", "other", "text"]


def test_embedder_errors_name_the_column_and_row(model_dir):
    embed = TinyMiniLMEmbedder(str(model_dir), keep_columns=["id"])
    with pytest.raises(CorpusError, match="no column 'text'.*'body'"):
        embed({"id": np.arange(2), "body": np.array(["a", "b"], dtype=object)})
    with pytest.raises(CorpusError, match="holds None .*row 1.*id=7"):
        embed({"id": np.array([3, 7]), "text": np.array(["a", None], dtype=object)})
    with pytest.raises(Exception, match="does not exist on this node"):
        TinyMiniLMEmbedder("/nonexistent/model/folder")


def test_embedder_takes_the_names_load_takes(model, tmp_path, monkeypatch):
    """The short name resolved against the working directory ("does not exist on this node"): it is the default
    model, found on this node by the rule `tinyminilm.load` follows."""
    monkeypatch.chdir(tmp_path)
    texts = corpus(4)
    for name in ("all-MiniLM-L6-v2", "sentence-transformers/all-MiniLM-L6-v2", None):
        out = TinyMiniLMEmbedder(name)({"text": np.array(texts, dtype=object)})
        np.testing.assert_array_equal(out["embedding"], model.encode(texts))


def test_embedder_takes_a_hub_id_from_the_nodes_cache_and_never_downloads(tmp_path, monkeypatch):
    """A Hub id (and revision) is read from this node's Hugging Face cache with local_files_only=True: a node without
    the model says so, and how to fetch it, instead of downloading it in every actor."""
    import tiny_bert
    from model_fixtures import hf_cache

    import tinyminilm
    from tinyminilm import DownloadError

    monkeypatch.delenv("HF_HUB_OFFLINE", raising=False)
    monkeypatch.setenv("HF_ENDPOINT", "http://127.0.0.1:9")  # a download attempt would fail on this, not on the cache
    monkeypatch.setenv("HF_HUB_CACHE", str(tmp_path / "hf"))
    folder = tiny_bert.make_folder(tmp_path / "m", "pooling_mode_mean_tokens", True)
    commit = hf_cache(tmp_path / "hf", "acme/tiny-bert", folder, ref="v1").name
    texts = corpus(4)
    out = TinyMiniLMEmbedder("acme/tiny-bert", revision="v1")({"text": np.array(texts, dtype=object)})
    np.testing.assert_array_equal(out["embedding"], tinyminilm.load(folder).encode(texts))
    assert TinyMiniLMEmbedder("acme/tiny-bert", revision=commit).model.source.revision == commit
    with pytest.raises(DownloadError, match=r"acme/tiny-bert \(revision main\) is not in the Hugging Face cache .*"
                                            "local_files_only=True is set"):
        TinyMiniLMEmbedder("acme/tiny-bert")  # no refs/main on this node


def test_embedder_caps_blas_threads(model_dir):
    import threadpoolctl

    def blas_threads() -> set[int]:
        return {p["num_threads"] for p in threadpoolctl.threadpool_info() if p["user_api"] == "blas"}

    with threadpoolctl.threadpool_limits(limits=2, user_api="blas"):  # restores this process's pool on exit
        assert blas_threads() == {2}, "NumPy's BLAS must take 2 threads for this test to mean anything"
        embed = TinyMiniLMEmbedder(str(model_dir), blas_threads=1)
        assert blas_threads() == {1}
        assert getattr(embed.model, "threads", 1) == 1  # where encode runs batches concurrently, it stays at 1 too


def test_input_and_output_are_checked_before_ray_starts(model_dir, tmp_path):
    (tmp_path / "out").mkdir()
    (tmp_path / "out" / "old.parquet").write_bytes(b"")
    (tmp_path / "c.jsonl").write_text('{"id": 1, "text": "a"}\n')
    with pytest.raises(CorpusError, match="already exists"):
        embed_corpus(tmp_path / "c.jsonl", tmp_path / "out", model=model_dir)
    (tmp_path / "c.txt").write_text("a\n")
    with pytest.raises(CorpusError, match="JSONL or Parquet"):
        embed_corpus(tmp_path / "c.txt", tmp_path / "new", model=model_dir)
    (tmp_path / "b.jsonl").write_text('{"id": 1, "body": "a"}\n')
    with pytest.raises(CorpusError, match="no column 'text' .*'body'.*text_column="):
        embed_corpus(tmp_path / "b.jsonl", tmp_path / "new", model=model_dir)
    with pytest.raises(CorpusError, match="no such file"):
        embed_corpus(tmp_path / "missing.jsonl", tmp_path / "new", model=model_dir)


def test_importing_the_module_does_not_import_ray():
    code = "import sys, tinyminilm.integrations.ray; print('ray' in sys.modules)"
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True).stdout
    assert out.strip() == "False"
