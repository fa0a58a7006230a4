"""Where the forward pass spends its time: one batch shape, piece by piece; and what bounds a single short query.

    flock /tmp/tinyminilm-bench.lock python scripts/profile_forward.py [--batch 32] [--length 33] [--repeat 20]

Part 1 times (in CPU time of the one thread doing the work) each step of the six encoder layers of the fast forward pass on one [batch, length] batch of random
ids, BLAS on one thread (as `encode` runs each batch with threads > 1), and prints each step's share and the
matrix products' GFLOP/s next to the same-run single-thread GEMM rate.
Part 2 splits a 12-token query's `encode` (CPU and wall time) into: the API around the model, the 24 weight products alone (both
operand orders and fast.py's column blocks, 1 and 2 BLAS threads), the rest of the forward pass, and compares with the weights' size.
Like scripts/bench.py it removes OPENBLAS_CORETYPE / OPENBLAS_L2_SIZE first, and prints the CPU and kernel.
"""

from __future__ import annotations

import os
import sys

_HOLD_BACK = ("OPENBLAS_CORETYPE", "OPENBLAS_L2_SIZE")
if __name__ == "__main__" and any(v in os.environ for v in _HOLD_BACK):
    os.execve(sys.executable, [sys.executable, *sys.argv], {k: v for k, v in os.environ.items() if k not in _HOLD_BACK})

import argparse  # noqa: E402
import statistics  # noqa: E402
import time  # noqa: E402
from pathlib import Path  # noqa: E402

import numpy as np  # noqa: E402

sys.path.insert(0, str(Path(__file__).resolve().parent))
sys.path.insert(0, str(Path(__file__).resolve().parent.parent))
from bench import blas_kernel, cpu_model  # noqa: E402


def best(fn, repeat: int, clock=time.perf_counter) -> float:
    """The median of `repeat` timings of fn(), after one warm-up call, in seconds of `clock`."""
    fn()
    times = []
    for _ in range(repeat):
        t0 = clock()
        fn()
        times.append(clock() - t0)
    return statistics.median(times)


