"""Write tests/golden/util.npz: sentence-transformers' own util functions and encode options, run on fixed inputs.

Run it in the reference environment (torch CPU, sentence-transformers), after scripts/make_golden.py:

    /root/refenv/bin/python scripts/make_golden_util.py            # writes tests/golden/util.npz + util_versions.json
    /root/refenv/bin/python scripts/make_golden_util.py --heldout  # compares tinyminilm with sentence-transformers
                                                                   # on texts that no test contains; writes nothing

Inputs: the golden all-MiniLM-L6-v2 embeddings of tests/golden/minilm.npz ("E", 370 x 384, with a few exact
duplicates: texts that differ only in case; "U", the 358 distinct ones, for mining), random normal vectors ("R",
seed 0) and clustered random vectors ("C") — both stored in the file, so the tests need no random generator to
agree with this one. Outputs, each under a
case name: all-pairs and pairwise similarities (through SentenceTransformer.similarity / similarity_pairwise for each
similarity_fn_name, and the util functions), semantic_search, paraphrase_mining_embeddings, paraphrase_mining with the
real model, community_detection, quantize_embeddings, and SentenceTransformer.encode with quantization, truncation
and token embeddings. Ragged results are stored flat with offsets.
"""

from __future__ import annotations

import argparse
import json
import platform
import sys
from pathlib import Path

import numpy as np

ROOT = Path(__file__).resolve().parent.parent
GOLDEN = ROOT / "tests" / "golden"
sys.path[:0] = [str(ROOT), str(ROOT / "tests")]

SIM_NAMES = ("cosine", "dot", "euclidean", "manhattan")
PRECISIONS = ("float32", "int8", "uint8", "binary", "ubinary")

from util_cases import COMMUNITY_CASES, MINING_CASES, SEARCH_CASES  # noqa: E402  (tests/util_cases.py)

PARAPHRASE_TEXTS = 40  # paraphrase_mining(model, texts[:40]) with the real model
ENCODE_TEXTS = 6       # SentenceTransformer.encode options on texts[:6]


def inputs() -> dict[str, np.ndarray]:
    with np.load(GOLDEN / "minilm.npz") as z:
        E = z["embeddings"].astype(np.float32)
    rng = np.random.default_rng(0)
    R = rng.standard_normal((200, 48)).astype(np.float32)
    centres = rng.standard_normal((6, 32))
    C = (np.repeat(centres, 40, axis=0) + 0.35 * rng.standard_normal((240, 32))).astype(np.float32)
    C = C[rng.permutation(len(C))]
    return {"E": E, "U": unique_rows(E), "R": R, "C": C}


def unique_rows(E: np.ndarray) -> np.ndarray:
    """E without the later copies of duplicate rows (texts equal up to case), in the original order. Mining on E
    itself would put exact ties at the top_k cut of the duplicates' rows, where the kept member is arbitrary."""
    _, first = np.unique(E, axis=0, return_index=True)
    return E[np.sort(first)]


def rows(data: dict[str, np.ndarray], spec: tuple[str, int, int]) -> np.ndarray:
    name, a, b = spec
    return data[name][a:b]


def texts() -> list[str]:
    return [t["text"] for t in json.loads((GOLDEN / "texts.json").read_text(encoding="utf-8"))]


def ragged(lists: list[list[int]]) -> tuple[np.ndarray, np.ndarray]:
    offsets = np.cumsum([0] + [len(x) for x in lists]).astype(np.int64)
    flat = np.array([i for x in lists for i in x], dtype=np.int64)
    return flat, offsets


