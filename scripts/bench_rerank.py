"""Benchmark tinyminilm's CrossEncoder.predict against sentence-transformers and onnxruntime on real pairs; a table.

    python scripts/export_onnx.py --cross          # once: weights/bench-cross/ and weights/onnx/cross.onnx
    flock /tmp/tinyminilm-bench.lock python scripts/bench_rerank.py [--rounds 3] [--quick] [--onnx FILE]

Run it where scripts/bench.py runs (the `reference` and `bench` extras); a missing engine gets a "–" column. Like
bench.py it re-executes itself without OPENBLAS_CORETYPE / OPENBLAS_L2_SIZE (the CPU's real kernels) and prints the
CPU and the BLAS kernel; its helpers are bench.py's, imported.

The model: a BertForSequenceClassification of cross-encoder/ms-marco-MiniLM-L6-v2's shape and files (6 layers,
hidden 384, 12 heads, FFN 1536, vocabulary 30522, 512 positions, one label, raw logits; the pinned uncased
tokenizer), with random weights from a seed — tests/cross_models.py's "st4-config" variant, built once under
weights/bench-cross/ (git-ignored) by `bench_folder`, the one place that builds it (export_onnx.py --cross calls
it too). The real weights cannot be fetched here; speed does not depend on the weights' values.

The workload: 20 short queries (QUERIES) × 50 documents each = 1,000 query–document pairs. The documents are 1,000
distinct held-out paragraphs of scripts/data/stdlib_docstrings.txt (bench.py's corpus, not the golden texts),
drawn with a seeded generator; query i gets the i-th 50 — as a reranker sees the top 50 hits of each query.

Engines, each doing the whole job (tokenize pairs, model, head), batch 32, logits out:
  - tinyminilm: `CrossEncoder(folder).predict(pairs, batch_size=32)`;
  - sentence-transformers on torch CPU: `CrossEncoder(folder, device="cpu").predict(pairs, batch_size=32)`;
  - onnxruntime: the fp32 export of the same BertForSequenceClassification (scripts/export_onnx.py --cross, logits
    output) with ORT_ENABLE_ALL and its default threads; pairs tokenized by the tokenizers library as the reference
    does (`[CLS] q [SEP] d [SEP]`, longest_first truncation at the model's max_length, 512), sorted by token count,
    batches of 32 padded to their longest.
Rows, in one run, the engines alternated within each round (a different one first each round), medians of rounds:
  - the 1,000 pairs in one predict call, pairs/s, and its fraction of the GEMM ceiling (bench.py's FLOP count at
    each pair's real length — the pooler and classifier add 0.3 MFLOP a pair, left out — over NumPy's float32 GEMM
    rate measured between the rounds);
  - one predict call of 50 pairs per query, 20 calls (a rerank per request, as CrossEncoder.rank does), pairs/s;
  - one pair per call, p50 / p99 ms (in this process, warm), over pairs spread across the workload.
Before timing, the engines' scores on all pairs are compared (max |difference| from tinyminilm printed); a
difference above 1e-3 stops the run: the columns would not measure the same job.
"""

from __future__ import annotations

import os
import sys

_HOLD_BACK = ("OPENBLAS_CORETYPE", "OPENBLAS_L2_SIZE")
if __name__ == "__main__" and any(v in os.environ for v in _HOLD_BACK):
    # Before NumPy (and its OpenBLAS) is loaded: run again without the variables, so the real kernels are used.
    os.execve(sys.executable, [sys.executable, *sys.argv], {k: v for k, v in os.environ.items() if k not in _HOLD_BACK})

import shutil  # noqa: E402
import statistics  # noqa: E402
from pathlib import Path  # noqa: E402

import numpy as np  # noqa: E402

ROOT = Path(__file__).resolve().parent.parent
sys.path[:0] = [str(ROOT), str(ROOT / "scripts")]
import bench  # noqa: E402

