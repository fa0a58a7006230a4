"""Porting sentence-transformers code is changing the import: `from tinyminilm import SentenceTransformer, util`.

The workflows of sentence-transformers' guides (computing embeddings with prompts, semantic search, clustering,
paraphrase mining), written here in our own words and run against this API, with results that can be checked by
hand; plus what the constructor and encode accept, honour or refuse.
"""

from __future__ import annotations

import json
import shutil

import numpy as np
import pytest

import tiny_bert
from tinyminilm import SentenceTransformer, util
from tinyminilm.errors import ConfigError, DownloadError


@pytest.fixture(scope="module")
def st(model_dir):
    return SentenceTransformer(str(model_dir))


# --------------------------------------------------------------------------------------------------------------
# Loading
# --------------------------------------------------------------------------------------------------------------

def test_short_name_full_id_and_folder_are_the_same_model(model_dir, st):
    text = "A man is eating food."
    want = st.encode(text)
    for name in ("all-MiniLM-L6-v2", "sentence-transformers/all-MiniLM-L6-v2", None):
        model = SentenceTransformer(name, cache_folder=model_dir.parent, local_files_only=True)
        np.testing.assert_array_equal(model.encode(text), want)


@pytest.mark.parametrize("name,match", [
    ("BAAI/bge-small-en-v1.5", r"^BAAI/bge-small-en-v1.5 \(revision main\) is not in the Hugging Face cache"),
    # the short name of another model means sentence-transformers/...
    ("all-mpnet-base-v2", r"^sentence-transformers/all-mpnet-base-v2 \(revision main\) is not in the Hugging Face"),
])
def test_other_models_are_hub_ids_looked_for_in_the_cache(name, match, tmp_path):
    """Other models were refused by name ("tinyminilm fetches only ..."); now they are looked for in the Hugging
    Face cache, and local_files_only=True means nothing is downloaded when they are not there (tests/test_hub_ids.py
    loads them)."""
    with pytest.raises(DownloadError, match=match) as e:
        SentenceTransformer(name, local_files_only=True, cache_folder=tmp_path)
    assert "local_files_only=True is set" in str(e.value)


def test_another_revision_of_the_pinned_model_is_refused_and_a_folder_ignores_revision(model_dir, st):
    """The pinned model has one revision; a folder has none, so revision changes nothing there, as in
    sentence-transformers (it was refused for any folder)."""
    with pytest.raises(ValueError, match="pins"):
        SentenceTransformer("all-MiniLM-L6-v2", revision="main")
    model = SentenceTransformer(str(model_dir), revision="main")
    np.testing.assert_array_equal(model.encode("hello"), st.encode("hello"))


def test_a_file_is_not_a_model_folder(model_dir):
    with pytest.raises(ConfigError, match="is a file"):
        SentenceTransformer(str(model_dir / "config.json"))


@pytest.mark.parametrize("kwargs,match", [
    ({"device": "cuda"}, "runs on the CPU"),
    ({"backend": "onnx"}, "no onnx backend"),
    ({"model_kwargs": {"torch_dtype": "float16"}}, "torch / transformers"),
    ({"tokenizer_kwargs": {"model_max_length": 64}}, "torch / transformers"),
    ({"default_prompt_name": "query_typo"}, "not one of the prompts"),
    ({"truncate_dim": 999}, "truncate_dim must be an integer from 1 to 384"),
])
def test_constructor_arguments_that_cannot_be_honoured_are_refused(model_dir, kwargs, match):
    with pytest.raises(ValueError, match=match):
        SentenceTransformer(str(model_dir), **kwargs)


def test_constructor_arguments_that_change_nothing_are_accepted(model_dir, st):
    model = SentenceTransformer(str(model_dir), device="cpu", trust_remote_code=True, token="hf_unused",
                                backend="torch", revision="c9745ed1d9f207416be6d2e6f8de32d1f16199bf")
    np.testing.assert_array_equal(model.encode("hello"), st.encode("hello"))


