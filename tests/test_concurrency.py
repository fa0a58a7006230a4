"""Threads, forked workers and concurrent downloads: the same vectors, no hang, never a half-written model trusted.

Every test that could hang runs with a timeout, so a deadlock fails the test instead of stalling CI.
"""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import textwrap
import threading
import time
from pathlib import Path

import numpy as np
import pytest

import tiny_bert
import tinyminilm
from tinyminilm import DownloadError, hub

TEXTS = ["the first sentence", "", "A second, longer sentence about the weather in spring.",
         "中文 and émoji 😀", "x" * 40, "word " * 300]  # the last is truncated at max_seq_length


def run_threads(n: int, target, timeout: float = 300) -> list:
    """Run target(i) in n threads started together; return results, re-raising the first error."""
    results, errors = [None] * n, []
    barrier = threading.Barrier(n)

    def work(i):
        try:
            barrier.wait()
            results[i] = target(i)
        except BaseException as e:  # noqa: BLE001 - handed back to the test
            errors.append(e)

    threads = [threading.Thread(target=work, args=(i,), daemon=True) for i in range(n)]
    for t in threads:
        t.start()
    deadline = time.monotonic() + timeout
    for t in threads:
        t.join(max(0.0, deadline - time.monotonic()))
    assert not any(t.is_alive() for t in threads), "threads still running: deadlock?"
    if errors:
        raise errors[0]
    return results


def test_eight_threads_share_one_model_exactly(model):
    expected = model.encode(TEXTS)
    order = [list(np.random.default_rng(i).permutation(len(TEXTS))) for i in range(8)]  # different batches each
    got = run_threads(8, lambda i: model.encode([TEXTS[j] for j in order[i]], batch_size=1 + i % 3))
    for i, emb in enumerate(got):
        back = np.empty_like(emb)
        back[order[i]] = emb
        assert np.abs(back - expected).max() <= 1e-6
    same = run_threads(8, lambda i: model.encode(TEXTS))  # the same call in every thread: bit for bit
    for emb in same:
        assert np.array_equal(emb, expected)


def test_setting_max_seq_length_while_threads_encode(tmp_path):
    """The setter swaps in a new tokenizer under a lock, never reconfiguring one that another thread is using
    (the tokenizers library's "Already borrowed" error). Each encode sees one setting, whole."""
    enc = tinyminilm.load(tiny_bert.make_folder(tmp_path / "m", "pooling_mode_mean_tokens", True))
    texts = ["the cat sat on the mat " * 5, "hello world", "a quick brown fox jumps over the lazy dog " * 3]
    enc.max_seq_length = 16
    at16 = enc.encode(texts)
    enc.max_seq_length = 8
    at8 = enc.encode(texts)
    assert not np.allclose(at16[0], at8[0])  # the two settings give different vectors: the check below can fail
    stop = threading.Event()

    def flip():
        for k in range(2000):
            enc.max_seq_length = 16 if k % 2 else 8
            if stop.is_set():
                break

    def encode_many(i):
        if i == 0:
            return flip()
        seen = []
        for _ in range(150):
            emb = enc.encode(texts)
            assert np.allclose(emb, at16, atol=1e-6) or np.allclose(emb, at8, atol=1e-6)
            seen.append(len(enc.token_ids([texts[0]])[0]))
        stop.set()
        return seen

    lengths = run_threads(8, encode_many)
    assert {n for s in lengths[1:] for n in s} <= {8, 16}


FORK_SCRIPT = textwrap.dedent("""
    import multiprocessing as mp, sys
    import numpy as np
    import tinyminilm

    model = tinyminilm.load(sys.argv[1])
    texts = %r
    parent = model.encode(texts)  # the tokenizer (and BLAS) are used in the parent before forking

    def work(i):
        return model.encode(texts[i:i + 2])

    with mp.get_context("fork").Pool(2) as pool:
        got = pool.map_async(work, range(0, len(texts), 2)).get(timeout=120)
    assert np.abs(np.concatenate(got) - parent).max() <= 1e-6
    print("ok")
""") % (TEXTS,)


@pytest.mark.parametrize("parallelism", [None, "true", "false"])
def test_forked_workers_do_not_deadlock(model_dir, tmp_path, parallelism):
    """TOKENIZERS_PARALLELISM=true + fork is the known trap: the Rust thread pool used before fork does not exist
    in the child, and encode_batch there waits forever. tinyminilm tokenizes one text per call, off that pool."""
    script = tmp_path / "fork.py"
    script.write_text(FORK_SCRIPT)
    env = {k: v for k, v in os.environ.items() if k != "TOKENIZERS_PARALLELISM"}
    if parallelism is not None:
        env["TOKENIZERS_PARALLELISM"] = parallelism
    run = subprocess.run([sys.executable, str(script), str(model_dir)], env=env, capture_output=True, text=True,
                         timeout=300)
    assert run.returncode == 0 and run.stdout.strip() == "ok", run.stderr[-2000:]
    assert "huggingface/tokenizers" not in run.stderr  # nor does the tokenizers library warn about the fork