BENCH_FOLDER = ROOT / "weights" / "bench-cross"
DEFAULT_ONNX = ROOT / "weights" / "onnx" / "cross.onnx"
VARIANT = "st4-config"  # ms-marco-MiniLM-L6-v2's layout: config.json's activation_fn Identity, no modules.json
QUERIES = ["how to join paths on windows", "copy a directory tree", "parse an ISO date string",
           "format a number with thousands separators", "read an environment variable", "hash a file with sha256",
           "send an email with an attachment", "decode base64 text", "temporary file deleted on close",
           "measure how long a function takes", "iterate over pairs of a list", "merge two dictionaries",
           "walk a directory recursively", "parse JSON from a string", "escape HTML characters",
           "save an object to disk", "wait for several threads to finish", "url encode query parameters",
           "compare two files line by line", "random sample without replacement"]


def bench_folder(dest: Path = BENCH_FOLDER) -> Path:
    """The bench's cross-encoder folder (see the module doc), built the first time: tests/cross_models.py's
    VARIANT folder from the pinned tokenizer files (tinyminilm.hub.ensure_model()) and cross_models.SEED. Built
    beside `dest` and renamed into place, so a folder there is always whole."""
    if (dest / "model.safetensors").is_file():
        return dest
    sys.path.insert(0, str(ROOT / "tests"))
    import cross_models

    from tinyminilm import hub

    partial = dest.with_name(dest.name + ".partial")
    shutil.rmtree(partial, ignore_errors=True)
    cross_models.make_folder(VARIANT, hub.ensure_model(), partial)
    partial.rename(dest)
    return dest


class OrtCrossEncoder:
    """The cross-encoder on onnxruntime, the reference's tokenization around it (see the module doc)."""

    def __init__(self, onnx_path: str, folder: str, max_length: int = 512, threads: int = 0) -> None:
        from tokenizers import Tokenizer

        self.session = bench.ort_session(onnx_path, threads)
        self.tokenizer = Tokenizer.from_file(str(Path(folder) / "tokenizer.json"))
        self.tokenizer.enable_truncation(max_length, strategy="longest_first")  # not the file's own 128
        self.tokenizer.no_padding()

    def predict(self, pairs: list[tuple[str, str]], batch_size: int = 32) -> np.ndarray:
        """float32 [n]: the logit of each pair, in input order."""
        out = np.empty(len(pairs), np.float32)
        for idx, feeds in bench.ort_batches(self.tokenizer.encode_batch(list(pairs)), batch_size):
            out[idx] = self.session.run(None, feeds)[0][:, 0]  # logits [b, 1] -> [b]
        return out


def rerank_pairs(corpus: list[str], queries: int, docs: int) -> list[list[tuple[str, str]]]:
    """For each of the first `queries` QUERIES, its `docs` documents (distinct held-out paragraphs, seeded)."""
    chosen = np.random.default_rng(0).choice(len(corpus), queries * docs, replace=False)
    return [[(q, corpus[j]) for j in chosen[i * docs:(i + 1) * docs]] for i, q in enumerate(QUERIES[:queries])]


def rerank_each(model, groups: list[list[tuple[str, str]]]) -> None:
    for pairs in groups:
        model.predict(pairs, batch_size=32)


