"""tinyminilm.util against sentence-transformers' own util functions (tests/golden/util.npz), and its properties.

The golden file is written by scripts/make_golden_util.py (sentence-transformers 6.2.0, see util_versions.json);
regenerate it with `/root/refenv/bin/python scripts/make_golden_util.py`. Ranked results must have the same ids in
the same order and scores within 1e-6; only ids whose scores are equal within 1e-6 may come in another order
(tests/ranking.py says why).
"""

from __future__ import annotations

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from hypothesis.extra import numpy as hnp
from ranking import exact_ids, ranked_mismatch

from conftest import GOLDEN
from util_cases import COMMUNITY_CASES, MINING_CASES, SEARCH_CASES
from tinyminilm import util

TOL = 1e-6


@pytest.fixture(scope="module")
def gu() -> dict[str, np.ndarray]:
    with np.load(GOLDEN / "util.npz") as z:
        return dict(z)


@pytest.fixture(scope="module")
def data(gu, golden) -> dict[str, np.ndarray]:
    E = golden["embeddings"]
    _, first = np.unique(E, axis=0, return_index=True)  # as scripts/make_golden_util.py's unique_rows
    return {"E": E, "U": E[np.sort(first)], "R": gu["R"], "C": gu["C"]}


def rows(data, spec):
    name, a, b = spec
    return data[name][a:b]


def unragged(flat: np.ndarray, offsets: np.ndarray) -> list[list[int]]:
    return [flat[offsets[i]:offsets[i + 1]].tolist() for i in range(len(offsets) - 1)]


SIM_FUNCTIONS = {"cosine": "cos_sim", "dot": "dot_score", "euclidean": "euclidean_sim", "manhattan": "manhattan_sim"}


def with_fn(kw: dict) -> dict:
    kw = dict(kw)
    if "score_function" in kw:
        kw["score_function"] = getattr(util, kw["score_function"])
    return kw


# --------------------------------------------------------------------------------------------------------------
# Golden: similarity
# --------------------------------------------------------------------------------------------------------------

def assert_scores(got: np.ndarray, want: np.ndarray, name: str) -> None:
    """Within 1e-6 of unit-scale scores; scores of unnormalized vectors (dot products and distances on R reach
    ~20 and ~400) within 1e-6 relative to the largest, as float32 summation order differs from torch's; manhattan
    (a plain sum of 384 absolute values, no BLAS) within 2e-6."""
    assert got.dtype == np.float32 and got.shape == want.shape, (got.dtype, got.shape, want.shape)
    scale = max(1.0, float(np.abs(want).max()))
    err = float(np.abs(got - want).max()) / scale
    assert err <= 2 * TOL if name == "manhattan" else err <= TOL, f"{name}: max diff {err:.2e} (relative {scale})"


@pytest.mark.parametrize("key", ["E", "R"])
@pytest.mark.parametrize("name", list(SIM_FUNCTIONS))
def test_all_pairs_similarity_matches_sentence_transformers(gu, data, name, key):
    a, b = (data["E"][:40], data["E"][40:100]) if key == "E" else (data["R"][:20], data["R"][20:50])
    assert_scores(util.SIMILARITY_FUNCTIONS[name](a, b), gu[f"sim_{name}_{key}"], name)
    if key == "E":
        assert_scores(getattr(util, SIM_FUNCTIONS[name])(a, b), gu[f"util_{SIM_FUNCTIONS[name]}_E"], name)


@pytest.mark.parametrize("key", ["E", "R"])
@pytest.mark.parametrize("name", list(SIM_FUNCTIONS))
def test_pairwise_similarity_matches_sentence_transformers(gu, data, name, key):
    a, b = data[key][:50], data[key][50:100]
    assert_scores(util.PAIRWISE_SIMILARITY_FUNCTIONS[name](a, b), gu[f"pairwise_{name}_{key}"], name)