# ------------------------------------------------------------------------------------------------------------
# Downloads: two processes at once, and a process killed mid-download
# ------------------------------------------------------------------------------------------------------------

FETCH_SCRIPT = textwrap.dedent("""
    import os, sys, time
    from pathlib import Path
    from tinyminilm import hub

    src, target, log, started, delay = Path(sys.argv[1]), Path(sys.argv[2]), sys.argv[3], Path(sys.argv[4]), \\
        float(sys.argv[5])

    class Slow:  # the model folder, served in small slow chunks like a network download
        def __init__(self, f):
            self.f = f
        def read(self, n=-1):
            time.sleep(delay)
            return self.f.read(1 << 18)

    def slow_copy(dest):
        with open(log, "a") as f:
            f.write(f"{os.getpid()}\\n")
        started.touch()
        for name, digest in hub.MANIFEST.items():
            with open(src / name, "rb") as f:
                hub.install_verified(Slow(f), dest / name, digest)

    hub.SOURCES = (("slow copy", slow_copy),)
    print(hub.ensure_model(target))
""")


def start_fetch(tmp_path, model_dir, target, delay: float) -> subprocess.Popen:
    script = tmp_path / "fetch.py"
    script.write_text(FETCH_SCRIPT)
    return subprocess.Popen([sys.executable, str(script), str(model_dir), str(target), str(tmp_path / "fetches.log"),
                             str(tmp_path / "started"), str(delay)], stdout=subprocess.PIPE, stderr=subprocess.PIPE,
                            text=True)


def wait_for(path: Path, proc: subprocess.Popen, timeout: float = 120) -> None:
    deadline = time.monotonic() + timeout
    while not path.exists():
        assert proc.poll() is None, proc.communicate()[1]
        assert time.monotonic() < deadline, "the fetch never started"
        time.sleep(0.01)


def part_files(folder: Path) -> list[Path]:
    return [p for p in folder.rglob("*") if p.name.endswith(".part")]


def test_two_processes_fetching_at_once(model_dir, tmp_path):
    target = tmp_path / "cache" / "all-MiniLM-L6-v2"
    first = start_fetch(tmp_path, model_dir, target, delay=0.002)
    wait_for(tmp_path / "started", first)  # the first holds the lock and is writing
    second = start_fetch(tmp_path, model_dir, target, delay=0.002)
    seen = set()
    while first.poll() is None or second.poll() is None:  # a reader polling the cache meanwhile
        try:
            seen.add(str(hub.ensure_model(target, download=False)))
        except DownloadError:
            seen.add("not there yet")  # never IntegrityError: a file is in place only once verified
        time.sleep(0.02)
    outs = [p.communicate(timeout=60) for p in (first, second)]
    for p, (out, err) in zip((first, second), outs):
        assert p.returncode == 0, err
        assert out.strip() == str(target)
    assert len((tmp_path / "fetches.log").read_text().split()) == 1  # the second waited, then used the first's
    assert seen <= {"not there yet", str(target)}
    hub.verify(target, use_stamp=False)
    assert part_files(target) == []


def test_a_killed_download_leaves_nothing_trusted(model_dir, tmp_path):
    target = tmp_path / "cache" / "all-MiniLM-L6-v2"
    proc = start_fetch(tmp_path, model_dir, target, delay=0.02)  # ~7 s for model.safetensors alone
    wait_for(tmp_path / "started", proc)
    time.sleep(0.5)
    proc.send_signal(signal.SIGKILL)  # no cleanup code runs
    proc.communicate(timeout=60)
    assert not (target / "model.safetensors").exists()  # the half-written weights are only a .part file
    assert part_files(target), "expected the killed process's temporary file"
    with pytest.raises(DownloadError):
        hub.ensure_model(target, download=False)  # an incomplete folder is never returned
    with pytest.raises(tinyminilm.TinyMiniLMError):
        tinyminilm.load(target)  # nor loadable: no weights file, only a temporary

    (tmp_path / "started").unlink()
    retry = start_fetch(tmp_path, model_dir, target, delay=0)  # the next fetch starts over and cleans up
    out, err = retry.communicate(timeout=300)
    assert retry.returncode == 0, err
    hub.verify(target, use_stamp=False)
    assert part_files(target) == []


# --------------------------------------------------------------------------------------------------------------
# BLAS threads and cores under concurrent callers (tinyminilm.blas, tinyminilm.batching)
# --------------------------------------------------------------------------------------------------------------

PARAGRAPHS = (Path(__file__).parent.parent / "scripts" / "data" / "stdlib_docstrings.txt").read_text(
    encoding="utf-8").splitlines()


def blas_threads() -> list[int]:
    from threadpoolctl import threadpool_info

    return [lib["num_threads"] for lib in threadpool_info() if lib["user_api"] == "blas"]


