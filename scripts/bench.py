"""Benchmark tinyminilm against onnxruntime and sentence-transformers on real text, in one run; print a table.

    flock /tmp/tinyminilm-bench.lock python scripts/bench.py [--rounds 3] [--quick] [--onnx weights/onnx/model.onnx]

Run it in an environment with the `reference` and `bench` extras (torch, sentence-transformers, onnxruntime) and the
ONNX export of scripts/export_onnx.py; a missing engine gets a "–" column.

The CPU's real kernels: OPENBLAS_CORETYPE and OPENBLAS_L2_SIZE (set on some machines to hold OpenBLAS to older
kernels) are removed from this process's environment before NumPy is imported — the script re-executes itself
without them — so the whole run and the processes it starts use the kernels a user's machine would. The header
names the CPU and the kernel threadpoolctl reports.

Engines, each doing the whole job (tokenize, model, mean pooling, L2 normalize), batch 32:
  - tinyminilm: `encode(texts, batch_size=32)`;
  - onnxruntime: InferenceSession on the fp32 export with ORT_ENABLE_ALL and its default threads, texts tokenized
    with the tokenizers library (truncation at 256, as tinyminilm), sorted by token count (less padding than
    sentence-transformers' sort by characters), batches of 32 padded to their longest, pooling in NumPy;
  - sentence-transformers on torch CPU: `SentenceTransformer.encode(texts, batch_size=32)`.

Workloads (held-out real text, scripts/data/stdlib_docstrings.txt — not the golden texts), in one run, the engines
alternated within each round, medians of the rounds:
  - mixed real text, tokens/s, and each engine's fraction of the GEMM ceiling: NumPy's float32 GEMM rate measured
    in the same run (between the rounds) over the model's FLOP per token — 21.2 MFLOP of weight matrix products
    (6 layers × 2 × (384·1152 + 384·384 + 2·384·1536)) plus 9,216·L of attention products at length L
    (6 × 2 × 2 × 384 · L: q·kᵀ and weights·v), counted at each text's real length;
  - 256-token passages/s (RAG ingestion);
  - a 32-text mixed burst in one call, ms;
  - single short query p50 / p99, ms (each engine in a fresh process, one query per call), on every core and on one
    CPU (the process pinned to one CPU and each engine told to use one thread: a 1-vCPU container or function);
  - cold start: a fresh process's import + load + first query, s;
  - peak RSS of a fresh process encoding the mixed texts, MiB.
Timings on a shared machine are noisy: compare the ratios, which are measured in the same run.
scripts/bench_rerank.py measures the cross-encoder with this module's helpers (engines, rounds, the table).
"""

from __future__ import annotations

import os
import sys

_HOLD_BACK = ("OPENBLAS_CORETYPE", "OPENBLAS_L2_SIZE")
if __name__ == "__main__" and any(v in os.environ for v in _HOLD_BACK):
    # Before NumPy (and its OpenBLAS) is loaded: run again without the variables, so the real kernels are used.
    os.execve(sys.executable, [sys.executable, *sys.argv], {k: v for k, v in os.environ.items() if k not in _HOLD_BACK})

import argparse  # noqa: E402
import json  # noqa: E402
import platform  # noqa: E402
import statistics  # noqa: E402
import subprocess  # noqa: E402
import time  # noqa: E402
from pathlib import Path  # noqa: E402

import numpy as np  # noqa: E402

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))
CORPUS = ROOT / "scripts" / "data" / "stdlib_docstrings.txt"
DEFAULT_ONNX = ROOT / "weights" / "onnx" / "model.onnx"
MATMUL_FLOP_PER_TOKEN = 6 * 2 * (384 * 1152 + 384 * 384 + 2 * 384 * 1536)  # 21,233,664
ATTN_FLOP_PER_TOKEN_PER_L = 6 * 2 * 2 * 384  # 9,216
ENGINES = ("tinyminilm", "onnxruntime", "sentence-transformers")


def gemm_rate(seconds: float = 1.0) -> float:
    """float32 GFLOP/s of a [4096, 384] @ [384, 1536] product (the FFN's first matmul), NumPy's BLAS threads."""
    a = np.random.default_rng(0).standard_normal((4096, 384), dtype=np.float32)
    b = np.random.default_rng(1).standard_normal((384, 1536), dtype=np.float32)
    a @ b
    n, t0 = 0, time.perf_counter()
    while time.perf_counter() - t0 < seconds:
        a @ b
        n += 1
    return 2 * 4096 * 384 * 1536 * n / (time.perf_counter() - t0) / 1e9


