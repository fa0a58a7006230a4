"""Write tests/golden/evaluation.json: sentence-transformers' own evaluators run on tests/evaluation_cases.py's data.

Run it in the reference environment (torch CPU, sentence-transformers 6.2, scipy, scikit-learn):

    /work/refvenv/bin/python scripts/make_golden_eval.py

For every case it records the evaluator's result dict (in its key order), its primary_metric, the CSV it writes after
two calls (epoch -1, then epoch 1 step 10) and, where asked, the predictions file. Three kinds of model:
  - the pinned all-MiniLM-L6-v2 (SentenceTransformer on the folder tinyminilm.hub.ensure_model() gives, the one
    the tests load), for InformationRetrievalEvaluator and EmbeddingSimilarityEvaluator on real text;
  - a stand-in returning FIXED_VECTORS (small integers), so that scores tie exactly and the metric code is
    isolated from the model;
  - stand-in cross-encoders for CrossEncoderRerankingEvaluator: one reads RERANK_TABLE, one scores a pair by the
    cosine of the pinned model's two embeddings;
  - a real sentence-transformers CrossEncoder with random weights, loaded from the folder tests/cross_models.py
    builds for CROSS_RERANK_CASES' variant (its fixture files, the pinned tokenizer, weights from its seed), which
    the tests load with tinyminilm.CrossEncoder.

Near ties: tinyminilm's vectors differ from torch's by ~1e-7, so a rank could flip wherever two different scores
are closer than that. The script captures every score matrix the evaluators compute (by wrapping the score
functions they call) and refuses to write the file if two different scores of one query, pair list or sample are
closer than 1e-5, or if two scores tie exactly where the texts differ (a tie tinyminilm would not reproduce). It
records what it found under "near_ties". For the reranker's MRR, which sentence-transformers ranks by np.argsort
(an order among ties that depends on the CPU's sort kernel), it checks that no tie decides the first relevant rank.
"""

from __future__ import annotations

import json
import sys
import tempfile
from pathlib import Path

import numpy as np

ROOT = Path(__file__).resolve().parent.parent
GOLDEN = ROOT / "tests" / "golden"
sys.path[:0] = [str(ROOT), str(ROOT / "tests")]

import cross_models as cm  # tests/cross_models.py
import evaluation_cases as C  # tests/evaluation_cases.py

NEAR = 1e-5  # the closest two different scores may be


class NoModelCard:
    def set_evaluation_metrics(self, *args, **kwargs) -> None:
        pass


class FixedModel:
    """A stand-in SentenceTransformer: each text is the name of a preset vector of FIXED_VECTORS."""

    similarity_fn_name = C.FIXED_SIMILARITY_FN_NAME
    model_card_data = NoModelCard()

    def encode(self, sentences, prompt_name=None, prompt=None, truncate_dim=None, convert_to_tensor=False,
               normalize_embeddings=False, precision=None, **kwargs):
        import torch
        from sentence_transformers import util

        v = torch.tensor([C.FIXED_VECTORS[s] for s in sentences], dtype=torch.float32)[:, :truncate_dim]
        if normalize_embeddings:
            v = torch.nn.functional.normalize(v, p=2, dim=1)
        if precision not in (None, "float32"):
            return util.quantize_embeddings(v, precision=precision)
        return v if convert_to_tensor else v.numpy()

    encode_query = encode_document = encode

    def similarity(self, a, b):
        from sentence_transformers import util

        return util.dot_score(a, b)


class TableCrossEncoder:
    """A stand-in CrossEncoder whose predict() reads RERANK_TABLE[query][document]."""

    model_card_data = NoModelCard()

    def predict(self, pairs, **kwargs):
        return np.array([C.RERANK_TABLE[q][d] for q, d in pairs], dtype=np.float32)