def test_blas_threads_are_restored_after_concurrent_encodes(model):
    """One thread's encode must not undo the BLAS limit another set: afterwards BLAS has its threads back."""
    from threadpoolctl import threadpool_limits

    texts = PARAGRAPHS[:64]
    with threadpool_limits(limits=2, user_api="blas"):  # 2 even on a 1-CPU runner, so a leak to 1 shows
        before = blas_threads()
        assert before and all(n == 2 for n in before)
        for round_ in range(8):
            run_threads(3, lambda i: model.encode(texts, batch_size=8))
            assert blas_threads() == before, f"round {round_}: BLAS left at {blas_threads()} threads"


def test_concurrent_encodes_never_run_more_batches_than_cores(model, monkeypatch):
    """Four callers, each free to use every core: together they still run at most one batch per core, each
    with BLAS on one thread."""
    from tinyminilm.batching import default_threads
    from tinyminilm.encoder import SentenceEncoder

    lock = threading.Lock()
    running, peak, blas_seen = [0], [0], set()
    real_forward = SentenceEncoder._forward

    def forward(self, *args, **kwargs):
        with lock:
            running[0] += 1
            peak[0] = max(peak[0], running[0])
        blas_seen.update(blas_threads())
        try:
            return real_forward(self, *args, **kwargs)
        finally:
            with lock:
                running[0] -= 1

    monkeypatch.setattr(SentenceEncoder, "_forward", forward)
    run_threads(4, lambda i: model.encode(PARAGRAPHS[100 * i:100 * i + 48], batch_size=4))
    assert 1 <= peak[0] <= default_threads(), f"{peak[0]} batches at once on {default_threads()} cores"
    assert blas_seen == {1}


DETERMINISM = """
import sys, threading
from pathlib import Path
import numpy as np
import tinyminilm
from threadpoolctl import threadpool_info

paragraphs = Path(sys.argv[2]).read_text(encoding="utf-8").splitlines()
chunks = [paragraphs[i * 40:(i + 1) * 40] for i in range(12)]  # 12 chunks of 40 real paragraphs
model = tinyminilm.load(sys.argv[1])
want = [model.encode(c) for c in chunks]  # one after another
for repeat in range(2):  # then the same calls from 4 threads at once, twice
    got = [None] * len(chunks)
    def work(k):
        for j in range(k, len(chunks), 4):
            got[j] = model.encode(chunks[j])
    threads = [threading.Thread(target=work, args=(k,)) for k in range(4)]
    [t.start() for t in threads]
    [t.join() for t in threads]
    worst = max(float(np.abs(g - w).max()) for g, w in zip(got, want))
    same = all(np.array_equal(g, w) for g, w in zip(got, want))
    print(repeat, "identical" if same else f"differ by {worst:.3g}", flush=True)
print("kernel", [lib.get("architecture") for lib in threadpool_info() if lib["user_api"] == "blas"])
"""


def test_the_same_call_gives_the_same_bits_beside_other_callers(model_dir, tmp_path):
    """The README's promise on a realistic workload, run where it is hardest to keep: OpenBLAS's Haswell kernels,
    which round differently on 1 and 2 threads (so a BLAS limit changed by another caller would show)."""
    script = tmp_path / "determinism.py"
    script.write_text(DETERMINISM, encoding="utf-8")
    env = {**os.environ, "OPENBLAS_CORETYPE": "Haswell"}
    out = subprocess.run([sys.executable, str(script), str(model_dir),
                          str(Path(__file__).parent.parent / "scripts" / "data" / "stdlib_docstrings.txt")],
                         env=env, capture_output=True, text=True, timeout=600)
    assert out.returncode == 0, out.stderr
    lines = out.stdout.splitlines()
    assert lines[:2] == ["0 identical", "1 identical"], out.stdout
    assert "Haswell" in lines[-1]


def test_a_lone_query_takes_every_core_and_runs_alone(model, monkeypatch):
    """A call that is one batch (a single query) runs with BLAS on every core, and only once no other batch
    runs; calls of several batches run theirs on one core each with BLAS on one thread."""
    from tinyminilm.batching import default_threads
    from tinyminilm.encoder import SentenceEncoder

    lock = threading.Lock()
    running, seen = [0], []
    real_forward = SentenceEncoder._forward

    def forward(self, features, *args, **kwargs):
        with lock:
            running[0] += 1
            seen.append((len(features["input_ids"]), running[0], tuple(blas_threads())))
        try:
            return real_forward(self, features, *args, **kwargs)
        finally:
            with lock:
                running[0] -= 1

    monkeypatch.setattr(SentenceEncoder, "_forward", forward)
    work = [lambda: model.encode("a lone query about the weather")] * 3 + \
           [lambda: model.encode(PARAGRAPHS[200:232], batch_size=4)] * 3
    run_threads(len(work), lambda i: work[i]())
    cores = default_threads()
    lone = [s for s in seen if s[0] == 1]
    assert len(lone) >= 3 and all(alone == 1 and blas == (cores,) for _, alone, blas in lone), lone
    assert all(blas == (1,) for n, _, blas in seen if n > 1)
    assert max(r for _, r, _ in seen) <= cores