def test_constructor_truncate_dim_and_similarity_fn_name(model_dir, st):
    model = SentenceTransformer(str(model_dir), truncate_dim=128, similarity_fn_name="dot")
    emb = model.encode(["a cat", "a dog"])
    assert emb.shape == (2, 128)
    np.testing.assert_allclose(emb, st.encode(["a cat", "a dog"])[:, :128], atol=1e-7)
    np.testing.assert_allclose(model.similarity(emb, emb), emb @ emb.T, atol=1e-6)


# --------------------------------------------------------------------------------------------------------------
# encode's sentence-transformers keywords
# --------------------------------------------------------------------------------------------------------------

def test_encode_keywords_from_sentence_transformers(st):
    texts = ["first text", "second text"]
    want = st.encode(texts)
    tensor_like = st.encode(texts, convert_to_tensor=True, device="cpu", chunk_size=8)
    assert isinstance(tensor_like, np.ndarray)  # no torch: the same NumPy array, which util takes
    np.testing.assert_array_equal(tensor_like, want)
    with pytest.raises(ValueError, match="runs on the CPU"):
        st.encode(texts, device="cuda:0")
    with pytest.raises(ValueError, match="no multi-process pool"):
        st.encode(texts, pool={"processes": []})
    with pytest.raises(TypeError):
        st.encode(texts, not_an_option=True)


def test_query_and_document_encodings_equal_encode_without_prompts(st):
    """all-MiniLM-L6-v2 has no prompts: encode_query and encode_document give encode's vectors."""
    texts = ["How do I bake bread?", "Bread needs flour, water, salt and yeast."]
    want = st.encode(texts)
    assert st.prompts == {"query": "", "document": ""} and st.default_prompt_name is None
    np.testing.assert_array_equal(st.encode_query(texts), want)
    np.testing.assert_array_equal(st.encode_document(texts), want)


@pytest.fixture
def prompted(tmp_path):
    """A tiny model folder whose config_sentence_transformers.json names prompts, as e5-style models do."""
    folder = tiny_bert.make_folder(tmp_path / "m", "pooling_mode_mean_tokens", True)
    (folder / "config_sentence_transformers.json").write_text(json.dumps(
        {"prompts": {"query": "query: ", "passage": "passage: ", "cat": "the cat "}, "default_prompt_name": None,
         "similarity_fn_name": "cosine"}), encoding="utf-8")
    return folder


def test_prompts_from_the_model_folder(prompted):
    model = SentenceTransformer(str(prompted))
    texts = ["hello world", "the dog sat"]
    plain = model.encode(texts)
    np.testing.assert_array_equal(model.encode_query(texts), model.encode(["query: " + t for t in texts]))
    assert not np.allclose(model.encode_query(texts), plain)
    # "document" exists (empty) before "passage" is looked at, so encode_document adds nothing, as in
    # sentence-transformers 6.2 — unless the folder names a "document" prompt
    np.testing.assert_array_equal(model.encode_document(texts), plain)
    np.testing.assert_array_equal(model.encode(texts, prompt_name="passage"),
                                  model.encode(["passage: " + t for t in texts]))
    np.testing.assert_array_equal(model.encode(texts, prompt="the cat ", prompt_name="query"),  # prompt wins
                                  model.encode(["the cat " + t for t in texts]))
    np.testing.assert_array_equal(model.encode_query(texts, prompt_name="cat"), model.encode(texts, prompt_name="cat"))
    with pytest.raises(ValueError, match="prompt_name 'dooc' is not one of this model's prompts"):
        model.encode(texts, prompt_name="dooc")
    with pytest.raises(TypeError, match=r"texts\[1\] is NoneType"):
        model.encode_query(["fine", None])


def test_default_prompt_name_applies_to_encode(prompted):
    model = SentenceTransformer(str(prompted), default_prompt_name="cat", prompts={"cat": "a cat "})
    texts = ["hello world"]
    np.testing.assert_array_equal(model.encode(texts), model.encode(["a cat " + t for t in texts], prompt=""))
    np.testing.assert_array_equal(model.encode_query(texts), model.encode(["query: hello world"], prompt=""))


