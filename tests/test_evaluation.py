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

import evaluation_cases as C
import numpy as np
import pytest

from tinyminilm import CrossEncoder, util
from tinyminilm.errors import ArgumentError, ArgumentTypeError
from tinyminilm.evaluation import (CrossEncoderRerankingEvaluator, EmbeddingSimilarityEvaluator,
                                   InformationRetrievalEvaluator, metrics)

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


@pytest.mark.parametrize("case", C.STS_CASES + C.STS_FIXED_CASES,
                         ids=[c["case"] for c in C.STS_CASES + C.STS_FIXED_CASES])
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


@pytest.fixture(scope="module")
def cross_encoders(model_dir, tmp_path_factory) -> dict:
    """tinyminilm.CrossEncoder on each variant CROSS_RERANK_CASES name, rebuilt as the golden script built it."""
    import cross_models as cm

    tmp = tmp_path_factory.mktemp("cross")
    variants = {c["variant"] for c in C.CROSS_RERANK_CASES}
    return {v: CrossEncoder(cm.make_folder(v, model_dir, tmp / v)) for v in variants}


@pytest.mark.parametrize("case", C.CROSS_RERANK_CASES, ids=[c["case"] for c in C.CROSS_RERANK_CASES])
def test_reranking_with_a_real_cross_encoder_matches_sentence_transformers(golden, cross_encoders, case, tmp_path):
    ev = CrossEncoderRerankingEvaluator(C.cross_rerank_samples(), **case["kwargs"])
    assert_matches(run_twice(ev, cross_encoders[case["variant"]], tmp_path), golden["reranking"][case["case"]])


# --------------------------------------------------------------------------------------------------------------
# Rules the golden cases rest on
# --------------------------------------------------------------------------------------------------------------

def fixed_evaluator(**kwargs) -> InformationRetrievalEvaluator:
    relevant = {q: set(d) for q, d in C.FIXED_RELEVANT.items()}
    return InformationRetrievalEvaluator(C.FIXED_QUERIES, C.FIXED_CORPUS, relevant, **kwargs)


def test_retrieval_results_do_not_depend_on_the_corpus_chunk_size():
    kwargs = {"score_functions": {"dot": util.dot_score, "cosine": util.cos_sim}, "accuracy_at_k": [1, 2],
              "precision_recall_at_k": [2, 5], "mrr_at_k": [3], "ndcg_at_k": [4], "map_at_k": [6]}
    runs = [fixed_evaluator(corpus_chunk_size=size, **kwargs)(FixedModel()) for size in (1, 2, 3, 5, 17, 18, 1000)]
    assert all(r == runs[0] for r in runs[1:])


def test_search_ranks_equal_scores_by_corpus_id_and_compute_metrics_scores_any_ranking():
    ev = fixed_evaluator(corpus_chunk_size=4)
    found = ev.search(FixedModel())["dot"]
    for hits in found:
        keys = [(-h["score"], h["corpus_id"]) for h in hits]
        assert keys == sorted(keys)
    assert [h["corpus_id"] for h in found[0][:4]] == ["e11", "e1", "e10", "e14"]  # e11 scores 4, then ids by str
    by_call = ev(FixedModel())
    assert {f"dot_{k.replace('@k', f'@{n}')}": v for k, d in ev.compute_metrics(found).items()
            for n, v in d.items()} == by_call


def test_precomputed_corpus_embeddings_and_a_second_corpus_model_give_the_same_results():
    ev = fixed_evaluator(corpus_chunk_size=5)
    expected = ev(FixedModel())
    vectors = FixedModel().encode(list(C.FIXED_CORPUS))
    assert ev(FixedModel(), corpus_embeddings=vectors) == expected
    assert ev(FixedModel(), corpus_model=FixedModel()) == expected
    with pytest.raises(ArgumentError, match=r"corpus_embeddings must have shape \[18, dim\]"):
        ev(FixedModel(), corpus_embeddings=vectors[:5])


