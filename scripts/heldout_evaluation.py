"""Compare tinyminilm's InformationRetrievalEvaluator with sentence-transformers' on a BEIR folder no test contains.

    python scripts/heldout_evaluation.py [--folder scripts/data/beir-stdlib] [--split test]

Runs in the reference environment (the `reference` extra: torch, sentence-transformers), with this checkout on
sys.path for tinyminilm. Both libraries embed with their own engine (sentence-transformers on torch, tinyminilm in
NumPy) the pinned all-MiniLM-L6-v2 files (tinyminilm.hub.ensure_model(), no Hub access), and evaluate the folder
that `tinyminilm.evaluation.load_beir` reads, twice: with the evaluator's defaults, and with custom k lists and
truncate_dim=128. It prints, for each, whether the result keys and the primary metric are the same, and the largest
difference between the values. The tests hold the metric code to sentence-transformers' own on data built for its
edge cases (tests/golden/evaluation.json); this is the check on data neither library's tests saw.
"""

from __future__ import annotations

import argparse
import sys
import tempfile
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

SETTINGS = {
    "defaults": {},
    "custom k lists, truncate_dim=128": {"mrr_at_k": [1, 5, 20], "ndcg_at_k": [3, 20], "accuracy_at_k": [1, 2, 20],
                                         "precision_recall_at_k": [2, 20, 50], "map_at_k": [20], "truncate_dim": 128},
}


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--folder", default=str(ROOT / "scripts" / "data" / "beir-stdlib"))
    ap.add_argument("--split", default="test")
    args = ap.parse_args()

    import sentence_transformers
    from sentence_transformers import SentenceTransformer
    from sentence_transformers.sentence_transformer.evaluation import InformationRetrievalEvaluator as STEvaluator

    import tinyminilm
    from tinyminilm.evaluation import InformationRetrievalEvaluator, load_beir

    folder = tinyminilm.hub.ensure_model()
    queries, corpus, relevant = load_beir(args.folder, args.split)
    reference, ours = SentenceTransformer(str(folder), device="cpu"), tinyminilm.load(folder)
    print(f"{args.folder}: {len(queries)} queries, {len(corpus)} documents; sentence-transformers "
          f"{sentence_transformers.__version__} vs tinyminilm {tinyminilm.__version__}")
    for label, options in SETTINGS.items():
        with tempfile.TemporaryDirectory() as tmp:
            their_ev = STEvaluator(queries, corpus, relevant, name="heldout", **options)
            theirs = their_ev(reference, output_path=tmp)
            mine_ev = InformationRetrievalEvaluator(queries, corpus, relevant, name="heldout", **options)
            mine = mine_ev(ours, output_path=tmp)
        same_keys = list(theirs) == list(mine)
        diff = max(abs(float(theirs[k]) - float(mine[k])) for k in theirs)
        print(f"{label}: {len(theirs)} keys, same keys in the same order: {same_keys}; primary metric "
              f"{'the same' if mine_ev.primary_metric == their_ev.primary_metric else 'DIFFERS'} "
              f"({mine_ev.primary_metric}); "
              f"max |difference| {diff:.2e}; ndcg@10 {theirs.get('heldout_cosine_ndcg@10', float('nan')):.4f} vs "
              f"{mine.get('heldout_cosine_ndcg@10', float('nan')):.4f}")


if __name__ == "__main__":
    main()