def flop(lengths: list[int]) -> float:
    return sum(MATMUL_FLOP_PER_TOKEN * n + ATTN_FLOP_PER_TOKEN_PER_L * n * n for n in lengths)


def ort_session(onnx_path: str, threads: int = 0):
    """An onnxruntime CPU session with every graph optimization (ORT_ENABLE_ALL); threads 0: onnxruntime's default
    (one per physical core), else that many compute threads."""
    import onnxruntime as ort

    options = ort.SessionOptions()
    options.graph_optimization_level = ort.GraphOptimizationLevel.ORT_ENABLE_ALL
    options.intra_op_num_threads = threads
    return ort.InferenceSession(onnx_path, options, providers=["CPUExecutionProvider"])


def ort_batches(encodings: list, batch_size: int):
    """(indices, feeds) per batch of tokenizers Encodings, longest first (sorted by token count: less padding than
    sentence-transformers' sort by characters); feeds input_ids / attention_mask / token_type_ids int64 [b, L],
    padded with 0 to the batch's longest."""
    order = np.argsort([-len(e.ids) for e in encodings], kind="stable")
    for s in range(0, len(order), batch_size):
        idx = order[s:s + batch_size]
        shape = (len(idx), len(encodings[idx[0]].ids))  # the first is the longest
        feeds = {k: np.zeros(shape, np.int64) for k in ("input_ids", "attention_mask", "token_type_ids")}
        for r, i in enumerate(idx):
            n = len(encodings[i].ids)
            feeds["input_ids"][r, :n] = encodings[i].ids
            feeds["attention_mask"][r, :n] = 1
            feeds["token_type_ids"][r, :n] = encodings[i].type_ids
        yield idx, feeds


class OrtEncoder:
    """all-MiniLM-L6-v2 on onnxruntime, the whole sentence-transformers pipeline around it (see the module doc)."""

    def __init__(self, onnx_path: str, folder: str, max_length: int = 256, threads: int = 0) -> None:
        from tokenizers import Tokenizer

        self.session = ort_session(onnx_path, threads)
        self.tokenizer = Tokenizer.from_file(str(Path(folder) / "tokenizer.json"))
        self.tokenizer.enable_truncation(max_length)
        self.tokenizer.no_padding()

    def encode(self, texts: list[str] | str, batch_size: int = 32) -> np.ndarray:
        if isinstance(texts, str):
            texts = [texts]
        out = np.empty((len(texts), 384), np.float32)
        for idx, feeds in ort_batches(self.tokenizer.encode_batch(texts), batch_size):
            hidden = self.session.run(None, feeds)[0]  # [b, L, 384]
            m = feeds["attention_mask"][:, :, None].astype(np.float32)
            pooled = (hidden * m).sum(axis=1) / np.maximum(m.sum(axis=1), np.float32(1e-9))
            pooled /= np.maximum(np.linalg.norm(pooled, axis=1, keepdims=True), np.float32(1e-12))
            out[idx] = pooled
        return out


# Peak resident memory of the calling process. Not getrusage's ru_maxrss: on Linux it keeps the parent's peak
# across fork + exec, so a child started by a large process reports the parent's size.
PEAK_RSS = ("def peak_rss_mib():\n"
            "    for line in open('/proc/self/status'):\n"
            "        if line.startswith('VmHWM:'):\n"
            "            return int(line.split()[1]) / 1024\n")
LOAD = {  # threads: 0 for each engine's default, else that many compute threads
    "tinyminilm": "import tinyminilm; m = tinyminilm.load({folder!r}); m.threads = {threads} or m.threads",
    "onnxruntime": "from bench import OrtEncoder; m = OrtEncoder({onnx!r}, {folder!r}, threads={threads})",
    "sentence-transformers": ("import torch; from sentence_transformers import SentenceTransformer; "
                              "{threads} and torch.set_num_threads({threads}); "
                              "m = SentenceTransformer({folder!r}, device='cpu')"),
}
HEAD = PEAK_RSS + "import json, sys, time\nsys.path[:0] = [{root!r}, {scripts!r}]\n"
COLD = HEAD + "{load}\nm.encode(['How do I reset my password?'])\nprint(json.dumps({{'rss_mib': peak_rss_mib()}}))\n"
RSS = HEAD + """
texts = open({corpus!r}, encoding="utf-8").read().splitlines()
texts = texts[:{n}]
{load}
base = peak_rss_mib()
m.encode(texts, batch_size=32)
print(json.dumps({{"loaded_mib": base, "rss_mib": peak_rss_mib()}}))
"""
LATENCY = HEAD + """
queries = json.loads({queries!r})
{load}
for q in queries[:5]:
    m.encode([q])
times = []
for q in queries:
    t0 = time.perf_counter()
    m.encode([q])
    times.append(time.perf_counter() - t0)
times.sort()
print(json.dumps({{"p50": times[len(times) // 2] * 1e3, "p99": times[min(len(times) - 1, int(len(times) * 0.99))] * 1e3}}))
"""