def test_search_results_given_to_a_call_replace_its_search(tmp_path):
    class CountingModel(FixedModel):
        calls = 0

        def encode(self, sentences, **kwargs):
            CountingModel.calls += 1
            return super().encode(sentences, **kwargs)

        encode_query = encode_document = encode

    ev = fixed_evaluator(corpus_chunk_size=5, write_predictions=True)
    expected = ev(FixedModel(), output_path=str(tmp_path / "searched"))
    found = ev.search(FixedModel())
    assert ev(CountingModel(), output_path=str(tmp_path / "given"), search_results=found) == expected
    assert CountingModel.calls == 0
    assert ev.flatten_metrics({"dot": ev.compute_metrics(found["dot"])}) == expected
    for name in ("Information-Retrieval_evaluation_results.csv",
                 "Information-Retrieval_evaluation_predictions_dot.jsonl"):
        assert (tmp_path / "given" / name).read_bytes() == (tmp_path / "searched" / name).read_bytes()
    with pytest.raises(ArgumentError, match=r"search_results holds no hits for the score function\(s\) \['dot'\]"):
        ev(FixedModel(), search_results={"cosine": found["dot"]})


def test_a_reused_evaluator_follows_each_models_own_similarity(tmp_path):
    class CosineModel(FixedModel):
        similarity_fn_name = "cosine"

        def similarity(self, a, b):
            return util.cos_sim(a, b)

    ev = fixed_evaluator(name="x")
    assert next(iter(ev(FixedModel(), output_path=str(tmp_path)))) == "x_dot_accuracy@1"
    assert ev.primary_metric == "x_dot_ndcg@10"
    cosine = ev(CosineModel(), output_path=str(tmp_path))
    assert next(iter(cosine)) == "x_cosine_accuracy@1" and ev.primary_metric == "x_cosine_ndcg@10"
    header = (tmp_path / ev.csv_file).read_text().splitlines()[0]
    assert header.startswith("epoch,steps,dot-Accuracy@1")  # as sentence-transformers: the first header stays
    # search (what `tinyminilm evaluate` runs before the call) takes the model at hand's function, not the last one's
    assert list(ev.search(FixedModel())) == ["dot"] and list(ev.search(CosineModel())) == ["cosine"]


def test_a_failed_call_leaves_the_csv_as_it_was(tmp_path):
    ev = fixed_evaluator()
    ev(FixedModel(), output_path=str(tmp_path))
    before = (tmp_path / ev.csv_file).read_bytes()

    class Broken(FixedModel):
        def encode_document(self, sentences, **kwargs):  # fails on the corpus, after the queries
            raise RuntimeError("encoding failed")

    with pytest.raises(RuntimeError):
        ev(Broken(), output_path=str(tmp_path))
    assert (tmp_path / ev.csv_file).read_bytes() == before
    assert sorted(p.name for p in tmp_path.iterdir()) == [ev.csv_file]  # no temporary file left behind


def test_tie_averaged_ndcg_is_the_mean_over_every_order_of_the_ties():
    import itertools

    rng = np.random.default_rng(0)
    for _ in range(200):
        n = int(rng.integers(2, 7))
        scores = rng.integers(0, 3, n).astype(np.float32)
        relevant = rng.integers(0, 2, n)
        k = int(rng.integers(1, n + 2))
        values = []
        for perm in itertools.permutations(range(n)):  # every order that keeps the scores sorted
            if all(scores[perm[i]] >= scores[perm[i + 1]] for i in range(n - 1)):
                gains = relevant[list(perm)][:k]
                ideal = np.sort(relevant)[::-1][:k]
                values.append(0.0 if ideal.sum() == 0 else gains @ metrics.discounts(len(gains))
                              / (ideal @ metrics.discounts(len(ideal))))
        assert metrics.tie_averaged_ndcg(relevant, scores, k) == pytest.approx(np.mean(values), abs=1e-12)


def test_average_ranks_give_tied_values_the_mean_of_their_positions():
    rng = np.random.default_rng(1)
    for _ in range(100):
        x = rng.integers(0, 4, int(rng.integers(1, 12))).astype(float)
        positions = np.argsort(np.argsort(x, kind="stable"), kind="stable") + 1.0  # ordinal ranks
        expected = [positions[x == v].mean() for v in x]
        np.testing.assert_array_equal(metrics.average_ranks(x), expected)


def test_a_correlation_with_constant_input_is_an_error_not_nan():
    with pytest.raises(ArgumentError, match="scores is constant"):
        EmbeddingSimilarityEvaluator(["a", "b", "c"], ["d", "e", "f"], [1.0, 1.0, 1.0])
    ev = EmbeddingSimilarityEvaluator(["e1", "e2", "e4"], ["e1", "e2", "e4"], [1.0, 2.0, 3.0])
    with pytest.raises(ArgumentError, match="the model's dot similarities is constant"):
        ev(FixedModel())  # e1 . e1 = e2 . e2 = e4 . e4 = 9
    with pytest.raises(ArgumentError, match="scores holds NaN"):
        metrics.spearman([1.0, float("nan")], [1.0, 2.0], ("scores", "y"))


