"""Benchmark tinyminilm against sentence-transformers on real text, side by side in one run; print a table.

    python scripts/bench.py [--rounds 3] [--quick]

Measures, on scripts/data/stdlib_docstrings.txt (4,000 paragraphs of real prose, 3–256 words):
  - throughput, texts/s and real tokens/s, batch 32, tinyminilm and (if installed) sentence-transformers on torch
    CPU, alternating the two each round; the ratio;
  - this machine's float32 GEMM rate, measured in the same run, and the fraction of it tinyminilm reaches
    (21.2 MFLOP of matmuls per token + 9,216·L FLOP of attention at length L);
  - cold start (process start -> first embedding), single-query p50/p99 latency (each library in a fresh
    process), peak RSS encoding 10,000 texts;
  - throughput for short queries vs 256-token passages, and for threads = 1 and 2.
Timings on a shared machine are noisy: compare the ratios, which are measured in the same run.
Run it where sentence-transformers is installed (the `reference` extra) to get both columns.
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import statistics
import subprocess
import sys
import time
from pathlib import Path

import numpy as np

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))
CORPUS = ROOT / "scripts" / "data" / "stdlib_docstrings.txt"
MATMUL_FLOP_PER_TOKEN = 21.2e6
ATTN_FLOP_PER_TOKEN_PER_L = 9216


def gemm_rate(seconds: float = 1.5) -> float:
    """float32 GFLOP/s of a [4096, 384] @ [384, 1536] product, the shape of the FFN's first matmul."""
    a = np.random.default_rng(0).standard_normal((4096, 384), dtype=np.float32)
    b = np.random.default_rng(1).standard_normal((384, 1536), dtype=np.float32)
    a @ b
    n, t0 = 0, time.perf_counter()
    while time.perf_counter() - t0 < seconds:
        a @ b
        n += 1
    return 2 * 4096 * 384 * 1536 * n / (time.perf_counter() - t0) / 1e9


# Peak resident memory of the calling process. Not getrusage's ru_maxrss: on Linux it keeps the parent's peak
# across fork + exec, so a child started by a large process reports the parent's size.
PEAK_RSS = ("def peak_rss_mib():\n"
            "    for line in open('/proc/self/status'):\n"
            "        if line.startswith('VmHWM:'):\n"
            "            return int(line.split()[1]) / 1024\n")


def flop(lengths: list[int]) -> float:
    return sum(MATMUL_FLOP_PER_TOKEN * n + ATTN_FLOP_PER_TOKEN_PER_L * n * n for n in lengths)


def timed(fn, *args, **kwargs) -> float:
    t0 = time.perf_counter()
    fn(*args, **kwargs)
    return time.perf_counter() - t0


def child(code: str) -> dict:
    """Run code in a fresh interpreter that prints one JSON line; add the wall time from process start."""
    t0 = time.perf_counter()
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True,
                         env={**os.environ, "TOKENIZERS_PARALLELISM": "false"}).stdout
    wall = time.perf_counter() - t0
    result = json.loads(out.strip().splitlines()[-1])
    result["wall"] = wall
    return result


COLD_TINY = PEAK_RSS + """
import json, sys, time
sys.path.insert(0, {root!r})
import tinyminilm
m = tinyminilm.load({folder!r})
m.encode("How do I reset my password?")
print(json.dumps({{"rss_mib": peak_rss_mib()}}))
"""
COLD_ST = PEAK_RSS + """
import json, time
from sentence_transformers import SentenceTransformer
m = SentenceTransformer({folder!r}, device="cpu")
m.encode("How do I reset my password?")
print(json.dumps({{"rss_mib": peak_rss_mib()}}))
"""
RSS_TINY = PEAK_RSS + """
import json, sys
sys.path.insert(0, {root!r})
import tinyminilm
texts = open({corpus!r}, encoding="utf-8").read().splitlines()
texts = (texts * 3)[:10000]
m = tinyminilm.load({folder!r})
base = peak_rss_mib()
m.encode(texts, batch_size=32)
print(json.dumps({{"loaded_mib": base, "rss_mib": peak_rss_mib()}}))
"""
RSS_ST = PEAK_RSS + """
import json
from sentence_transformers import SentenceTransformer
texts = open({corpus!r}, encoding="utf-8").read().splitlines()
texts = (texts * 3)[:10000]
m = SentenceTransformer({folder!r}, device="cpu")
base = peak_rss_mib()
m.encode(texts, batch_size=32)
print(json.dumps({{"loaded_mib": base, "rss_mib": peak_rss_mib()}}))
"""