def child(template: str, engine: str, one_cpu: bool = False, **kw) -> dict:
    """Run the template for one engine in a fresh interpreter that prints one JSON line; add its wall time.
    one_cpu: the interpreter is pinned to one CPU from its start, and the engine told to use one thread."""
    code = template.format(root=str(ROOT), scripts=str(ROOT / "scripts"), corpus=str(CORPUS),
                           load=LOAD[engine].format(threads=int(one_cpu), **kw), **kw)
    cpu = min(os.sched_getaffinity(0))
    pin = (lambda: os.sched_setaffinity(0, {cpu})) if one_cpu else None
    t0 = time.perf_counter()
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True, preexec_fn=pin,
                         env={**os.environ, "TOKENIZERS_PARALLELISM": "false"}).stdout
    result = json.loads(out.strip().splitlines()[-1])
    result["wall"] = time.perf_counter() - t0
    return result


def timed(fn, *args, **kwargs) -> float:
    t0 = time.perf_counter()
    fn(*args, **kwargs)
    return time.perf_counter() - t0


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


def cpu_model() -> str:
    try:
        for line in open("/proc/cpuinfo", encoding="utf-8"):
            if line.startswith("model name"):
                return line.split(":", 1)[1].strip()
    except OSError:
        pass
    return platform.processor() or platform.machine()


def blas_kernel() -> str:
    import threadpoolctl

    return ", ".join(f"{b.get('internal_api')} {b.get('version')} kernel {b.get('architecture', '?')} "
                     f"({b.get('num_threads')} threads)"
                     for b in threadpoolctl.threadpool_info() if b.get("user_api") == "blas")


def faster(ours: float, theirs: float) -> str:
    """Ratio of two times (or inverse rates) as 'N× faster' / 'N× slower' for tinyminilm."""
    return f"{theirs / ours:.2f}× faster" if theirs >= ours else f"{ours / theirs:.2f}× slower"


def arguments(doc: str, default_onnx: Path, quick: str) -> argparse.ArgumentParser:
    """The options every bench takes: --rounds, --quick (help text `quick`), --onnx (default `default_onnx`)."""
    ap = argparse.ArgumentParser(description=doc.splitlines()[0])
    ap.add_argument("--rounds", type=int, default=3, help="alternating rounds (default 3)")
    ap.add_argument("--quick", action="store_true", help=quick)
    ap.add_argument("--onnx", default=str(default_onnx), help=f"the ONNX export (default {default_onnx})")
    return ap


def alternated(engines: list[str], rounds: int, measure) -> list[float]:
    """measure(engine) for every engine in each of `rounds` rounds, a different engine first each round; returns
    NumPy's GEMM rate (GFLOP/s) measured before the first round and after each."""
    gemm = [gemm_rate()]
    for r in range(rounds):
        for e in engines[r % len(engines):] + engines[:r % len(engines)]:
            measure(e)
        gemm.append(gemm_rate())
    return gemm


def other_engines(onnx: str, make_ort, make_st, export_command: str) -> tuple[dict, list[str]]:
    """({engine: model}, version notes) for onnxruntime and sentence-transformers, each where it is installed (and,
    for onnxruntime, the export at `onnx` exists): make_ort(onnx) and make_st(sentence_transformers) build them."""
    models, versions = {}, []
    if Path(onnx).is_file():
        try:
            import onnxruntime

            models["onnxruntime"] = make_ort(onnx)
            versions.append(f"onnxruntime {onnxruntime.__version__} (ORT_ENABLE_ALL, default threads)")
        except ImportError:
            versions.append("onnxruntime not installed")
    else:
        versions.append(f"onnxruntime: no export at {onnx} (run {export_command})")
    try:
        import sentence_transformers
        import torch

        models["sentence-transformers"] = make_st(sentence_transformers)
        versions.append(f"sentence-transformers {sentence_transformers.__version__}, torch {torch.__version__} "
                        f"({torch.get_num_threads()} threads)")
    except ImportError:
        versions.append("sentence-transformers not installed")
    return models, versions