@pytest.mark.parametrize("kwargs, error, message", [
    ({"mrr_at_k": [10, 10]}, ArgumentError, "mrr_at_k lists k=10 more than once"),
    ({"ndcg_at_k": [0]}, ArgumentError, r"ndcg_at_k\[0\] must be a positive integer"),
    ({"map_at_k": []}, ArgumentError, "map_at_k must hold at least one k"),
    ({"accuracy_at_k": 5}, ArgumentTypeError, "accuracy_at_k must be a list"),
    ({"corpus_chunk_size": 0}, ArgumentError, "corpus_chunk_size must be a positive integer"),
    ({"score_functions": {"dot": "dot_score"}}, ArgumentTypeError, r"score_functions\['dot'\] must be a function"),
    ({"main_score_function": "dot_product"}, ArgumentError, "must be one of cosine, dot"),
    ({"relevant_docs": {"fq1": "e1"}}, ArgumentTypeError, r"relevant_docs\['fq1'\] must be a set of corpus ids"),
    ({"relevant_docs": {"fq6": set()}}, ArgumentError, "no query of `queries` has a relevant document"),
    ({"corpus": {}}, ArgumentError, "corpus is empty"),
    ({"corpus": {"a": "e1", 2: "e2"}}, ArgumentTypeError, "corpus ids must be comparable"),
    ({"queries": {"fq1": None}}, ArgumentTypeError, r"queries\['fq1'\] is NoneType, expected str"),
])
def test_retrieval_arguments_are_checked_by_name(kwargs, error, message):
    data = {"queries": C.FIXED_QUERIES, "corpus": C.FIXED_CORPUS,
            "relevant_docs": {q: set(d) for q, d in C.FIXED_RELEVANT.items()}}
    data.update({k: kwargs.pop(k) for k in list(kwargs) if k in data})
    with pytest.raises(error, match=message):
        InformationRetrievalEvaluator(**data, **kwargs)


@pytest.mark.parametrize("samples, message", [
    ([], "samples is empty"),
    ([{"query": "r1", "negative": ["c"]}], r"samples\[0\] has no 'positive' key"),
    ([{"query": "r1", "positive": ["a"], "negative": ["c"], "documents": ["c"]}], "exactly one of 'negative'"),
    ([{"query": "r1", "positive": ["a"], "negative": "c"}], r"samples\[0\]\['negative'\] must be a list of str"),
    ([{"query": "r1", "positive": ["a"], "negative": []}], r"samples\[0\] has only 1 candidate"),
    ([{"query": "r1", "positive": ["a"], "documents": []}], r"samples\[0\]\['documents'\] is empty"),
])
def test_reranking_samples_are_checked_by_index(samples, message):
    with pytest.raises((ArgumentError, ArgumentTypeError), match=message):
        CrossEncoderRerankingEvaluator(samples)


def test_reranking_refuses_a_model_without_one_score_per_pair_and_passes_prompt_name_only_when_set():
    samples = [C.RERANK_SAMPLES["r1"]]

    class TwoLabels(TableCrossEncoder):
        def predict(self, pairs, **kwargs):
            return np.zeros((len(pairs), 2), dtype=np.float32)

    with pytest.raises(ArgumentError, match=r"one number per pair \(5\), got shape \(5, 2\)"):
        CrossEncoderRerankingEvaluator(samples)(TwoLabels())
    model = TableCrossEncoder()
    CrossEncoderRerankingEvaluator(samples, batch_size=3)(model)
    CrossEncoderRerankingEvaluator(samples, prompt_name="query")(model)
    assert model.calls == [{"batch_size": 3, "convert_to_numpy": True, "show_progress_bar": False},
                           {"batch_size": 64, "convert_to_numpy": True, "show_progress_bar": False,
                            "prompt_name": "query"}]


def test_evaluation_imports_neither_torch_nor_scipy_nor_sklearn():
    import subprocess
    import sys

    code = ("import sys, tinyminilm.evaluation; heavy = {'torch', 'scipy', 'sklearn', 'sentence_transformers'}; "
            "print(sorted(heavy & set(sys.modules)))")
    assert subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True).stdout == "[]\n"