def cpu(fn, repeat: int) -> float:
    """best() in this thread's CPU time: on a shared machine, what the work costs, not how long others ran."""
    return best(fn, repeat, time.thread_time)


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--batch", type=int, default=32)
    ap.add_argument("--length", type=int, default=33, help="padded length (the mixed corpus' mean is 33)")
    ap.add_argument("--repeat", type=int, default=20)
    args = ap.parse_args()

    import threadpoolctl

    import tinyminilm
    from tinyminilm import hub

    try:
        from tinyminilm import fast as F
    except ImportError:  # before the textbook / fast split
        from tinyminilm import model as F
    ctl = threadpoolctl.ThreadpoolController()
    enc = tinyminilm.load(hub.ensure_model())
    params, cfg = enc.params, enc.config
    eps, n_head = cfg.bert.layer_norm_eps, cfg.bert.num_attention_heads
    layers = params["layers"]
    print(f"CPU: {cpu_model()}; BLAS: {blas_kernel()}; module {F.__name__}")

    B, L = args.batch, args.length
    rng = np.random.default_rng(0)
    ids = rng.integers(1000, 20000, (B, L))
    mask = np.ones((B, L), np.int64)
    bias = np.zeros((B, L), np.float32)
    x = F.embed(ids, np.zeros_like(ids), params, eps)
    rows = B * L
    with ctl.limit(limits=1, user_api="blas"):
        a = np.random.default_rng(1).standard_normal((rows, 384), dtype=np.float32)
        w = layers[0]["ffn_in"]["w"]
        gemm1 = 2 * rows * 384 * 1536 / cpu(lambda: a @ w, args.repeat) / 1e9
        steps = {}
        lay = layers[0]
        h = F.linear(x, **lay["ffn_in"])
        att = F.attention(x, bias, lay["qkv"], lay["attn_out"], n_head)
        steps["QKV product"] = cpu(lambda: F.linear(x, **lay["qkv"]), args.repeat)
        steps["attention (all of it)"] = cpu(lambda: F.attention(x, bias, lay["qkv"], lay["attn_out"], n_head),
                                              args.repeat)
        steps["attention output product"] = cpu(lambda: F.linear(x, **lay["attn_out"]), args.repeat)
        steps["add + LayerNorm (×2)"] = 2 * cpu(lambda: F.residual_layer_norm(x, att.copy(), **lay["ln_attn"], eps=eps),
                                                 args.repeat)
        steps["FFN (all of it)"] = cpu(lambda: F.feed_forward(x, lay["ffn_in"], lay["ffn_out"]), args.repeat)
        steps["FFN in product"] = cpu(lambda: F.linear(x, **lay["ffn_in"]), args.repeat)
        steps["FFN out product"] = cpu(lambda: F.linear(h, **lay["ffn_out"]), args.repeat)
        steps["GELU"] = cpu(lambda: F._gelu_in_place(h.copy()), args.repeat) - cpu(lambda: h.copy(), args.repeat)
        layer = cpu(lambda: F.encoder_layer(x, bias, lay, n_head, eps), args.repeat)
        whole = cpu(lambda: F.transformer(params, cfg, ids, mask, all_layers=False), max(3, args.repeat // 4))
    products = steps["QKV product"] + steps["attention output product"] + steps["FFN in product"] \
        + steps["FFN out product"]
    attn_core = steps["attention (all of it)"] - steps["QKV product"] - steps["attention output product"]
    ffn_rest = steps["FFN (all of it)"] - steps["FFN in product"] - steps["FFN out product"]
    print(f"\nPart 1: one layer at batch {B} × length {L} ({rows} rows), 1 BLAS thread, medians of {args.repeat}, "
          f"CPU time")
    print(f"single-thread GEMM rate [{rows}, 384] @ [384, 1536]: {gemm1:.0f} GFLOP/s\n")
    print("| step | ms | share of the layer |")
    print("|---|---|---|")
    for name, t in [("weight products (QKV, out, FFN in, FFN out)", products),
                    ("attention core: q·kᵀ, softmax, ·v, head reshapes", attn_core),
                    ("FFN between the products (bias, GELU, copies)", ffn_rest),
                    ("— of which GELU", steps["GELU"]),
                    ("add + LayerNorm ×2", steps["add + LayerNorm (×2)"]),
                    ("whole layer", layer)]:
        print(f"| {name} | {t * 1e3:.2f} | {t / layer:.0%} |")
    mm = 2 * rows * (384 * 1152 + 384 * 384 + 2 * 384 * 1536) + 2 * 2 * B * n_head * L * L * 64
    print(f"\nlayer: {mm / layer / 1e9:.0f} GFLOP/s = {mm / layer / 1e9 / gemm1:.0%} of the 1-thread GEMM rate; "
          f"weight products alone {2 * rows * 1769472 / products / 1e9:.0f} GFLOP/s; "
          f"whole forward {6 * mm / whole / 1e9:.0f} GFLOP/s ({rows / whole:.0f} tokens/s on one thread)")

    # Part 2: a 12-token query.
    q = "How do I reset the password of my account?"
    n = len(enc.token_ids([q])[0])
    qids = np.array(enc.token_ids([q]))
    qmask = np.ones_like(qids)
    xq = F.embed(qids, np.zeros_like(qids), params, eps)[0]  # [n, 384]
    ws = [(lay[k]["w"], lay[k]["b"]) for lay in layers for k in ("qkv", "attn_out", "ffn_in", "ffn_out")]
    xs = {384: xq, 1152: None, 1536: np.ascontiguousarray(np.repeat(xq, 4, axis=1))}
    wts = [np.ascontiguousarray(w.T) for w, _ in ws]  # [out, in] copies
    outs = {w.shape[1]: np.empty((n, w.shape[1]), np.float32) for w, _ in ws}

    def products(order: str) -> None:
        for (w, _), wt in zip(ws, wts):
            xin = xs[w.shape[0]]
            if order == "x@w":
                xin @ w
            elif order == "(wT@xT)T":
                (w.T @ xin.T).T
            elif order == "blocks":  # fast.py's column blocks (what it runs on one BLAS thread with AVX-512)
                F._column_block_product(xin, w, outs[w.shape[1]], 32 if w.shape[0] <= 384 else 8)
            else:  # w stored [out, in] contiguous
                xin @ wt.T

    print(f"\nPart 2: one query of {n} tokens, medians of {args.repeat * 5}")
    print("| what | 1 BLAS thread, CPU ms | 1 BLAS thread, wall ms | 2 BLAS threads, wall ms |")
    print("|---|---|---|---|")
    r = args.repeat * 5
    for name, fn in ([("encode([query]), the whole call", lambda: enc.encode([q])),
                     ("transformer() alone (6 layers)", lambda: F.transformer(params, cfg, qids, qmask,
                                                                              all_layers=False)),
                     ("24 weight products, x @ w", lambda: products("x@w")),
                     ("24 weight products, (wᵀ @ xᵀ)ᵀ", lambda: products("(wT@xT)T")),
                     ("24 weight products, x @ (w stored [out, in])ᵀ", lambda: products("wt"))]
                    + ([("24 weight products, column blocks of w (small-matrix path)", lambda: products("blocks"))]
                       if hasattr(F, "_column_block_product") else [])):
        with ctl.limit(limits=1, user_api="blas"):
            cells = [f"{cpu(fn, r) * 1e3:.3f}"]
        for threads in (1, 2):
            with ctl.limit(limits=threads, user_api="blas"):
                cells.append(f"{best(fn, r) * 1e3:.3f}")
        print(f"| {name} | " + " | ".join(cells) + " |")
    size = sum(w.nbytes for w, _ in ws)
    one = {k: np.ascontiguousarray(v[:1]) for k, v in xs.items() if v is not None}
    t0 = cpu(lambda: [(w.T @ one[w.shape[0]].T) for w, _ in ws], r)  # 1 row: GEMVs, each weight read once
    print(f"\nthe 24 weight matrices: {size / 2**20:.1f} MiB; the same 24 products for a 1-token input (matrix-vector "
          f"products, which read each weight once and pack nothing) take {t0 * 1e3:.2f} ms of CPU on one thread "
          f"({size / t0 / 1e9:.0f} GB/s): the floor of streaming the weights from memory")
    few = 2 * n * 1769472 * 6
    print(f"the query's weight products are {few / 1e6:.0f} MFLOP: {few / gemm1 / 1e6:.2f} ms at the 1-thread "
          f"GEMM rate")


if __name__ == "__main__":
    main()