class CosineCrossEncoder:
    """A stand-in CrossEncoder scoring a pair by the cosine of the pinned model's embeddings of its two texts."""

    model_card_data = NoModelCard()

    def __init__(self, st) -> None:
        self.st = st

    def predict(self, pairs, **kwargs):
        from sentence_transformers import util

        q = self.st.encode([p[0] for p in pairs], convert_to_tensor=True)
        d = self.st.encode([p[1] for p in pairs], convert_to_tensor=True)
        return util.pairwise_cos_sim(q, d).numpy()


# --------------------------------------------------------------------------------------------------------------
# Near-tie checks
# --------------------------------------------------------------------------------------------------------------

def check_row(scores: np.ndarray, labels: list[str], texts: list[str], where: str, exact_ok: bool,
              relevant: list[bool] | None = None) -> dict:
    """Refuse different scores closer than NEAR, and exact ties between different texts unless `exact_ok`.

    With `relevant` given (retrieval and reranking), only ties between a relevant and an irrelevant entry count:
    swapping two entries of equal relevance changes no metric. Without it (similarity), every tie counts."""
    order = np.argsort(-scores, kind="stable")
    s = scores[order].astype(np.float64)
    gaps = -np.diff(s)
    found = {"exact_ties": 0, "harmless_near_ties": 0,
             "min_gap": float(gaps[gaps > 0].min()) if (gaps > 0).any() else None}
    if relevant is not None:  # the closest scores of a relevant and an irrelevant entry (neighbours in the order)
        rel = np.asarray(relevant, dtype=bool)[order]
        across = gaps[(rel[1:] != rel[:-1]) & (gaps > 0)]
        found["min_gap_relevant_vs_not"] = float(across.min()) if len(across) else None
    for i in np.nonzero(gaps < NEAR)[0]:
        a, b = order[i], order[i + 1]
        if relevant is not None and relevant[a] == relevant[b]:
            found["harmless_near_ties" if gaps[i] > 0 else "exact_ties"] += 1
            continue
        if gaps[i] > 0:
            raise SystemExit(f"{where}: {labels[a]} and {labels[b]} score {s[i]!r} and {s[i + 1]!r}, closer than "
                             f"{NEAR}; their order could flip on rounding. Change the data.")
        if not exact_ok and texts[a] != texts[b]:
            raise SystemExit(f"{where}: {labels[a]} and {labels[b]} tie exactly at {s[i]!r} but their texts differ; "
                             "tinyminilm would not reproduce that tie. Change the data.")
        found["exact_ties"] += 1
    return found


def merge_found(items: list[dict]) -> dict:
    def smallest(key: str) -> float | None:
        values = [f[key] for f in items if f.get(key) is not None]
        return min(values) if values else None

    return {"exact_ties": sum(f["exact_ties"] for f in items),
            "harmless_near_ties": sum(f["harmless_near_ties"] for f in items), "min_gap": smallest("min_gap"),
            "min_gap_relevant_vs_not": smallest("min_gap_relevant_vs_not")}


class Recorder:
    """Wraps a score function and keeps each matrix it returns (as NumPy), per name."""

    def __init__(self) -> None:
        self.calls: dict[str, list[np.ndarray]] = {}

    def wrap(self, name: str, fn):
        def recorded(*args):
            out = fn(*args)
            self.calls.setdefault(name, []).append(out.detach().cpu().numpy() if hasattr(out, "detach") else out)
            return out
        return recorded


# --------------------------------------------------------------------------------------------------------------
# The evaluators
# --------------------------------------------------------------------------------------------------------------

def run_twice(evaluator, model, files: list[str] | None = None) -> dict:
    """The evaluator's results, primary_metric and written files after two calls into one output folder."""
    with tempfile.TemporaryDirectory() as out:
        first = evaluator(model, output_path=out, epoch=-1, steps=-1)
        primary = evaluator.primary_metric
        second = evaluator(model, output_path=out, epoch=1, steps=10)
        assert list(second) == list(first) and evaluator.primary_metric == primary
        written = {p.name: p.read_bytes().decode("utf-8") for p in sorted(Path(out).iterdir())}  # CRLF kept
    return {"results": {k: float(v) for k, v in first.items()}, "primary_metric": primary,
            "csv_file": evaluator.csv_file, "files": written}


