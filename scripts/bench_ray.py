"""Ray Data throughput: the same corpus embedded with 1 actor and with 2 actors, against a single-process encode.

    python scripts/bench_ray.py                       # 2,000 texts, actors 1 and 2, on a local Ray instance
    python scripts/bench_ray.py --texts 200 --actors 1,2,4 --num-cpus 4

The single-process row is `model.encode` on all cores, no Ray. Each actor row is one `embed_corpus` run end to end: starting the actors (each loads the model), reading the JSONL,
embedding, writing Parquet (after one uncounted warm-up run). Threads per actor are cores / actors (`default_blas_threads`). The corpus is made
deterministically from word combinations, 4 to ~40 words a text. Needs `pip install -e '.[ray]'`. Prints a
Markdown table; run it on an otherwise idle machine.
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import tempfile
import time
from pathlib import Path

import numpy as np

WORDS = ("time year people way day man thing woman life child world school state family student group country "
         "problem hand part place case week company system program question work government number night point "
         "home water room mother area money story fact month lot right study book eye job word business issue "
         "side kind head house service friend father power hour game line end member law car city community name "
         "president team minute idea kid body information back parent face others level office door health person "
         "art war history party result change morning reason research girl guy moment air teacher force").split()


def make_corpus(n: int, seed: int = 0) -> list[str]:
    """n texts of 4 to ~40 words, the same for a given (n, seed)."""
    rng = np.random.default_rng(seed)
    lengths = np.clip(rng.lognormal(mean=2.3, sigma=0.6, size=n).astype(int), 4, 60)
    return [" ".join(rng.choice(WORDS, size=k)) + "." for k in lengths]


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--texts", type=int, default=2000, help="corpus size (default 2000)")
    ap.add_argument("--actors", default="1,2", help="comma-separated actor counts (default 1,2)")
    ap.add_argument("--num-cpus", type=int, default=os.cpu_count(), help="CPUs of the local Ray instance")
    ap.add_argument("--batch-size", type=int, default=256, help="rows per actor call (default 256)")
    ap.add_argument("--model", default=None, help="model folder (default: the pinned all-MiniLM-L6-v2)")
    args = ap.parse_args()
    actor_counts = [int(a) for a in args.actors.split(",")]

    import ray

    import tinyminilm
    from tinyminilm import hub
    from tinyminilm.integrations.ray import default_blas_threads, embed_corpus, read_embeddings

    folder = Path(args.model) if args.model else hub.ensure_model()
    texts = make_corpus(args.texts)
    model = tinyminilm.load(folder)
    t0 = time.perf_counter()
    reference = model.encode(texts)
    single_s = time.perf_counter() - t0

    os.environ.setdefault("RAY_USAGE_STATS_ENABLED", "0")  # no usage report over the network
    ray.init(num_cpus=args.num_cpus, include_dashboard=False)
    ray.data.DataContext.get_current().enable_progress_bars = False
    rows = []
    with tempfile.TemporaryDirectory(prefix="bench-ray-") as tmp:
        src = Path(tmp) / "corpus.jsonl"
        with open(src, "w", encoding="utf-8") as f:
            for i, t in enumerate(texts):
                f.write(json.dumps({"id": i, "text": t}) + "\n")
        # A warm-up run, not counted, so that the first measured row does not also pay for Ray's first worker start.
        embed_corpus(src, Path(tmp) / "warm-up", num_actors=1, batch_size=args.batch_size, model=folder)
        for n in actor_counts:
            out = Path(tmp) / f"out-{n}"
            threads = default_blas_threads(n)
            t0 = time.perf_counter()
            embed_corpus(src, out, num_actors=n, batch_size=args.batch_size, model=folder)
            wall = time.perf_counter() - t0
            ids, vectors = read_embeddings(out)
            diff = float(np.abs(vectors - reference[ids]).max())
            rows.append((n, threads, wall, len(ids), diff))
    ray.shutdown()

    n_tokens = sum(len(x) for x in model.token_ids(texts))
    print(f"{args.texts} texts ({n_tokens} tokens), Ray {ray.__version__}, {args.num_cpus} CPUs, "
          f"batch_size {args.batch_size}, {platform.processor() or platform.machine()}")
    print()
    print("| run | threads each | wall s | texts/s | vs 1 actor | rows | max abs diff vs encode |")
    print("|---|---|---|---|---|---|---|")
    print(f"| single process, no Ray | {getattr(model, 'threads', 'default')} | {single_s:.1f} | "
          f"{args.texts / single_s:.0f} | | {args.texts} | 0 |")
    base = next((w for n, _, w, _, _ in rows if n == 1), None)
    for n, threads, wall, count, diff in rows:
        speedup = f"{base / wall:.2f}x" if base else ""
        print(f"| {n} actor{'s' if n > 1 else ''} | {threads} | {wall:.1f} | {args.texts / wall:.0f} | {speedup} "
              f"| {count} | {diff:.1e} |")


if __name__ == "__main__":
    main()