def golden(st, data: dict[str, np.ndarray]) -> dict[str, np.ndarray]:
    import torch
    from sentence_transformers import util

    out: dict[str, np.ndarray] = {"R": data["R"], "C": data["C"]}  # E is read from minilm.npz
    pairs = {"E": (data["E"][:40], data["E"][40:100]), "R": (data["R"][:20], data["R"][20:50])}
    same = {"E": (data["E"][:50], data["E"][50:100]), "R": (data["R"][:50], data["R"][50:100])}
    for name in SIM_NAMES:
        st.similarity_fn_name = name
        for key in pairs:
            out[f"sim_{name}_{key}"] = st.similarity(*pairs[key]).numpy()
            out[f"pairwise_{name}_{key}"] = st.similarity_pairwise(*same[key]).numpy()
    for fn in ("cos_sim", "dot_score", "euclidean_sim", "manhattan_sim"):
        out[f"util_{fn}_E"] = getattr(util, fn)(*pairs["E"]).numpy()
    for fn in ("pairwise_cos_sim", "pairwise_dot_score", "pairwise_euclidean_sim", "pairwise_manhattan_sim"):
        out[f"util_{fn}_E"] = getattr(util, fn)(*same["E"]).numpy()
    st.similarity_fn_name = "cosine"

    for case, q, c, kw in SEARCH_CASES:
        kw = dict(kw)
        if "score_function" in kw:
            kw["score_function"] = getattr(util, kw["score_function"])
        hits = util.semantic_search(rows(data, q), rows(data, c), **kw)
        out[f"{case}_ids"] = np.array([[h["corpus_id"] for h in r] for r in hits], dtype=np.int64)
        out[f"{case}_scores"] = np.array([[h["score"] for h in r] for r in hits], dtype=np.float64)

    for case, e, kw in MINING_CASES:
        kw = dict(kw)
        if "score_function" in kw:
            kw["score_function"] = getattr(util, kw["score_function"])
        out[case] = np.array(util.paraphrase_mining_embeddings(torch.from_numpy(rows(data, e)), **kw),
                             dtype=np.float64).reshape(-1, 3)
    out["pm_model"] = np.array(util.paraphrase_mining(st, texts()[:PARAPHRASE_TEXTS], top_k=5),
                               dtype=np.float64).reshape(-1, 3)

    for case, e, kw in COMMUNITY_CASES:
        out[f"{case}_flat"], out[f"{case}_offsets"] = ragged(util.community_detection(rows(data, e), **kw))

    E = data["E"]
    ranges = np.vstack((E.min(axis=0) - 0.05, E.max(axis=0) + 0.05)).astype(np.float32)
    out["q_ranges"] = ranges
    for p in PRECISIONS[1:]:  # float32 is a plain copy; tests check that without a golden file
        out[f"q_{p}"] = util.quantize_embeddings(E[:150], p)
        out[f"q_{p}_calibrated"] = util.quantize_embeddings(E[150:250], p, calibration_embeddings=E[:150])
        out[f"q_{p}_ranges"] = util.quantize_embeddings(E[:50], p, ranges=ranges)
        out[f"q_{p}_two_rows"] = util.quantize_embeddings(E[:2], p)
        tokens = util.quantize_embeddings([E[:3], E[3:10]], p)  # the token-embedding (list of matrices) path
        out[f"q_{p}_list"] = np.concatenate(tokens, axis=0)

    t = texts()[:ENCODE_TEXTS]
    out["enc_float32"] = st.encode(t)
    for p in PRECISIONS[1:]:
        out[f"enc_{p}"] = st.encode(t, precision=p)
    out["enc_truncate64_normalized"] = st.encode(t, truncate_dim=64, normalize_embeddings=True)
    out["enc_truncate64"] = st.encode(t, truncate_dim=64)
    tok = st.encode(t[:3], output_value="token_embeddings")
    out["enc_tokens"] = torch.cat(tok).numpy()
    out["enc_tokens_lengths"] = np.array([len(x) for x in tok], dtype=np.int64)
    out["enc_tokens_int8"] = np.concatenate(st.encode(t[:3], output_value="token_embeddings", precision="int8"))
    return out


def versions() -> dict[str, str]:
    import sentence_transformers
    import torch

    return {"sentence_transformers": sentence_transformers.__version__, "torch": torch.__version__,
            "numpy": np.__version__, "python": platform.python_version(), "machine": platform.machine(),
            "model": "sentence-transformers/all-MiniLM-L6-v2@c9745ed1d9f207416be6d2e6f8de32d1f16199bf",
            "inputs": "tests/golden/minilm.npz embeddings; random R, C from numpy default_rng(0), stored in util.npz",
            "made_by": "scripts/make_golden_util.py"}