def main() -> None:
    ap = bench.arguments(__doc__, DEFAULT_ONNX, "2 queries × 10 documents, 10 single pairs: a smoke run")
    ap.add_argument("--singles", type=int, default=100, help="pairs timed one per call, per round (default 100)")
    args = ap.parse_args()
    start = bench.started()

    import tinyminilm

    folder = str(bench_folder())
    kernel = bench.blas_kernel()  # before torch or onnxruntime bring their own libraries in
    n_queries, n_docs = (2, 10) if args.quick else (len(QUERIES), 50)
    groups = rerank_pairs(bench.CORPUS.read_text(encoding="utf-8").splitlines(), n_queries, n_docs)
    pairs = [p for g in groups for p in g]
    n_singles = 10 if args.quick else args.singles
    singles = pairs[::max(1, len(pairs) // n_singles)][:n_singles]  # spread over the queries
    tiny = tinyminilm.CrossEncoder(folder)
    others, versions = bench.other_engines(args.onnx, lambda onnx: OrtCrossEncoder(onnx, folder, tiny.max_length),
                                           lambda st: st.CrossEncoder(folder, device="cpu"),
                                           "scripts/export_onnx.py --cross")
    models = {"tinyminilm": tiny, **others}
    versions.insert(0, f"tinyminilm {tinyminilm.__version__} (threads {tiny.threads})")
    engines = [e for e in bench.ENGINES if e in models]

    lengths = [len(x) for x in tiny.token_ids(pairs)]
    cut = sum(tiny.untruncated_length(p) > tiny.max_length for p in pairs)
    # Same scores? (so that the columns measure the same job; also each engine's warm-up)
    scores = {e: np.asarray(models[e].predict(pairs, batch_size=32), np.float32) for e in engines}
    agree = {e: float(np.abs(scores[e] - scores["tinyminilm"]).max()) for e in engines[1:]}
    if any(d > 1e-3 for d in agree.values()):
        raise SystemExit(f"the engines' scores differ (max |difference| {agree}): is {args.onnx} the export of "
                         f"{folder}? Run scripts/export_onnx.py --cross again")

    whole: dict[str, list[float]] = {e: [] for e in engines}
    each: dict[str, list[float]] = {e: [] for e in engines}
    single: dict[str, list[float]] = {e: [] for e in engines}

    def measure(e: str) -> None:
        m = models[e]
        whole[e].append(bench.timed(m.predict, pairs, batch_size=32))
        each[e].append(bench.timed(rerank_each, m, groups))
        single[e].extend(bench.timed(m.predict, [p], batch_size=32) for p in singles)

    gemm = bench.alternated(engines, args.rounds, measure)
    g = statistics.median(gemm)
    ceiling = g * 1e9 / (bench.flop(lengths) / len(pairs))  # pairs/s if every FLOP ran at the GEMM rate

    med = statistics.median
    t_whole = {e: med(whole[e]) for e in engines}
    t_each = {e: med(each[e]) for e in engines}
    p50 = {e: float(np.percentile(single[e], 50)) * 1e3 for e in engines}
    p99 = {e: float(np.percentile(single[e], 99)) * 1e3 for e in engines}
    row, faster = bench.table_row, bench.faster
    rows = [
        row(f"{len(pairs):,} pairs in one predict call, pairs/s (batch 32)",
            {e: f"{len(pairs) / t_whole[e]:,.1f}" for e in engines},
            lambda e: faster(t_whole["tinyminilm"], t_whole[e])),
        row(f"— fraction of the GEMM ceiling ({ceiling:,.1f} pairs/s at {g:.0f} GFLOP/s)",
            {e: f"{len(pairs) / t_whole[e] / ceiling:.0%}" for e in engines}),
        row(f"{n_queries} predict calls of {n_docs} pairs (one per query), pairs/s",
            {e: f"{len(pairs) / t_each[e]:,.1f}" for e in engines}, lambda e: faster(t_each["tinyminilm"], t_each[e])),
        row(f"one pair per call, p50 / p99 ms ({len(singles)} pairs × {args.rounds} rounds, warm, in process)",
            {e: f"{p50[e]:.2f} / {p99[e]:.2f}" for e in engines},
            lambda e: faster(p50["tinyminilm"], p50[e]) + " (p50)"),
    ]
    bench.print_report(kernel, versions, [
        f"model: {folder} (ms-marco-MiniLM-L6-v2's shape, random weights), max_length {tiny.max_length}",
        f"pairs: {n_queries} queries × {n_docs} held-out documents of {bench.CORPUS.name} = {len(pairs):,}, "
        f"{sum(lengths):,} tokens (mean {statistics.mean(lengths):.1f}, median {med(lengths):.0f}, max {max(lengths)}; "
        f"{cut} cut at {tiny.max_length}); {args.rounds} rounds, engines alternated, medians; "
        "GEMM rate per check (GFLOP/s): " + ", ".join(f"{x:.0f}" for x in gemm),
        f"max |score difference| from tinyminilm on {len(pairs):,} pairs (logits; tinyminilm's from "
        f"{scores['tinyminilm'].min():.2f} to {scores['tinyminilm'].max():.2f}): "
        + ", ".join(f"{e} {d:.1e}" for e, d in agree.items()),
    ], rows, start)


if __name__ == "__main__":
    main()