def table_row(name: str, values: dict[str, str], ratio=None) -> list[str]:
    """A row of the report's table: each of ENGINES' value ("–" where it did not run), then ratio(engine) for
    tinyminilm against each other engine that ran (empty cells for ratio None)."""
    ratios = [("" if ratio is None else ratio(e)) if e in values else "–" for e in ENGINES[1:]]
    return [name] + [values.get(e, "–") for e in ENGINES] + ratios


def started() -> tuple[float, str]:
    """(perf_counter, load average) at the start of a run, for print_report."""
    return time.perf_counter(), f"{os.getloadavg()[0]:.1f}"


def print_report(kernel: str, versions: list[str], notes: list[str], rows: list[list[str]],
                 start: tuple[float, str]) -> None:
    """The machine, the libraries, the run's notes, its time and load since `start` (started()), then the table
    (Markdown)."""
    t_start, load_start = start
    print(f"CPU: {cpu_model()}, {os.cpu_count()} CPUs; BLAS (NumPy): {kernel}; "
          f"OPENBLAS_CORETYPE / OPENBLAS_L2_SIZE unset")
    print(f"Python {platform.python_version()}, NumPy {np.__version__}; " + "; ".join(versions))
    for note in notes:
        print(note)
    print(f"run time {time.perf_counter() - t_start:.0f} s; load average at the start {load_start}, "
          f"at the end {os.getloadavg()[0]:.1f} (on shared CPUs the ratios, measured in one run, are what counts)\n")
    print("| workload | " + " | ".join(ENGINES) + " | tinyminilm vs onnxruntime | vs sentence-transformers |")
    print("|---|---|---|---|---|---|")
    for r in rows:
        print("| " + " | ".join(r) + " |")