def test_a_pooling_that_leaves_prompts_out_pools_without_the_prompts_tokens(prompted):
    """include_prompt false (once refused, now run; tests/test_models.py holds it to sentence-transformers 6.2): the
    mean skips [CLS] and the prompt's tokens, which attention still sees."""
    pooling = json.loads((prompted / "1_Pooling" / "config.json").read_text(encoding="utf-8"))
    (prompted / "1_Pooling" / "config.json").write_text(json.dumps({**pooling, "include_prompt": False}))
    model = SentenceTransformer(str(prompted))
    np.testing.assert_array_equal(model.encode(["no prompt is fine"]), model.encode(["no prompt is fine"], prompt=""))
    texts = ["the cat sat", "a dog"]
    assert model.prompt_length("query: ") == 3  # [CLS] query : ([SEP] is the template's end, not the prompt's)
    tokens = model.encode(["query: " + t for t in texts], output_value="token_embeddings", prompt="")
    want = np.stack([t[3:].mean(axis=0) for t in tokens])
    want /= np.linalg.norm(want, axis=1, keepdims=True)  # the folder's Normalize module
    np.testing.assert_allclose(model.encode_query(texts), want, atol=1e-6)


# --------------------------------------------------------------------------------------------------------------
# The guides' workflows
# --------------------------------------------------------------------------------------------------------------

CORPUS = ["A man is eating food.", "A man is eating a piece of bread.", "The girl is carrying a baby.",
          "A man is riding a horse.", "A woman is playing violin.", "Two men pushed carts through the woods.",
          "A man is riding a white horse on an enclosed ground.", "A monkey is playing drums.",
          "A cheetah is running behind its prey."]


def test_semantic_search_workflow(st):
    corpus_embeddings = st.encode_document(CORPUS, convert_to_tensor=True)
    queries = ["Someone is eating a meal.", "A gorilla plays an instrument.", "A big cat chases an antelope."]
    query_embeddings = st.encode_query(queries, convert_to_tensor=True)
    hits = util.semantic_search(query_embeddings, corpus_embeddings, top_k=2)
    assert [h[0]["corpus_id"] for h in hits] == [0, 7, 8]
    # the same ranking from model.similarity and a top-k by hand, as the guide's second variant does
    scores = st.similarity(query_embeddings, corpus_embeddings)  # [3, 9]
    top = np.argsort(-scores, axis=1)[:, :2]
    assert top.tolist() == [[h["corpus_id"] for h in q] for q in hits]
    np.testing.assert_allclose([[h["score"] for h in q] for q in hits], np.take_along_axis(scores, top, 1),
                               atol=1e-6)
    dot_hits = util.semantic_search(util.normalize_embeddings(query_embeddings),
                                    util.normalize_embeddings(corpus_embeddings), top_k=2,
                                    score_function=util.dot_score)
    assert [[h["corpus_id"] for h in q] for q in dot_hits] == top.tolist()


def test_clustering_workflow(st):
    sentences = ["The cat sits on the mat.", "A cat is sitting on a mat.", "There is a cat on the mat.",
                 "Stocks fell sharply on Monday.", "The stock market dropped on Monday.",
                 "Stock prices fell on Monday morning.", "I like to play the guitar."]
    embeddings = st.encode(sentences, batch_size=4, show_progress_bar=False, convert_to_tensor=True)
    clusters = util.community_detection(embeddings, min_community_size=2, threshold=0.6)
    assert sorted(sorted(c) for c in clusters) == [[0, 1, 2], [3, 4, 5]]


def test_paraphrase_mining_workflow(st):
    sentences = ["The new movie is awesome", "The cat plays in the garden", "The new film is so great",
                 "A woman watches TV", "A man is playing guitar", "A man plays the guitar"]
    pairs = util.paraphrase_mining(st, sentences, top_k=3)
    best = sorted(pairs, key=lambda p: -p[0])[:2]
    assert {tuple(sorted(p[1:])) for p in best} == {(0, 2), (4, 5)}
    emb = st.encode(sentences)
    for score, i, j in pairs:
        assert abs(score - float(util.cos_sim(emb[i], emb[j])[0, 0])) <= 1e-6


