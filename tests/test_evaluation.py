"""tinyminilm.evaluation against sentence-transformers' own evaluators (tests/golden/evaluation.json), and its rules.

The golden file is written by scripts/make_golden_eval.py (sentence-transformers 6.2.0, the versions are in the
file) on the data of tests/evaluation_cases.py; regenerate it with
`/work/refvenv/bin/python scripts/make_golden_eval.py` after changing the data. Every case is run twice into one
output folder, as the script ran it: the result keys (in order) and primary_metric must be identical, every value
within 1e-6, the CSV and predictions files identical in layout (header, columns, line endings, ids in order) with
numbers within 1e-6. The script made sure no two differently relevant documents score within 1e-5 of each other,
so rounding (tinyminilm's vectors differ from torch's by ~1e-7) cannot reorder what the metrics see.
"""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest

import evaluation_cases as C
from tinyminilm import util
from tinyminilm.errors import ArgumentError, ArgumentTypeError
from tinyminilm.evaluation import (CrossEncoderRerankingEvaluator, EmbeddingSimilarityEvaluator,
                                   InformationRetrievalEvaluator)
from tinyminilm.evaluation import metrics

GOLDEN = Path(__file__).parent / "golden" / "evaluation.json"
TOL = 1e-6
FUNCTIONS = {"cosine": util.cos_sim, "dot": util.dot_score}


@pytest.fixture(scope="module")
def golden() -> dict:
    g = json.loads(GOLDEN.read_text(encoding="utf-8"))
    assert g["data_sha256"] == C.data_hash(), ("tests/evaluation_cases.py changed since the golden file was written; "
                                               "rerun /work/refvenv/bin/python scripts/make_golden_eval.py")
    return g


class FixedModel:
    """The stand-in of scripts/make_golden_eval.py: each text names a preset vector of FIXED_VECTORS."""

    similarity_fn_name = C.FIXED_SIMILARITY_FN_NAME

    def encode(self, sentences, prompt_name=None, prompt=None, truncate_dim=None, normalize_embeddings=False,
               precision="float32", **kwargs):
        v = np.array([C.FIXED_VECTORS[s] for s in sentences], dtype=np.float32)[:, :truncate_dim]
        if normalize_embeddings:
            v = util.normalize_embeddings(v)
        return v if precision == "float32" else util.quantize_embeddings(v, precision)

    encode_query = encode_document = encode

    def similarity(self, a, b):
        return util.dot_score(a, b)


class TableCrossEncoder:
    """A stand-in cross-encoder whose predict() reads RERANK_TABLE[query][document]."""

    def __init__(self) -> None:
        self.calls = []

    def predict(self, pairs, **kwargs):
        self.calls.append(kwargs)
        return np.array([C.RERANK_TABLE[q][d] for q, d in pairs], dtype=np.float32)


class CosineCrossEncoder:
    """A stand-in cross-encoder scoring a pair by the cosine of the encoder's embeddings of its two texts."""

    def __init__(self, model) -> None:
        self.model = model

    def predict(self, pairs, **kwargs):
        q = self.model.encode([p[0] for p in pairs])
        d = self.model.encode([p[1] for p in pairs])
        return util.pairwise_cos_sim(q, d)


def run_twice(evaluator, model, out: Path) -> dict:
    first = evaluator(model, output_path=str(out), epoch=-1, steps=-1)
    primary = evaluator.primary_metric
    second = evaluator(model, output_path=str(out), epoch=1, steps=10)
    assert second == first and evaluator.primary_metric == primary
    return {"results": first, "primary_metric": primary, "csv_file": evaluator.csv_file,
            "files": {p.name: p.read_bytes().decode("utf-8") for p in sorted(out.iterdir())}}


def close(a: str, b: str) -> bool:
    """Two CSV fields: equal text, or both numbers within TOL."""
    if a == b:
        return True
    try:
        return abs(float(a) - float(b)) <= TOL
    except ValueError:
        return False


def assert_file_matches(ours: str, theirs: str, name: str) -> None:
    assert ours.count("\r\n") == theirs.count("\r\n"), f"{name}: line endings differ"
    ours_lines, their_lines = ours.splitlines(), theirs.splitlines()
    assert len(ours_lines) == len(their_lines), name
    if name.endswith(".jsonl"):
        for o, t in zip(map(json.loads, ours_lines), map(json.loads, their_lines)):
            assert (o["query_id"], o["query"]) == (t["query_id"], t["query"])
            assert [h["corpus_id"] for h in o["results"]] == [h["corpus_id"] for h in t["results"]], o["query_id"]
            np.testing.assert_allclose([h["score"] for h in o["results"]], [h["score"] for h in t["results"]],
                                       atol=TOL, rtol=0)
        return
    assert ours_lines[0] == their_lines[0], f"{name}: header differs"
    for o, t in zip(ours_lines[1:], their_lines[1:]):
        o_fields, t_fields = o.split(","), t.split(",")
        assert len(o_fields) == len(t_fields) and o_fields[:2] == t_fields[:2], (name, o, t)
        assert all(close(x, y) for x, y in zip(o_fields, t_fields)), (name, o, t)