LATENCY = PEAK_RSS + """
import json, sys, time
sys.path.insert(0, {root!r})
queries = json.loads({queries!r})
{load}
for q in queries[:5]:
    encode(q)
times = []
for q in queries:
    t0 = time.perf_counter()
    encode(q)
    times.append(time.perf_counter() - t0)
times.sort()
print(json.dumps({{"p50": times[len(times) // 2] * 1e3, "p99": times[min(len(times) - 1, int(len(times) * 0.99))] * 1e3}}))
"""
LOAD_TINY = "import tinyminilm; encode = tinyminilm.load({folder!r}).encode"
LOAD_ST = ("from sentence_transformers import SentenceTransformer; "
           "encode = SentenceTransformer({folder!r}, device='cpu').encode")


def passages(texts: list[str], model, n_tokens: int = 256, count: int = 128) -> list[str]:
    """Join consecutive paragraphs until each passage reaches n_tokens (it is then truncated there)."""
    out, cur = [], []
    for t in texts:
        cur.append(t)
        if len(model.token_ids([" ".join(cur)])[0]) >= n_tokens:
            out.append(" ".join(cur))
            cur = []
            if len(out) == count:
                break
    return out


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--rounds", type=int, default=3, help="alternating rounds of the throughput comparison")
    ap.add_argument("--quick", action="store_true", help="a smaller corpus and fewer queries, to check the script")
    args = ap.parse_args()

    import tinyminilm
    from tinyminilm import hub

    folder = str(hub.ensure_model())
    texts = CORPUS.read_text(encoding="utf-8").splitlines()
    if args.quick:
        texts = texts[:300]
    tiny = tinyminilm.load(folder)
    lengths = [len(x) for x in tiny.token_ids(texts)]
    n_tok = sum(lengths)
    try:
        import torch
        from sentence_transformers import SentenceTransformer

        st = SentenceTransformer(folder, device="cpu")
        st_version = f"sentence-transformers {__import__('sentence_transformers').__version__}, torch {torch.__version__} " \
                     f"({torch.get_num_threads()} threads)"
    except ImportError:
        st, st_version = None, "sentence-transformers not installed"

    rows: list[tuple[str, str, str, str]] = []
    gemm = [gemm_rate()]
    tiny_t, st_t = [], []
    for _ in range(args.rounds):  # alternate, so both see the same machine load
        tiny_t.append(timed(tiny.encode, texts, batch_size=32))
        if st is not None:
            st_t.append(timed(st.encode, texts, batch_size=32))
    gemm.append(gemm_rate())
    g = statistics.median(gemm)
    tt = statistics.median(tiny_t)
    ceiling_tok_s = g * 1e9 / (flop(lengths) / n_tok)
    rows.append(("throughput, texts/s (batch 32)", f"{len(texts) / tt:.0f}",
                 f"{len(texts) / statistics.median(st_t):.0f}" if st_t else "–",
                 f"{statistics.median(st_t) / tt:.2f}×" if st_t else "–"))
    rows.append(("throughput, real tokens/s", f"{n_tok / tt:.0f}",
                 f"{n_tok / statistics.median(st_t):.0f}" if st_t else "–", ""))
    rows.append(("fraction of the GEMM ceiling", f"{n_tok / tt / ceiling_tok_s:.0%}",
                 f"{n_tok / statistics.median(st_t) / ceiling_tok_s:.0%}" if st_t else "–",
                 f"ceiling {ceiling_tok_s:.0f} tok/s at {g:.0f} GFLOP/s"))

    queries = texts[:60] if args.quick else [t for t in texts if len(t.split()) <= 12][:300]
    # Each in a fresh process of its own, so that neither library's idle threads disturb the other's timings.
    lat_t = child(LATENCY.format(root=str(ROOT), queries=json.dumps(queries), load=LOAD_TINY.format(folder=folder)))
    p50, p99 = lat_t["p50"], lat_t["p99"]
    if st is not None:
        lat_s = child(LATENCY.format(root=str(ROOT), queries=json.dumps(queries), load=LOAD_ST.format(folder=folder)))
        s50, s99 = lat_s["p50"], lat_s["p99"]
        rows.append(("single query p50 / p99, ms", f"{p50:.1f} / {p99:.1f}", f"{s50:.1f} / {s99:.1f}",
                     f"{p50 / s50:.2f}× p50"))
    else:
        rows.append(("single query p50 / p99, ms", f"{p50:.1f} / {p99:.1f}", "–", ""))

    cold_t = [child(COLD_TINY.format(root=str(ROOT), folder=folder)) for _ in range(3)]
    cold_s = [child(COLD_ST.format(folder=folder)) for _ in range(2)] if st is not None else []
    rows.append(("cold start to first embedding, s", f"{statistics.median(c['wall'] for c in cold_t):.2f}",
                 f"{statistics.median(c['wall'] for c in cold_s):.2f}" if cold_s else "–",
                 f"RSS then {cold_t[0]['rss_mib']:.0f} vs {cold_s[0]['rss_mib']:.0f} MiB" if cold_s else ""))
    if not args.quick:
        r_t = child(RSS_TINY.format(root=str(ROOT), folder=folder, corpus=str(CORPUS)))
        r_s = child(RSS_ST.format(folder=folder, corpus=str(CORPUS))) if st is not None else None
        rows.append(("peak RSS encoding 10,000 texts, MiB", f"{r_t['rss_mib']:.0f}",
                     f"{r_s['rss_mib']:.0f}" if r_s else "–", f"after load: {r_t['loaded_mib']:.0f} MiB"))

    short = [t for t in texts if len(t.split()) <= 8][:512]
    long = passages(texts, tiny, count=32 if args.quick else 128)
    for name, group in (("short queries (≤ 8 words)", short), ("256-token passages", long)):
        n = sum(len(x) for x in tiny.token_ids(group))
        t1 = timed(tiny.encode, group, batch_size=32)
        s1 = timed(st.encode, group, batch_size=32) if st is not None else None
        rows.append((f"{name}, tokens/s", f"{n / t1:.0f}", f"{n / s1:.0f}" if s1 else "–",
                     f"{s1 / t1:.2f}×" if s1 else ""))
    old = tiny.threads
    for threads in (1, 2):
        tiny.threads = threads
        t1 = timed(tiny.encode, texts, batch_size=32)
        rows.append((f"tinyminilm threads={threads}, tokens/s", f"{n_tok / t1:.0f}", "", ""))
    tiny.threads = old

    import threadpoolctl

    blas = threadpoolctl.threadpool_info()
    blas_desc = ", ".join(f"{b.get('internal_api')} {b.get('version')} {b.get('architecture', '')} "
                          f"({b.get('num_threads')} threads)" for b in blas if b.get("user_api") == "blas")
    print(f"machine: {platform.machine()}, {os.cpu_count()} CPUs, {platform.processor() or platform.platform()}; "
          f"Python {platform.python_version()}, NumPy {np.__version__}, BLAS {blas_desc}")
    print(f"reference: {st_version}")
    print(f"corpus: {len(texts)} texts, {n_tok} real tokens (mean {n_tok / len(texts):.1f}); "
          f"{args.rounds} alternating rounds, medians\n")
    print("| measure | tinyminilm | sentence-transformers | ratio / note |")
    print("|---|---|---|---|")
    for r in rows:
        print("| " + " | ".join(r) + " |")


if __name__ == "__main__":
    main()