def test_similarity_accepts_lists_and_single_vectors(data):
    E = data["E"]
    np.testing.assert_array_equal(util.cos_sim(E[:3].tolist(), list(E[3:5])), util.cos_sim(E[:3], E[3:5]))
    assert util.cos_sim(E[0], E[1:4]).shape == (1, 3)
    assert util.pairwise_cos_sim(E[0], E[1]).shape == ()  # two vectors: one score, as a torch scalar
    assert util.dot_score(E[:2].astype(np.float64), E[:2]).dtype == np.float32  # float32 math, even for float64


def test_exact_distance_where_torch_expands(data):
    """A deliberate difference: torch.cdist computes p=2 as sqrt(|a|^2 + |b|^2 - 2ab) beyond 25 rows, so a
    vector's distance to itself comes out ~1e-3 instead of 0; ours is computed from the differences."""
    E = data["E"][:30]
    assert np.all(np.diag(util.euclidean_sim(E, E)) == 0)
    assert np.all(np.diag(util.manhattan_sim(E, E)) == 0)


# --------------------------------------------------------------------------------------------------------------
# Golden: search, mining, communities
# --------------------------------------------------------------------------------------------------------------

@pytest.mark.parametrize("case,q,c,kw", SEARCH_CASES, ids=[c[0] for c in SEARCH_CASES])
def test_semantic_search_matches_sentence_transformers(gu, data, case, q, c, kw):
    hits = util.semantic_search(rows(data, q), rows(data, c), **with_fn(kw))
    want_ids, want_scores = gu[f"{case}_ids"], gu[f"{case}_scores"]
    assert len(hits) == len(want_ids)
    exact = 0
    for n, (h, ids, scores) in enumerate(zip(hits, want_ids, want_scores)):
        got_ids, got_scores = [x["corpus_id"] for x in h], [x["score"] for x in h]
        assert all(type(i) is int for i in got_ids) and all(type(s) is float for s in got_scores)
        tol = TOL * max(1.0, float(np.abs(scores).max()))  # dot products and distances of R are not unit-scale
        why = ranked_mismatch(ids.tolist(), scores.tolist(), got_ids, got_scores, tol)
        assert why is None, f"query {n}: {why}"
        exact += exact_ids(ids, got_ids)
    if case.startswith("ss_R"):  # random vectors have no ties: the order is exactly sentence-transformers'
        assert exact == len(hits)


@pytest.mark.parametrize("case,e,kw", MINING_CASES, ids=[c[0] for c in MINING_CASES])
def test_paraphrase_mining_embeddings_matches_sentence_transformers(gu, data, case, e, kw):
    got = util.paraphrase_mining_embeddings(rows(data, e), **with_fn(kw))
    want = gu[case]
    assert all(type(s) is float and type(i) is int and type(j) is int and i < j for s, i, j in got)
    x = rows(data, e)
    fn = with_fn(kw).get("score_function", util.cos_sim)
    tol = TOL * max(1.0, float(np.abs(want[:, 0]).max()))
    why = ranked_mismatch([tuple(x) for x in want[:, 1:].astype(int)], want[:, 0].tolist(),
                          [(i, j) for _, i, j in got], [s for s, _, _ in got], tol,
                          score_of=lambda k: float(fn(x[k[0]], x[k[1]])[0, 0]))
    assert why is None, why
    if case.startswith("pm_R"):  # random vectors have no near-ties: exactly sentence-transformers' pairs
        assert exact_ids(want[:, 1:].astype(int), [(i, j) for _, i, j in got])


def test_paraphrase_mining_with_the_model_matches_sentence_transformers(gu, model, golden_texts):
    texts = [t["text"] for t in golden_texts[:40]]
    got = util.paraphrase_mining(model, texts, top_k=5)
    want = gu["pm_model"]
    why = ranked_mismatch([tuple(x) for x in want[:, 1:].astype(int)], want[:, 0].tolist(),
                          [(i, j) for _, i, j in got], [s for s, _, _ in got], TOL)
    assert why is None, why


