"""Benchmark `tinyminilm serve` with a closed-loop load generator; print one table beside in-process figures.

    flock /tmp/tinyminilm-bench.lock env -u OPENBLAS_CORETYPE -u OPENBLAS_L2_SIZE \
        .venv/bin/python scripts/bench_serve.py [--seconds 20] [--generator wrk|httpx]

Measured in one run, on scripts/data/stdlib_docstrings.txt (real prose):
  - in-process, before the server starts: `model.encode(q)` one short query at a time and 32 queries per call
    (queries/s: the model's own ceiling for the first scenario), and `model.encode(request_texts)` on the very
    32-text requests of the second scenario (texts/s);
  - server: time from process start to the first answered request, RSS at rest and peak RSS under load;
  - 32 closed-loop clients, one short query (<= 8 words) per POST /v1/embeddings: queries/s, p50 and p99 latency;
  - 8 closed-loop clients, 32 texts per POST /v1/embeddings: texts/s, as a fraction of the in-process figure.
Requests use OpenAI's route with encoding_format="base64", as the official openai client sends them.

The load generator is wrk (C, one thread; Debian: `apt-get install -y wrk`) when it is on PATH, else an asyncio +
httpx client (`--generator httpx`), which spends far more CPU per request. Either way it runs on the same 2 cores
as the server and takes CPU from it: the server figures are a lower bound of what a separate client would see.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import platform
import random
import re
import shutil
import socket
import subprocess
import sys
import tempfile
import threading
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))
CORPUS = ROOT / "scripts" / "data" / "stdlib_docstrings.txt"
MODEL = "sentence-transformers/all-MiniLM-L6-v2"


def cpu_name() -> str:
    for line in open("/proc/cpuinfo", encoding="utf-8"):
        if line.startswith("model name"):
            return line.split(":", 1)[1].strip()
    return platform.processor() or "unknown CPU"


def blas_kernel() -> str:
    import numpy  # noqa: F401 - loads the BLAS that threadpoolctl reports
    from threadpoolctl import threadpool_info

    for lib in threadpool_info():
        if lib.get("user_api") == "blas":
            return f"{lib.get('internal_api')} {lib.get('version')}, {lib.get('architecture')}, " \
                   f"{lib.get('num_threads')} threads"
    return "no BLAS found"


def rss_mib(pid: int) -> float:
    for line in open(f"/proc/{pid}/status", encoding="utf-8"):
        if line.startswith("VmRSS:"):
            return int(line.split()[1]) / 1024
    return float("nan")


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def percentile(values: list[float], q: float) -> float:
    values = sorted(values)
    return values[min(len(values) - 1, int(q / 100 * len(values)))]


# ------------------------------------------------------------------------------------------------------------------
# Load generators: each returns (requests answered per second, p50 ms, p99 ms, non-200 count)
# ------------------------------------------------------------------------------------------------------------------

_WRK_LUA = """
local bodies = {}
for line in io.lines("%s") do bodies[#bodies + 1] = line end
local i = 0
local headers = {["Content-Type"] = "application/json"}
request = function()
  i = i %% #bodies + 1
  return wrk.format("POST", "/v1/embeddings", headers, bodies[i])
end
done = function(summary, latency, requests)
  local e = summary.errors
  io.write(string.format("RESULT %%d %%d %%f %%f %%f %%d\\n", summary.requests, summary.duration,
    latency:percentile(50), latency:percentile(99), latency.mean, e.status + e.connect + e.read + e.write + e.timeout))
  io.write(string.format("ERRORS status %%d connect %%d read %%d write %%d timeout %%d\\n",
    e.status, e.connect, e.read, e.write, e.timeout))
end
"""


def run_wrk(url: str, bodies: list[str], clients: int, seconds: int) -> tuple[float, float, float, int]:
    with tempfile.TemporaryDirectory() as tmp:
        lines = Path(tmp, "bodies.jsonl")
        lines.write_text("\n".join(bodies) + "\n", encoding="utf-8")
        script = Path(tmp, "post.lua")
        script.write_text(_WRK_LUA % lines, encoding="utf-8")
        out = subprocess.run(["wrk", "-t1", f"-c{clients}", f"-d{seconds}s", "--timeout", "30s", "-s", str(script),
                              url], capture_output=True, text=True, check=True).stdout
    m = re.search(r"RESULT (\d+) (\d+) (\S+) (\S+) (\S+) (\d+)", out)
    errors_line = re.search(r"ERRORS .*", out)
    if errors_line and m.group(6) != "0":
        print(f"wrk, {clients} clients: {errors_line.group()}", file=sys.stderr)
    requests, duration_us, p50, p99, _, errors = m.groups()
    return int(requests) / (int(duration_us) / 1e6), float(p50) / 1e3, float(p99) / 1e3, int(errors)


def run_httpx(url: str, bodies: list[str], clients: int, seconds: int) -> tuple[float, float, float, int]:
    import httpx

    latencies: list[float] = []
    errors = 0

    async def client(k: int, c: httpx.AsyncClient, deadline: float) -> None:
        nonlocal errors
        i = k
        while time.perf_counter() < deadline:
            t0 = time.perf_counter()
            r = await c.post("/v1/embeddings", content=bodies[i % len(bodies)],
                             headers={"Content-Type": "application/json"})
            latencies.append(time.perf_counter() - t0)
            errors += r.status_code != 200
            i += clients

    async def main() -> float:
        limits = httpx.Limits(max_connections=clients)
        async with httpx.AsyncClient(base_url=url, limits=limits, timeout=60) as c:
            t0 = time.perf_counter()
            await asyncio.gather(*(client(k, c, t0 + seconds) for k in range(clients)))
            return time.perf_counter() - t0

    elapsed = asyncio.run(main())
    return len(latencies) / elapsed, percentile(latencies, 50) * 1e3, percentile(latencies, 99) * 1e3, errors


# ------------------------------------------------------------------------------------------------------------------


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--seconds", type=int, default=20, help="duration of each load scenario (default 20)")
    p.add_argument("--generator", choices=("wrk", "httpx"), default="wrk" if shutil.which("wrk") else "httpx")
    p.add_argument("--model", default=None, help="model folder (default: the pinned model)")
    args = p.parse_args()
    if args.generator == "wrk" and not shutil.which("wrk"):
        sys.exit("wrk is not on PATH: install it (Debian: apt-get install -y wrk) or pass --generator httpx")
    generate = run_wrk if args.generator == "wrk" else run_httpx

    import tinyminilm

    load_before = open("/proc/loadavg", encoding="utf-8").read().split()[0]
    rng = random.Random(0)
    corpus = [t for t in CORPUS.read_text(encoding="utf-8").splitlines() if t.strip()]
    short = sorted({t for t in corpus if len(t.split()) <= 8})
    rng.shuffle(short)
    requests32 = [rng.sample(corpus, 32) for _ in range(64)]

    # In-process figures, before the server exists, on the same texts.
    model = tinyminilm.load(args.model)
    model.encode(short[:64])
    n, t0 = 0, time.perf_counter()
    while time.perf_counter() - t0 < 10:
        model.encode(short[n % len(short)])
        n += 1
    single_qps = n / (time.perf_counter() - t0)
    n, t0 = 0, time.perf_counter()
    while time.perf_counter() - t0 < 10:  # the model's ceiling for this load: 32 queries per forward pass
        model.encode([short[(n + j) % len(short)] for j in range(32)], batch_size=32)
        n += 32
    batched_qps = n / (time.perf_counter() - t0)
    model.encode(requests32[0])
    texts, t0, k = 0, time.perf_counter(), 0
    while time.perf_counter() - t0 < args.seconds:
        model.encode(requests32[k % len(requests32)], batch_size=32)
        texts += 32
        k += 1
    inproc_tps = texts / (time.perf_counter() - t0)
    del model

    port = free_port()
    url = f"http://127.0.0.1:{port}"
    # --auto-truncate: texts over 256 tokens are truncated, as the in-process encode does (else they get 413)
    cmd = [sys.executable, "-m", "tinyminilm", "serve", "--port", str(port), "--log-level", "warning",
           "--auto-truncate"]
    if args.model:
        cmd += ["--model", args.model]
    body1 = json.dumps({"input": "hello world", "model": MODEL, "encoding_format": "base64"}).encode()
    start = time.perf_counter()
    proc = subprocess.Popen(cmd, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE)
    try:
        while True:  # first answered embedding request
            try:
                with socket.create_connection(("127.0.0.1", port), timeout=5) as s:
                    s.sendall(b"POST /v1/embeddings HTTP/1.1\r\nHost: x\r\nContent-Type: application/json\r\n"
                              b"Connection: close\r\nContent-Length: %d\r\n\r\n%s" % (len(body1), body1))
                    if s.recv(12).startswith(b"HTTP/1.1 200"):
                        break
            except OSError:
                time.sleep(0.005)
            if proc.poll() is not None:
                sys.exit(f"the server exited: {proc.stderr.read().decode()}")
        first_answer = time.perf_counter() - start
        time.sleep(1)
        rss_rest = rss_mib(proc.pid)

        peak = [rss_rest]
        stop = threading.Event()

        def watch() -> None:
            while not stop.wait(0.1):
                peak[0] = max(peak[0], rss_mib(proc.pid))

        watcher = threading.Thread(target=watch, daemon=True)
        watcher.start()
        queries = [json.dumps({"input": q, "model": MODEL, "encoding_format": "base64"}) for q in short]
        batches = [json.dumps({"input": r, "model": MODEL, "encoding_format": "base64"}) for r in requests32]
        generate(url, queries, 32, 3)  # warm-up
        qps, q50, q99, q_err = generate(url, queries, 32, args.seconds)
        rps, b50, b99, b_err = generate(url, batches, 8, args.seconds)
        stop.set()
        watcher.join()
    finally:
        proc.terminate()
        code = proc.wait(60)

    import numpy

    print(f"CPU: {cpu_name()}, {os.cpu_count()} cores; BLAS: {blas_kernel()}")
    print(f"Python {platform.python_version()}, NumPy {numpy.__version__}, load generator: {args.generator} "
          f"(on the same cores); {args.seconds} s per scenario; server exit status {code}")
    load_after = open("/proc/loadavg", encoding="utf-8").read().split()[0]
    print(f"1-minute load average before / after: {load_before} / {load_after} (other work on this machine "
          "takes CPU from both columns)")
    print()
    print("| measure | server | in-process | target |")
    print("|---|---|---|---|")
    print(f"| 32 clients × 1 short query: queries/s | {qps:.0f} | {single_qps:.0f} one at a time; "
          f"{batched_qps:.0f} 32 per call | ≥ 500 |")
    print(f"| 32 clients × 1 short query: p50 / p99 ms | {q50:.1f} / {q99:.1f} | | p99 ≤ 150 |")
    print(f"| 8 clients × 32 texts: texts/s | {rps * 32:.0f} ({rps * 32 / inproc_tps:.0%}) | {inproc_tps:.0f} "
          "(encode, 32 a call) | ≥ 90% |")
    print(f"| 8 clients × 32 texts: p50 / p99 ms | {b50:.0f} / {b99:.0f} | | |")
    print(f"| RSS at rest / peak under load, MiB | {rss_rest:.0f} / {peak[0]:.0f} | | |")
    print(f"| process start to first answered request, s | {first_answer:.2f} | | |")
    print(f"| non-200 answers | {q_err + b_err} | | 0 |")


if __name__ == "__main__":
    main()