def main() -> None:
    ap = arguments(__doc__, DEFAULT_ONNX, "small workloads and one cold start each: a smoke run")
    ap.add_argument("--texts", type=int, default=2000, help="mixed real texts per round (default 2000)")
    args = ap.parse_args()
    start = started()

    import tinyminilm
    from tinyminilm import hub

    folder = str(hub.ensure_model())
    kernel = blas_kernel()  # before torch or onnxruntime bring their own libraries in
    corpus = CORPUS.read_text(encoding="utf-8").splitlines()
    texts = corpus[:300] if args.quick else corpus[:args.texts]
    tiny = tinyminilm.load(folder)
    others, versions = other_engines(args.onnx, lambda onnx: OrtEncoder(onnx, folder),
                                     lambda st: st.SentenceTransformer(folder, device="cpu"), "scripts/export_onnx.py")
    models = {"tinyminilm": tiny, **others}
    versions.insert(0, f"tinyminilm {tinyminilm.__version__} (threads {tiny.threads})")
    engines = [e for e in ENGINES if e in models]

    lengths = [len(x) for x in tiny.token_ids(texts)]
    n_tok = sum(lengths)
    long = passages(corpus, tiny, count=32 if args.quick else 128)
    rng = np.random.default_rng(0)
    burst = [corpus[i] for i in rng.choice(len(corpus), 32, replace=False)]
    burst_tok = sum(len(x) for x in tiny.token_ids(burst))
    queries = [t for t in corpus if len(t.split()) <= 12][:60 if args.quick else 300]
    query_tok = statistics.median(len(x) for x in tiny.token_ids(queries))

    # Same vectors? (so that the columns measure the same job)
    agree = {e: float(np.abs(np.asarray(models[e].encode(texts[:64], batch_size=32))
                              - tiny.encode(texts[:64], batch_size=32)).max()) for e in engines[1:]}

    # Throughput, engines alternated within each round, the GEMM rate measured between the rounds.
    mixed: dict[str, list[float]] = {e: [] for e in engines}
    passage_t: dict[str, list[float]] = {e: [] for e in engines}
    burst_t: dict[str, list[float]] = {e: [] for e in engines}

    def measure(e: str) -> None:
        m = models[e]
        mixed[e].append(timed(m.encode, texts, batch_size=32))
        passage_t[e].append(timed(m.encode, long, batch_size=32))
        m.encode(burst, batch_size=32)
        burst_t[e].append(statistics.median(timed(m.encode, burst, batch_size=32) for _ in range(5)))

    gemm = alternated(engines, args.rounds, measure)
    g = statistics.median(gemm)
    ceiling = g * 1e9 / (flop(lengths) / n_tok)  # tokens/s if every FLOP ran at the GEMM rate

    # Fresh processes: latency (rounds alternated), cold start, peak RSS.
    kw = {"folder": folder, "onnx": args.onnx}
    latency: dict[str, list[dict]] = {e: [] for e in engines}
    latency_1: dict[str, list[dict]] = {e: [] for e in engines}
    cold: dict[str, list[dict]] = {e: [] for e in engines}
    for _ in range(1 if args.quick else args.rounds):
        for e in engines:
            latency[e].append(child(LATENCY, e, queries=json.dumps(queries), **kw))
            latency_1[e].append(child(LATENCY, e, one_cpu=True, queries=json.dumps(queries), **kw))
            cold[e].append(child(COLD, e, **kw))
    n_rss = len(texts)  # peak RSS depends on the longest batch, and the mixed texts include 256-token ones
    rss = {e: child(RSS, e, n=n_rss, **kw) for e in engines}

    med = statistics.median
    rows = []

    def row(name: str, values: dict[str, str], ratio=None) -> None:
        rows.append(table_row(name, values, ratio))

    tok_s = {e: n_tok / med(mixed[e]) for e in engines}
    row(f"mixed real text, tokens/s ({len(texts)} texts, batch 32)", {e: f"{tok_s[e]:,.0f}" for e in engines},
        lambda e: faster(med(mixed["tinyminilm"]), med(mixed[e])))
    row(f"— fraction of the GEMM ceiling ({ceiling:,.0f} tokens/s at {g:.0f} GFLOP/s)",
        {e: f"{tok_s[e] / ceiling:.0%}" for e in engines})
    row(f"256-token passages/s ({len(long)} passages)", {e: f"{len(long) / med(passage_t[e]):.1f}" for e in engines},
        lambda e: faster(med(passage_t["tinyminilm"]), med(passage_t[e])))
    long_ceiling = g * 1e9 / (flop([len(x) for x in tiny.token_ids(long)]) / len(long))  # passages/s
    row(f"— fraction of the GEMM ceiling ({long_ceiling:.1f} passages/s at {g:.0f} GFLOP/s)",
        {e: f"{len(long) / med(passage_t[e]) / long_ceiling:.0%}" for e in engines})
    p50 = {e: med(x["p50"] for x in latency[e]) for e in engines}
    p99 = {e: med(x["p99"] for x in latency[e]) for e in engines}
    row(f"one short query, p50 / p99 ms ({len(queries)} queries, median {query_tok:.0f} tokens)",
        {e: f"{p50[e]:.2f} / {p99[e]:.2f}" for e in engines}, lambda e: faster(p50["tinyminilm"], p50[e]) + " (p50)")
    p50_1 = {e: med(x["p50"] for x in latency_1[e]) for e in engines}
    p99_1 = {e: med(x["p99"] for x in latency_1[e]) for e in engines}
    row("— the same on one CPU, one thread (a 1-vCPU host)", {e: f"{p50_1[e]:.2f} / {p99_1[e]:.2f}" for e in engines},
        lambda e: faster(p50_1["tinyminilm"], p50_1[e]) + " (p50)")
    row(f"32 mixed texts in one call, ms ({burst_tok} tokens)", {e: f"{med(burst_t[e]) * 1e3:.0f}" for e in engines},
        lambda e: faster(med(burst_t["tinyminilm"]), med(burst_t[e])))
    cold_s = {e: med(x["wall"] for x in cold[e]) for e in engines}
    row("cold start: fresh process, import + load + first query, s", {e: f"{cold_s[e]:.2f}" for e in engines},
        lambda e: f"{cold_s['tinyminilm'] / cold_s[e]:.2f}× the time")
    row(f"peak RSS encoding {n_rss:,} texts, MiB (after load)",
        {e: f"{rss[e]['rss_mib']:.0f} ({rss[e]['loaded_mib']:.0f})" for e in engines},
        lambda e: f"{rss['tinyminilm']['rss_mib'] / rss[e]['rss_mib']:.2f}× the memory")

    print_report(kernel, versions, [
        f"corpus: {len(texts)} held-out texts of {CORPUS.name}, {n_tok:,} real tokens (mean {n_tok / len(texts):.1f}); "
        f"{args.rounds} rounds, engines alternated, medians; GEMM rate per check (GFLOP/s): "
        + ", ".join(f"{x:.0f}" for x in gemm),
        "max |vector difference| from tinyminilm on 64 texts: " + ", ".join(f"{e} {d:.1e}" for e, d in agree.items()),
    ], rows, start)


if __name__ == "__main__":
    main()