@pytest.mark.parametrize("case,e,kw", COMMUNITY_CASES, ids=[c[0] for c in COMMUNITY_CASES])
def test_community_detection_matches_sentence_transformers(gu, data, case, e, kw):
    x = rows(data, e)
    got = util.community_detection(x, **kw)
    want = unragged(gu[f"{case}_flat"], gu[f"{case}_offsets"])
    assert [len(c) for c in got] == [len(c) for c in want]
    assert [c[0] for c in got] == [c[0] for c in want], "the same centres, in the same order"
    for g, w in zip(got, want):
        assert all(type(i) is int for i in g)
        sim = util.cos_sim(x[g[0]], x)[0]  # members after the centre: most similar first, ties in any order
        why = ranked_mismatch(w[1:], sim[w[1:]].tolist(), g[1:], sim[g[1:]].tolist(), TOL, cut=False)
        assert why is None, f"community of {g[0]}: {why}"


def test_exact_ties_rank_lower_ids_first():
    """Our one documented tie rule: equal scores list the lower index first, also at the top_k cut."""
    base = np.eye(4, dtype=np.float32)
    corpus = base[[2, 0, 1, 0, 3, 0, 0]]  # rows 1, 3, 5, 6 equal base[0]
    hits = util.semantic_search(base[0], corpus, top_k=3, corpus_chunk_size=2)
    assert [h["corpus_id"] for h in hits[0]] == [1, 3, 5]
    assert util.community_detection(corpus, threshold=0.9, min_community_size=2) == [[1, 3, 5, 6]]
    # each row's top_k=1 neighbour is the lowest other id among its equals
    pairs = [p[1:] for p in util.paraphrase_mining_embeddings(corpus, top_k=1) if p[0] > 0.5]
    assert pairs == [[1, 3], [1, 5], [1, 6]]


# --------------------------------------------------------------------------------------------------------------
# Golden: quantization
# --------------------------------------------------------------------------------------------------------------

@pytest.mark.parametrize("precision", ["int8", "uint8", "binary", "ubinary"])
def test_quantize_embeddings_matches_sentence_transformers(gu, data, precision):
    E = data["E"]
    cases = {"": util.quantize_embeddings(E[:150], precision),
             "_calibrated": util.quantize_embeddings(E[150:250], precision, calibration_embeddings=E[:150]),
             "_ranges": util.quantize_embeddings(E[:50], precision, ranges=gu["q_ranges"]),
             "_two_rows": util.quantize_embeddings(E[:2], precision),
             "_list": np.concatenate(util.quantize_embeddings([E[:3], E[3:10]], precision))}
    for suffix, got in cases.items():
        want = gu[f"q_{precision}{suffix}"]
        assert got.dtype == want.dtype and got.shape == want.shape, suffix
        np.testing.assert_array_equal(got, want, err_msg=suffix)


def test_quantize_float32_is_a_float32_copy(data):
    E = data["E"][:5]
    q = util.quantize_embeddings(E.astype(np.float64), "float32")
    assert q.dtype == np.float32 and np.array_equal(q, E)


def test_quantize_edge_cases(data):
    E = data["E"]
    assert util.quantize_embeddings([], "int8") == []
    assert util.quantize_embeddings(np.zeros((0, 384), np.float32), "int8").shape == (0, 384)
    assert util.quantize_embeddings(np.zeros((0, 384), np.float32), "ubinary").shape == (0, 48)
    assert util.quantize_embeddings(E[0], "ubinary").shape == (48,)  # one vector stays 1-D
    one = util.quantize_embeddings(E[0], "int8", calibration_embeddings=E)
    np.testing.assert_array_equal(one, util.quantize_embeddings(E, "int8")[0])
    with pytest.raises(ValueError, match="single embedding"):  # sentence-transformers refuses too
        util.quantize_embeddings(E[:1], "int8")
    with pytest.raises(TypeError, match="must be float"):
        util.quantize_embeddings(util.quantize_embeddings(E, "int8"), "int8")
    with pytest.raises(ValueError, match=r"ranges must have shape \(2, 384\)"):
        util.quantize_embeddings(E, "int8", ranges=np.zeros((2, 10)))
    with pytest.raises(ValueError, match="precision must be one of"):
        util.quantize_embeddings(E, "int4")
    with pytest.raises(ValueError, match="calibration_embeddings has 10 dimensions"):
        util.quantize_embeddings(E, "uint8", calibration_embeddings=np.zeros((5, 10)))