# Texts of our own writing that appear nowhere in tests/golden/texts.json: the held-out check of "Done when".
HELDOUT = [
    "How do I reset my router to factory settings?",
    "Steps for restoring a wifi router to its default configuration",
    "What is the boiling point of water at high altitude?",
    "Water boils at a lower temperature in the mountains.",
    "Best hiking trails near Lake Tahoe for beginners",
    "Easy walks around Lake Tahoe suitable for families",
    "The central bank raised interest rates by a quarter point.",
    "Interest rates went up 0.25% after the central bank meeting.",
    "My cat refuses to eat dry food lately.",
    "Why won't my kitten touch her kibble anymore?",
    "A guide to sourdough starters: feeding, temperature and timing.",
    "How often should I feed a sourdough starter?",
    "The museum reopens on Tuesday after renovations.",
    "After the renovation, the museum will open its doors again on Tuesday.",
    "Quantum computers use qubits instead of bits.",
    "Unlike classical bits, qubits can be in superposition.",
    "Train delays expected due to snow on the northern line.",
    "Snowfall is causing late trains on the north route.",
    "He scored twice in the second half to win the match.",
    "Two late goals gave them the victory.",
    "Symptoms of dehydration include headache and fatigue.",
    "Drink water regularly to avoid getting dehydrated.",
    "The library lends e-books through an app.",
    "You can borrow digital books from the library using its application.",
    "Tomatoes grow best in full sun with regular watering.",
    "Planting tomatoes in a sunny spot and watering them often works well.",
    "Configure the firewall to allow incoming SSH connections.",
    "Open port 22 in the firewall so you can log in remotely.",
    "The novel follows three generations of a fishing family.",
    "A multigenerational saga about fishermen and their children.",
    "Le train part à huit heures du matin.",
    "El tren sale a las ocho de la mañana.",
    "Der Zug fährt um acht Uhr morgens ab.",
    "Stock prices fell sharply after the earnings report.",
    "Shares dropped following the quarterly results.",
    "Remember to back up your photos before updating the phone.",
    "Save a copy of your pictures before installing the update.",
    "The volcano erupted, sending ash high into the sky.",
    "Ash clouds rose above the erupting mountain.",
    "A recipe for vegan chocolate cake without eggs.",
]
HELDOUT_QUERIES = ["resetting network equipment", "weather affecting public transport", "baking bread at home",
                   "football game result", "protecting my data on a smartphone", "natural disasters",
                   "pets and their eating habits", "learning about quantum physics"]