def ir_cases(st) -> tuple[dict, dict]:
    from sentence_transformers import util
    from sentence_transformers.sentence_transformer.evaluation import InformationRetrievalEvaluator

    functions = {"cosine": util.cos_sim, "dot": util.dot_score}
    out, ties = {}, {}
    fixed = FixedModel()
    cases = [(c, st, C.TEXT_QUERIES, C.TEXT_CORPUS, C.TEXT_RELEVANT) for c in C.TEXT_CASES]
    cases += [(c, st, C.TEXT_QUERIES, C.TEXT_CORPUS, C.beir_relevant()) for c in C.BEIR_CASES]
    cases += [(c, fixed, C.FIXED_QUERIES, C.FIXED_CORPUS, C.FIXED_RELEVANT) for c in C.FIXED_CASES]
    for case, model, queries, corpus, relevant in cases:
        rec = Recorder()
        kwargs = dict(case["kwargs"])
        if "score_functions" in kwargs:
            kwargs["score_functions"] = {n: rec.wrap(n, functions[n]) for n in kwargs["score_functions"]}
        saved_similarity, saved_prompts = model.similarity, dict(getattr(model, "prompts", {}))
        model.similarity = rec.wrap(model.similarity_fn_name, model.similarity)
        if "prompts" in case:
            model.prompts.update(case["prompts"])
        try:
            ev = InformationRetrievalEvaluator(queries, corpus, {q: set(d) for q, d in relevant.items()}, **kwargs)
            out[case["case"]] = run_twice(ev, model)
        finally:
            model.similarity = saved_similarity
            if "prompts" in case:
                model.prompts.clear()
                model.prompts.update(saved_prompts)
        evaluated = [q for q in queries if relevant.get(q)]
        ids, texts = list(corpus), list(corpus.values())
        per_fn = {}
        for name, mats in rec.calls.items():
            calls = len(mats) // 2  # two evaluator calls; the first one's chunks
            full = np.concatenate(mats[:calls], axis=1)  # [n_queries, n_corpus]
            assert full.shape == (len(evaluated), len(ids)), full.shape
            per_fn[name] = merge_found([check_row(full[i], ids, texts, f"{case['case']} {name} {q}",
                                                  exact_ok=model is fixed, relevant=[d in relevant[q] for d in ids])
                                        for i, q in enumerate(evaluated)])
        ties[case["case"]] = per_fn
    return out, ties


def similarity_cases(st) -> tuple[dict, dict]:
    import sentence_transformers.sentence_transformer.evaluation.embedding_similarity as es

    out, ties = {}, {}
    fixed = FixedModel()
    text_pairs, fixed_pairs = C.STS_PAIRS, C.STS_FIXED_PAIRS
    cases = [(c, st, text_pairs) for c in C.STS_CASES] + [(c, fixed, fixed_pairs) for c in C.STS_FIXED_CASES]
    names = {"cosine": "pairwise_cos_sim", "dot": "pairwise_dot_score", "euclidean": "pairwise_euclidean_sim",
             "manhattan": "pairwise_manhattan_sim"}
    for case, model, pairs in cases:
        rec = Recorder()
        saved = {n: getattr(es, f) for n, f in names.items()}
        for n, f in names.items():
            setattr(es, f, rec.wrap(n, saved[n]))
        try:
            s1, s2, gold = (list(x) for x in zip(*pairs))
            ev = es.EmbeddingSimilarityEvaluator(s1, s2, gold, **case["kwargs"])
            out[case["case"]] = run_twice(ev, model)
        finally:
            for n, f in names.items():
                setattr(es, f, saved[n])
        labels = [f"pair {i}" for i in range(len(pairs))]
        texts = [f"{a}\n{b}" for a, b, _ in pairs]
        ties[case["case"]] = {n: check_row(m[0], labels, texts, f"{case['case']} {n}", exact_ok=model is fixed)
                              for n, m in rec.calls.items()}
    return out, ties