# --------------------------------------------------------------------------------------------------------------
# Properties
# --------------------------------------------------------------------------------------------------------------

def small_int_matrix(rows: tuple[int, int], dim: int = 6):
    """float32 matrices of small integers: dot products are exact in float32 whatever the summation order, so
    ties are exact and a brute-force ranking is unambiguous."""
    return st.integers(*rows).flatmap(lambda n: hnp.arrays(np.float32, (n, dim), elements=st.integers(-3, 3)))


def brute_force_top_k(scores: np.ndarray, k: int) -> list[list[int]]:
    return [np.lexsort((np.arange(len(r)), -r))[:k].tolist() for r in scores]  # by score, then by id


@settings(max_examples=60, deadline=None)
@given(q=small_int_matrix((1, 6)), c=small_int_matrix((0, 40)), top_k=st.integers(0, 45),
       q_chunk=st.integers(1, 7), c_chunk=st.integers(1, 50))
def test_semantic_search_is_a_brute_force_argsort(q, c, top_k, q_chunk, c_chunk):
    hits = util.semantic_search(q, c, query_chunk_size=q_chunk, corpus_chunk_size=c_chunk, top_k=top_k,
                                score_function=util.dot_score)
    scores = q @ c.T
    assert [[h["corpus_id"] for h in r] for r in hits] == brute_force_top_k(scores, top_k)
    for r, s in zip(hits, scores):
        assert [h["score"] for h in r] == s[[h["corpus_id"] for h in r]].tolist()


@settings(max_examples=40, deadline=None)
@given(q=hnp.arrays(np.float32, (3, 8), elements=st.floats(-1, 1, width=32)),
       c=hnp.arrays(np.float32, (25, 8), elements=st.floats(-1, 1, width=32)),
       top_k=st.integers(1, 30), c_chunk=st.integers(1, 30))
def test_semantic_search_cosine_is_a_brute_force_argsort(q, c, top_k, c_chunk):
    hits = util.semantic_search(q, c, corpus_chunk_size=c_chunk, top_k=top_k)
    scores = util.cos_sim(q, c)
    for r, s, want in zip(hits, scores, brute_force_top_k(scores, top_k)):
        why = ranked_mismatch(want, s[want].tolist(), [h["corpus_id"] for h in r], [h["score"] for h in r], TOL)
        assert why is None, why


@settings(max_examples=40, deadline=None)
@given(x=small_int_matrix((0, 25)), top_k=st.integers(0, 30), q_chunk=st.integers(1, 30),
       c_chunk=st.integers(1, 30), max_pairs=st.integers(0, 400))
def test_paraphrase_mining_does_not_depend_on_chunking(x, top_k, q_chunk, c_chunk, max_pairs):
    args = dict(top_k=top_k, max_pairs=max_pairs, score_function=util.dot_score)
    chunked = util.paraphrase_mining_embeddings(x, query_chunk_size=q_chunk, corpus_chunk_size=c_chunk, **args)
    assert chunked == util.paraphrase_mining_embeddings(x, **args)
    if top_k >= len(x) and max_pairs >= len(x) * (len(x) - 1) // 2:  # every pair, each once
        s = x @ x.T
        want = sorted((float(s[i, j]), i, j) for i in range(len(x)) for j in range(i + 1, len(x)))
        assert sorted(map(tuple, chunked)) == want