def heldout() -> None:
    """Run the same calls in sentence-transformers and tinyminilm on HELDOUT and print how they compare."""
    import torch
    from sentence_transformers import SentenceTransformer
    from sentence_transformers import util as su

    import tinyminilm
    import tinyminilm.hub
    from ranking import exact_ids, ranked_mismatch
    from tinyminilm import util as tu

    gold = set(texts())
    assert not gold & set(HELDOUT + HELDOUT_QUERIES), "held-out texts must not be in tests/golden/texts.json"
    folder = tinyminilm.hub.ensure_model()
    st = SentenceTransformer(str(folder), device="cpu")
    tm = tinyminilm.load(folder)
    rows = []

    def report(what: str, n: int, exact: int, tied_ok: int, max_diff: float) -> None:
        rows.append((what, n, exact, tied_ok, max_diff))

    e_st, q_st = st.encode(HELDOUT), st.encode(HELDOUT_QUERIES)
    e_tm, q_tm = tm.encode(HELDOUT), tm.encode(HELDOUT_QUERIES)
    report("encode (max abs diff)", len(HELDOUT) + len(HELDOUT_QUERIES), -1, -1,
           float(max(np.abs(e_st - e_tm).max(), np.abs(q_st - q_tm).max())))
    for name in SIM_NAMES:
        st.similarity_fn_name = tm.similarity_fn_name = name
        d = float(np.abs(st.similarity(q_st, e_st).numpy() - tm.similarity(q_tm, e_tm)).max())
        d2 = float(np.abs(st.similarity_pairwise(e_st[:20], e_st[20:]).numpy()
                          - tm.similarity_pairwise(e_tm[:20], e_tm[20:])).max())
        report(f"similarity / similarity_pairwise, {name}", q_st.shape[0] * e_st.shape[0], -1, -1, max(d, d2))
    st.similarity_fn_name = tm.similarity_fn_name = "cosine"

    for k in (1, 5, 10):
        a, b = su.semantic_search(q_st, e_st, top_k=k), tu.semantic_search(q_tm, e_tm, top_k=k)
        ex = sum(exact_ids([h["corpus_id"] for h in x], [h["corpus_id"] for h in y]) for x, y in zip(a, b))
        ok = sum(ranked_mismatch([h["corpus_id"] for h in x], [h["score"] for h in x], [h["corpus_id"] for h in y],
                                 [h["score"] for h in y]) is None for x, y in zip(a, b))
        md = max(abs(h["score"] - g["score"]) for x, y in zip(a, b) for h, g in zip(x, y))
        report(f"semantic_search top_k={k} (queries)", len(a), ex, ok, md)

    a = su.paraphrase_mining(st, HELDOUT, top_k=3)
    b = tu.paraphrase_mining(tm, HELDOUT, top_k=3)
    n = min(len(a), len(b))
    ok = ranked_mismatch([x[1:] for x in a], [x[0] for x in a], [x[1:] for x in b], [x[0] for x in b]) is None
    report("paraphrase_mining top_k=3 (pairs)", len(a), int(exact_ids([x[1:] for x in a], [x[1:] for x in b])) * n,
           int(ok) * n, max(abs(x[0] - y[0]) for x, y in zip(a, b)))

    a = su.community_detection(e_st, threshold=0.55, min_community_size=2)
    b = tu.community_detection(e_tm, threshold=0.55, min_community_size=2)
    report("community_detection (communities)", len(a), sum(x == y for x, y in zip(a, b)) if len(a) == len(b) else 0,
           -1, 0.0)

    for p in PRECISIONS[1:]:
        x, y = st.encode(HELDOUT, precision=p), tm.encode(HELDOUT, precision=p)
        report(f"encode precision={p} (entries equal)", x.size, int((x == y).sum()), -1,
               float(np.abs(x.astype(np.int16) - y.astype(np.int16)).max()))
    x, y = su.quantize_embeddings(e_st, "int8"), tu.quantize_embeddings(e_st, "int8")
    report("quantize_embeddings int8 on the same floats (entries equal)", x.size, int((x == y).sum()), -1,
           float(np.abs(x.astype(np.int16) - y.astype(np.int16)).max()))
    x = st.encode(HELDOUT[:4], output_value="token_embeddings")
    y = tm.encode(HELDOUT[:4], output_value="token_embeddings")
    report("encode token_embeddings (max abs diff)", sum(len(t) for t in x), -1, -1,
           float(max(np.abs(t.numpy() - u).max() for t, u in zip(x, y))))
    x = st.encode(HELDOUT, truncate_dim=128, normalize_embeddings=True)
    y = tm.encode(HELDOUT, truncate_dim=128, normalize_embeddings=True)
    report("encode truncate_dim=128 normalize (max abs diff)", x.shape[0], -1, -1, float(np.abs(x - y).max()))
    del torch

    print(f"held-out check: {len(HELDOUT)} texts + {len(HELDOUT_QUERIES)} queries not in tests/golden/texts.json")
    print(f"{'call':62s} {'n':>7s} {'ids exact':>10s} {'tie-aware':>10s} {'max diff':>10s}")
    for what, n, ex, ok, md in rows:
        f = lambda v: "-" if v < 0 else str(v)  # noqa: E731
        print(f"{what:62s} {n:7d} {f(ex):>10s} {f(ok):>10s} {md:10.2e}")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--heldout", action="store_true", help="compare on held-out texts; write nothing")
    args = parser.parse_args()
    if args.heldout:
        heldout()
        return
    import torch
    from sentence_transformers import SentenceTransformer

    import tinyminilm.hub

    torch.manual_seed(0)
    st = SentenceTransformer(str(tinyminilm.hub.ensure_model()), device="cpu")
    out = golden(st, inputs())
    np.savez_compressed(GOLDEN / "util.npz", **out)
    (GOLDEN / "util_versions.json").write_text(json.dumps(versions(), indent=1) + "\n")
    for f in ("util.npz", "util_versions.json"):
        print(f"wrote {GOLDEN / f} ({(GOLDEN / f).stat().st_size:,} bytes)")


if __name__ == "__main__":
    main()