def test_embedding_helpers_of_util(st):
    emb = st.encode(["one", "two", "three"])
    np.testing.assert_allclose(util.dot_score(util.normalize_embeddings(emb * 3), emb), util.cos_sim(emb, emb),
                               atol=1e-6)
    np.testing.assert_array_equal(util.truncate_embeddings(emb, 16), emb[:, :16])
    np.testing.assert_array_equal(util.pytorch_cos_sim(emb, emb), util.cos_sim(emb, emb))
    with pytest.raises(ValueError, match="truncate_dim"):
        util.truncate_embeddings(emb, 0)


def test_the_model_folder_can_be_copied_and_loaded_by_path(model_dir, tmp_path, st):
    copy = tmp_path / "my-model"
    shutil.copytree(model_dir, copy)
    np.testing.assert_array_equal(SentenceTransformer(str(copy)).encode("hello"), st.encode("hello"))


# --------------------------------------------------------------------------------------------------------------
# LoggingHandler, as sentence-transformers' examples install it
# --------------------------------------------------------------------------------------------------------------

COMPUTING_EMBEDDINGS = """
import logging
import numpy as np
from tinyminilm import LoggingHandler, SentenceTransformer   # the example's one changed line

np.set_printoptions(threshold=100)
logging.basicConfig(format="%(asctime)s - %(message)s", datefmt="%Y-%m-%d %H:%M:%S", level=logging.INFO,
                    handlers=[LoggingHandler()])
logging.getLogger(__name__).info("loading the model")
model = SentenceTransformer("all-MiniLM-L6-v2")
sentences = ["This framework generates embeddings for each input sentence",
             "Sentences are passed as a list of string.", "The quick brown fox jumps over the lazy dog."]
embeddings = model.encode(sentences)
for sentence, embedding in zip(sentences, embeddings):
    print("Sentence:", sentence)
    print("Embedding:", embedding.shape, embedding.dtype)
    print("")
"""


@pytest.mark.parametrize("tqdm_installed", [True, False])
def test_the_computing_embeddings_example_runs_with_only_the_import_changed(model_dir, tmp_path, tqdm_installed):
    """sentence-transformers' computing_embeddings example, its flow in our own words: logging through
    LoggingHandler, load by short name, encode, print — with tqdm, and without it (the handler then writes to
    stdout itself)."""
    import subprocess
    import sys

    script = tmp_path / "computing_embeddings.py"
    script.write_text(("import sys; sys.modules['tqdm'] = None\n" if not tqdm_installed else "")
                      + COMPUTING_EMBEDDINGS, encoding="utf-8")
    out = subprocess.run([sys.executable, str(script)], capture_output=True, text=True, timeout=300, cwd=tmp_path)
    assert out.returncode == 0, out.stderr
    lines = out.stdout.splitlines()
    assert lines[0].endswith(" - loading the model"), out.stdout  # the record, formatted, on stdout
    assert lines.count("Embedding: (384,) float32") == 3
    assert "Sentence: Sentences are passed as a list of string." in lines


def test_logging_handler_writes_through_tqdm(monkeypatch):
    import logging

    import tqdm

    from tinyminilm import LoggingHandler

    written = []
    monkeypatch.setattr(tqdm.tqdm, "write", classmethod(lambda cls, s, *a, **k: written.append(s)))
    logger = logging.getLogger("tinyminilm-test-logging-handler")
    handler = LoggingHandler()
    handler.setFormatter(logging.Formatter("%(levelname)s %(message)s"))
    logger.addHandler(handler)
    try:
        logger.warning("above the bar, not through it")
    finally:
        logger.removeHandler(handler)
    assert written == ["WARNING above the bar, not through it"]