@settings(max_examples=60, deadline=None)
@given(x=st.integers(2, 20).flatmap(lambda n: hnp.arrays(np.float32, (n, 13),
                                                         elements=st.floats(-10, 10, width=32))),
       precision=st.sampled_from(["int8", "uint8"]))
def test_scalar_quantization_shapes_and_ranges(x, precision):
    q = util.quantize_embeddings(x, precision)
    assert q.shape == x.shape and q.dtype == np.dtype(precision)
    u = q.astype(np.int16) + (128 if precision == "int8" else 0)  # bucket numbers 0..255
    assert u.min() >= 0 and u.max() <= 255
    span = x.max(axis=0) > x.min(axis=0)
    assert np.all(u[x.argmin(axis=0), np.arange(13)][span] == 0), "each dimension's minimum is bucket 0"
    wide = x.max(axis=0) - x.min(axis=0) > 1e-30  # narrower spans make subnormal steps, which round coarsely
    assert np.all(u[x.argmax(axis=0), np.arange(13)][wide] >= 254), "and its maximum the top bucket"
    for d in range(13):  # monotonic in each dimension
        order = np.argsort(x[:, d], kind="stable")
        assert np.all(np.diff(u[order, d]) >= 0)
    if precision == "int8":
        np.testing.assert_array_equal(u, util.quantize_embeddings(x, "uint8"))


@settings(max_examples=60, deadline=None)
@given(x=st.integers(1, 12).flatmap(lambda d: hnp.arrays(np.float32, (3, d),
                                                         elements=st.floats(-1, 1, width=32))))