def mrr_ties_decide(relevant: list[int], scores: np.ndarray, at_k: int) -> bool:
    """Whether the order among tied scores changes the reciprocal rank of the first relevant document."""
    best = max(s for s, r in zip(scores, relevant) if r)
    above = int((scores > best).sum())
    tied_irrelevant = sum(1 for s, r in zip(scores, relevant) if s == best and not r)
    return tied_irrelevant > 0 and above < at_k


def rerank_cases(st, tokenizer_dir: Path, tmp: Path) -> tuple[dict, dict]:
    from sentence_transformers import CrossEncoder
    from sentence_transformers.cross_encoder.evaluation import CrossEncoderRerankingEvaluator

    out, ties = {}, {}
    cases = [(c, TableCrossEncoder(), [C.RERANK_SAMPLES[s] for s in c["samples"]]) for c in C.RERANK_CASES]
    cases += [(c, CosineCrossEncoder(st), C.minilm_rerank_samples()) for c in C.MINILM_RERANK_CASES]
    for c in C.CROSS_RERANK_CASES:
        folder = cm.make_folder(c["variant"], tokenizer_dir, tmp / c["case"])
        cases.append((c, CrossEncoder(str(folder), device="cpu"), C.cross_rerank_samples()))
    for case, model, samples in cases:
        ev = CrossEncoderRerankingEvaluator(samples, **case["kwargs"])
        out[case["case"]] = run_twice(ev, model)
        found = []
        for n, s in enumerate(samples):  # the pairs the evaluator scores for this sample, as it builds them
            positive = [s["positive"]] if isinstance(s["positive"], str) else s["positive"]
            if "documents" in s:
                docs = (positive + [d for d in s["documents"] if d not in positive] if ev.always_rerank_positives
                        else s["documents"])
            else:
                docs = positive + s["negative"]
            relevant = [int(d in positive) for d in docs]
            if not any(relevant) or len(docs) < 2:
                continue
            scores = model.predict([[s["query"], d] for d in docs])
            where = f"{case['case']} sample {n}"
            found.append(check_row(scores, docs, docs, where, exact_ok=isinstance(model, TableCrossEncoder),
                                   relevant=relevant))
            if mrr_ties_decide(relevant, scores, ev.at_k):
                raise SystemExit(f"{where}: tied scores decide the first relevant rank, which sentence-transformers "
                                 "leaves to np.argsort's order among ties; change the table")
        ties[case["case"]] = merge_found(found)
    return out, ties


def versions() -> dict[str, str]:
    """make_golden.py's record of the libraries and the model, with the two the evaluators also call."""
    import scipy
    import sklearn
    from make_golden import versions as model_versions  # scripts/make_golden.py

    return {**model_versions(), "scipy": scipy.__version__, "scikit-learn": sklearn.__version__,
            "made_by": "scripts/make_golden_eval.py"}


def main() -> None:
    import torch
    from sentence_transformers import SentenceTransformer

    import tinyminilm.hub

    torch.manual_seed(0)
    model_dir = tinyminilm.hub.ensure_model()
    st = SentenceTransformer(str(model_dir), device="cpu")
    ir, ir_ties = ir_cases(st)
    sts, sts_ties = similarity_cases(st)
    with tempfile.TemporaryDirectory() as tmp:
        rr, rr_ties = rerank_cases(st, model_dir, Path(tmp))
    golden = {"versions": versions(), "data_sha256": C.data_hash(),
              "near_ties": {"closest_allowed": NEAR, "information_retrieval": ir_ties, "similarity": sts_ties,
                            "reranking": rr_ties},
              "information_retrieval": ir, "similarity": sts, "reranking": rr}
    (GOLDEN / "evaluation.json").write_text(json.dumps(golden, indent=1, ensure_ascii=False) + "\n",
                                            encoding="utf-8")
    print(json.dumps(golden["near_ties"], indent=1))
    print(f"wrote {GOLDEN / 'evaluation.json'}")


if __name__ == "__main__":
    main()