def assert_matches(ours: dict, theirs: dict) -> None:
    assert list(ours["results"]) == list(theirs["results"])  # same keys, same order
    diffs = {k: abs(ours["results"][k] - v) for k, v in theirs["results"].items()}
    assert max(diffs.values()) <= TOL, {k: d for k, d in diffs.items() if d > TOL}
    assert all(isinstance(v, float) for v in ours["results"].values())
    assert ours["primary_metric"] == theirs["primary_metric"]
    assert ours["csv_file"] == theirs["csv_file"]
    assert sorted(ours["files"]) == sorted(theirs["files"])
    for name, text in theirs["files"].items():
        assert_file_matches(ours["files"][name], text, name)


def ir_kwargs(case: dict) -> dict:
    kwargs = dict(case["kwargs"])
    if "score_functions" in kwargs:
        kwargs["score_functions"] = {n: FUNCTIONS[n] for n in kwargs["score_functions"]}
    return kwargs


# --------------------------------------------------------------------------------------------------------------
# Against sentence-transformers
# --------------------------------------------------------------------------------------------------------------

@pytest.mark.parametrize("case", C.TEXT_CASES, ids=[c["case"] for c in C.TEXT_CASES])
def test_retrieval_with_the_model_matches_sentence_transformers(golden, model, case, tmp_path, monkeypatch):
    for key, prompt in case.get("prompts", {}).items():
        monkeypatch.setitem(model.prompts, key, prompt)
    relevant = {q: set(d) for q, d in C.TEXT_RELEVANT.items()}
    ev = InformationRetrievalEvaluator(C.TEXT_QUERIES, C.TEXT_CORPUS, relevant, **ir_kwargs(case))
    assert_matches(run_twice(ev, model, tmp_path), golden["information_retrieval"][case["case"]])


@pytest.mark.parametrize("case", C.FIXED_CASES, ids=[c["case"] for c in C.FIXED_CASES])
def test_retrieval_on_preset_vectors_ranks_ties_as_sentence_transformers(golden, case, tmp_path):
    relevant = {q: set(d) for q, d in C.FIXED_RELEVANT.items()}
    ev = InformationRetrievalEvaluator(C.FIXED_QUERIES, C.FIXED_CORPUS, relevant, **ir_kwargs(case))
    assert_matches(run_twice(ev, FixedModel(), tmp_path), golden["information_retrieval"][case["case"]])


@pytest.mark.parametrize("case", C.STS_CASES + C.STS_FIXED_CASES, ids=[c["case"] for c in C.STS_CASES + C.STS_FIXED_CASES])
def test_similarity_matches_sentence_transformers(golden, model, case, tmp_path):
    pairs, scorer = (C.STS_PAIRS, model) if case in C.STS_CASES else (C.STS_FIXED_PAIRS, FixedModel())
    s1, s2, gold = (list(x) for x in zip(*pairs))
    ev = EmbeddingSimilarityEvaluator(s1, s2, gold, **case["kwargs"])
    assert_matches(run_twice(ev, scorer, tmp_path), golden["similarity"][case["case"]])


@pytest.mark.parametrize("case", C.RERANK_CASES, ids=[c["case"] for c in C.RERANK_CASES])
def test_reranking_with_ties_matches_sentence_transformers(golden, case, tmp_path):
    ev = CrossEncoderRerankingEvaluator([C.RERANK_SAMPLES[s] for s in case["samples"]], **case["kwargs"])
    assert_matches(run_twice(ev, TableCrossEncoder(), tmp_path), golden["reranking"][case["case"]])


@pytest.mark.parametrize("case", C.MINILM_RERANK_CASES, ids=[c["case"] for c in C.MINILM_RERANK_CASES])
def test_reranking_with_model_scores_matches_sentence_transformers(golden, model, case, tmp_path):
    ev = CrossEncoderRerankingEvaluator(C.minilm_rerank_samples(), **case["kwargs"])
    assert_matches(run_twice(ev, CosineCrossEncoder(model), tmp_path), golden["reranking"][case["case"]])