def test_binary_quantization_shapes_and_bits(x):
    ub, b = util.quantize_embeddings(x, "ubinary"), util.quantize_embeddings(x, "binary")
    d = x.shape[1]
    assert ub.shape == b.shape == (3, (d + 7) // 8) and ub.dtype == np.uint8 and b.dtype == np.int8
    np.testing.assert_array_equal(np.unpackbits(ub, axis=1)[:, :d], x > 0)
    np.testing.assert_array_equal(b.astype(np.int16), ub.astype(np.int16) - 128)


@settings(max_examples=30, deadline=None)
@given(x=hnp.arrays(np.float32, (30, 5), elements=st.floats(-1, 1, width=32)),
       threshold=st.floats(0.0, 0.99), size=st.integers(1, 8), batch=st.integers(1, 31))
def test_community_detection_is_consistent(x, threshold, size, batch):
    got = util.community_detection(x, threshold=threshold, min_community_size=size, batch_size=batch)
    assert got == util.community_detection(x, threshold=threshold, min_community_size=size)  # batch-independent
    flat = [i for c in got for i in c]
    assert len(flat) == len(set(flat)), "communities do not overlap"
    assert [len(c) for c in got] == sorted((len(c) for c in got), reverse=True)
    s = util.cos_sim(x, x)  # recomputed as a whole, so allow the ulps of a differently shaped product
    for c in got:
        assert len(c) >= size and np.all(s[c[0], c] >= np.float32(threshold) - 1e-6)
        assert np.all(np.diff(s[c[0], c[1:]]) <= 1e-6), "most similar first"


# --------------------------------------------------------------------------------------------------------------
# Memory and errors
# --------------------------------------------------------------------------------------------------------------

def test_search_and_mining_score_in_chunks(data):
    """No call ever scores more than a chunk: the corpus is never an n x n matrix."""
    seen = []

    def spy(a, b):
        seen.append((len(a), len(b)))
        return util.cos_sim(a, b)

    E = data["E"]
    util.semantic_search(E[:30], E, query_chunk_size=8, corpus_chunk_size=100, score_function=spy)
    assert max(a for a, _ in seen) == 8 and max(b for _, b in seen) == 100 and len(seen) == 4 * 4
    seen.clear()
    util.paraphrase_mining_embeddings(E, query_chunk_size=64, corpus_chunk_size=128, score_function=spy)
    assert max(a for a, _ in seen) == 64 and max(b for _, b in seen) == 128


@pytest.mark.parametrize("call,match", [
    (lambda E: util.semantic_search(E[:2], E[:, :10]), "same embedding size"),
    (lambda E: util.semantic_search(E[:2], E[0]), r"corpus_embeddings must have shape \[n, dim\]"),
    (lambda E: util.semantic_search(E[:2], E, top_k=-1), "top_k must be an integer >= 0"),
    (lambda E: util.semantic_search(E[:2], E, top_k=2.5), "top_k must be an integer"),
    (lambda E: util.semantic_search(E[:2], E, corpus_chunk_size=0), "corpus_chunk_size must be a positive integer"),
    (lambda E: util.semantic_search(E[:2], E, query_chunk_size=True), "query_chunk_size"),
    (lambda E: util.semantic_search(E[:2], np.full((3, 384), np.nan)), "corpus_embeddings holds NaN"),
    (lambda E: util.semantic_search(E[:2], E, score_function=lambda a, b: a @ b.T[:, :1]), r"must return a \[2, "),
    (lambda E: util.paraphrase_mining_embeddings(E, max_pairs=-1), "max_pairs must be an integer >= 0"),
    (lambda E: util.community_detection(E, min_community_size=0), "min_community_size must be a positive integer"),
    (lambda E: util.community_detection(E, batch_size=0), "batch_size must be a positive integer"),
    (lambda E: util.cos_sim(E[:2], E[:2, :5]), "same embedding size, got 384 and 5"),
    (lambda E: util.cos_sim(E[None], E), r"a must have shape \[n, dim\] or \[dim\], got shape \(1, 370, 384\)"),
    (lambda E: util.pairwise_cos_sim(E[:2], E[:3]), "same shape"),
    (lambda E: util.cos_sim([[1.0, 2.0], [3.0]], E), "a must be a rectangular array"),
])
def test_bad_arguments_raise_value_errors_naming_them(data, call, match):
    with pytest.raises(ValueError, match=match):
        call(data["E"])


@pytest.mark.parametrize("call,match", [
    (lambda E: util.cos_sim("some text", E), "a must be an array of embeddings"),
    (lambda E: util.dot_score(E, np.array([["x", "y"]])), "b must hold numbers"),
    (lambda E: util.semantic_search(E[:2], E, score_function="cosine"), "score_function must be callable"),
    (lambda E: util.community_detection(E, threshold="0.5"), "threshold must be a number"),
])
def test_bad_types_raise_type_errors_naming_them(data, call, match):
    with pytest.raises(TypeError, match=match):
        call(data["E"])


def test_empty_inputs(data):
    E = data["E"]
    assert util.semantic_search(E[:2], np.zeros((0, 384), np.float32)) == [[], []]
    assert util.semantic_search(np.zeros((0, 384), np.float32), E) == []
    assert util.semantic_search(E[:2], E, top_k=0) == [[], []]
    assert util.paraphrase_mining_embeddings(np.zeros((0, 384), np.float32)) == []
    assert util.paraphrase_mining_embeddings(E[:1]) == []
    assert util.community_detection([]) == [] and util.community_detection(E[:5], min_community_size=6) == []


@pytest.mark.parametrize("precision", ["int8", "uint8"])
def test_token_matrices_use_the_calibration_even_when_the_first_is_empty(data, precision):
    """A list of token matrices shares the calibration's buckets, whatever the first matrix holds."""
    E = data["E"]
    mats = [np.zeros((0, 384), np.float32), E[10:13], E[20:30]]
    got = util.quantize_embeddings(mats, precision, calibration_embeddings=E[:200])
    assert [g.shape for g in got] == [(0, 384), (3, 384), (10, 384)]
    for g, m in zip(got[1:], mats[1:]):
        np.testing.assert_array_equal(g, util.quantize_embeddings(m, precision, calibration_embeddings=E[:200]))
