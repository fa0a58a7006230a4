"""How the texts of one `encode` call become batches, and how the batches use the CPU's cores.

  1. texts with identical token ids are computed once (`deduplicate`);
  2. the rest are sorted by token count and cut into batches of at most `batch_size` texts and `BATCH_TOKENS`
     padded tokens, small enough that every worker thread gets one (`plan_batches`);
  3. the batches run on up to `threads` worker threads (`run_batches`).

Threads and BLAS. NumPy's elementwise loops (GELU, LayerNorm, softmax) run on one core, its BLAS products on
all of them. Running one batch per core with BLAS on one thread keeps every core busy for all of the work. BLAS's
thread count is a single setting for the whole process, so it cannot be set per worker thread; tinyminilm sets it
once per process instead: while any `encode` call runs batches, BLAS uses one thread — the first call to start
sets that, the last to finish restores what it was before — and all the calls of a process share one budget of
one running batch per core. So concurrent callers never run more compute threads than there are cores, nobody's
limit is undone by another thread, and every batch is computed with the same BLAS settings: the same call gives
the same bits whatever runs beside it (OpenBLAS's Haswell kernels round differently on 1 and 2 threads).
"""

from __future__ import annotations

import os
import threading
from collections.abc import Callable, Iterator
from concurrent.futures import ThreadPoolExecutor
from contextlib import contextmanager
from typing import Any, TypeVar

import numpy as np

BATCH_TOKENS = 1024  # padded tokens per batch at most: bounds activation memory; 1,024 rows already run GEMMs fast

T = TypeVar("T")


def default_threads() -> int:
    """The number of CPUs this process may run on (its affinity mask, where the OS has one)."""
    try:
        return max(1, len(os.sched_getaffinity(0)))
    except AttributeError:  # macOS, Windows
        return max(1, os.cpu_count() or 1)


def deduplicate(ids: list[list[int]]) -> tuple[list[list[int]], list[list[int]]]:
    """(distinct id lists in first-seen order, members): members[u] are the indices of the texts whose ids are
    the u-th distinct list. Duplicates are computed once and get identical rows wherever they are."""
    first: dict[tuple[int, ...], int] = {}
    members: list[list[int]] = []
    for i, x in enumerate(ids):
        u = first.setdefault(tuple(x), len(first))
        if u == len(members):
            members.append([])
        members[u].append(i)
    return [list(x) for x in first], members


def plan_batches(ids: list[list[int]], batch_size: int, threads: int) -> list[np.ndarray]:
    """Index arrays into `ids`, one per batch, longest texts first (sorting by token count cuts padding).

    A batch holds at most batch_size texts and at most BATCH_TOKENS padded tokens (long texts come in smaller
    batches). With several threads, batches are made small enough that every thread gets one.
    """
    order = np.argsort([-len(x) for x in ids], kind="stable")
    size = max(1, min(batch_size, -(-len(order) // threads)))  # ceil(n / threads)
    batches, start = [], 0
    while start < len(order):
        longest = len(ids[order[start]])  # the first text of a batch is its longest
        n = max(1, min(size, BATCH_TOKENS // max(longest, 1)))
        batches.append(order[start:start + n])
        start += n
    return batches


def run_batches(batches: list[np.ndarray], run: Callable[[np.ndarray], T], threads: int
                ) -> Iterator[tuple[np.ndarray, T]]:
    """(batch, run(batch)) for each batch, in order, running up to `threads` batches at once.

    Each batch takes one of the process's cores and runs with BLAS on one thread (see the module docstring) —
    except a call that is one batch alone (a single query, say) and may use every core: it waits until it holds
    all of them, so no other batch runs meanwhile, and runs with BLAS on all of them (a 9-token query: ~5 instead
    of ~10 ms on 2 cores). Either way a given call always runs with the same BLAS setting: the same bits.
    """
    cores = default_threads()
    with one_blas_thread:
        if len(batches) == 1 and threads >= cores > 1:
            with _CORES.take(cores), _BLAS.threads(cores):
                yield batches[0], run(batches[0])
            return

        def run_on_a_core(batch: np.ndarray) -> T:
            with _CORES.take(1):
                return run(batch)

        threads = min(threads, len(batches))
        if threads <= 1:
            for batch in batches:
                yield batch, run_on_a_core(batch)
            return
        with ThreadPoolExecutor(threads, thread_name_prefix="tinyminilm") as pool:
            yield from zip(batches, pool.map(run_on_a_core, batches))


class _CoreBudget:
    """The process's cores, shared by every encode call of every thread: a batch runs only on cores it holds."""

    def __init__(self) -> None:
        self.reset()

    @contextmanager
    def take(self, n: int) -> Iterator[None]:
        """Hold n cores (all at once, never some of them while waiting: two callers cannot deadlock)."""
        with self._changed:
            if self._free is None:
                self._free = default_threads()
            n = min(n, default_threads())
            while self._free < n:
                self._changed.wait()
            self._free -= n
        try:
            yield
        finally:
            with self._changed:
                self._free += n
                self._changed.notify_all()

    def reset(self) -> None:
        """At start, and in a forked child: the parent's worker threads are gone, and so are the cores they held."""
        self._free: int | None = None
        self._changed = threading.Condition()


class _OneBlasThread:
    """A process-wide context: BLAS runs one thread while at least one `encode` is inside it.

    The first to enter sets the limit, the last to leave restores the thread count found on entry; entries in
    between change nothing. (threadpoolctl's own `limit()` contexts restore on each exit, so two of them
    overlapping in two threads leave the process with the inner one's limit for good.)
    """

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._inside = 0
        self._saved: int | None = None

    def __enter__(self) -> None:
        with self._lock:
            if self._inside == 0:
                self._saved = _BLAS.get()
                _BLAS.set(1)
            self._inside += 1

    def __exit__(self, *exc: object) -> None:
        with self._lock:
            self._inside -= 1
            if self._inside == 0 and self._saved is not None:
                _BLAS.set(self._saved)
                self._saved = None

    def reset(self) -> None:
        """In a forked child: no encode runs there yet (the limit in force is inherited as it is)."""
        self._lock = threading.Lock()
        self._inside = 0
        self._saved = None


class _BlasThreadCount:
    """NumPy's BLAS thread count, read and set, and the name of OpenBLAS's kernel set.

    For OpenBLAS (NumPy's wheels) through its own C functions, looked up once: threadpoolctl, called for
    every encode, kept ~250 bytes per call (measured with tracemalloc: +21 kB over 156 calls) and, from 3.8 on,
    silently ignores a thread other than its "controlling" one. Other BLAS libraries (MKL, BLIS) go through
    threadpoolctl; without any, the count is unknown and nothing is set.
    """

    def __init__(self) -> None:
        self._functions: tuple[Any, Any, str] | None = None
        self._looked_up = False

    def _lookup(self) -> tuple[Any, Any, str] | None:
        if not self._looked_up:
            self._functions, self._looked_up = _openblas_functions(), True
        return self._functions

    def kernel(self) -> str:
        """The name of the kernel set OpenBLAS chose for this CPU ("SkylakeX", "Haswell", ...), or "" if unknown."""
        functions = self._lookup()
        return functions[2] if functions is not None else ""

    def get(self) -> int | None:
        functions = self._lookup()
        if functions is not None:
            return int(functions[0]())
        controller = _blas_controller()
        counts = [lib.num_threads for lib in controller.select(user_api="blas").lib_controllers] if controller else []
        return counts[0] if counts else None

    @contextmanager
    def threads(self, n: int) -> Iterator[None]:
        """BLAS on n threads meanwhile, then back to one: only for a batch that holds every core (inside
        `one_blas_thread`, where the count is one)."""
        self.set(n)
        try:
            yield
        finally:
            self.set(1)

    def set(self, n: int | None) -> None:
        if n is None:
            return
        functions = self._lookup()
        if functions is not None:
            functions[1](n)
            return
        controller = _blas_controller()
        if controller is not None:
            controller.limit(limits=n, user_api="blas")


def _openblas_functions() -> tuple[Any, Any, str] | None:
    """(openblas_get_num_threads, openblas_set_num_threads, kernel name) of the OpenBLAS NumPy itself calls, or
    None (NumPy built on another BLAS, or a platform where this lookup does not work: threadpoolctl then).

    The symbols are looked up through NumPy's own extension module: dlsym on its handle searches that module and
    the libraries it links, in their order, so the OpenBLAS found is NumPy's. Another OpenBLAS in the process
    (SciPy's, imported with torch or scikit-learn, has the same functions) is never taken for it — threadpoolctl
    lists every loaded OpenBLAS in an order that varies from run to run, and picking the first one limited
    SciPy's library while NumPy's ran two threads in each of two batches (half the throughput).
    """
    import ctypes

    try:
        from numpy._core import _multiarray_umath as numpy_core
    except ImportError:  # NumPy 1.x
        from numpy.core import _multiarray_umath as numpy_core  # type: ignore[no-redef]
    try:
        dll = ctypes.CDLL(numpy_core.__file__)
    except OSError:
        return None
    for prefix, suffix in (("scipy_", "64_"), ("scipy_", ""), ("", "64_"), ("", "_64"), ("", "")):
        get = getattr(dll, f"{prefix}openblas_get_num_threads{suffix}", None)
        set_ = getattr(dll, f"{prefix}openblas_set_num_threads{suffix}", None)
        if get is not None and set_ is not None:
            get.restype, get.argtypes = ctypes.c_int, []
            set_.restype, set_.argtypes = None, [ctypes.c_int]
            corename = getattr(dll, f"{prefix}openblas_get_corename{suffix}", None)
            if corename is not None:
                corename.restype, corename.argtypes = ctypes.c_char_p, []
            kernel = (corename() or b"").decode("ascii", "replace") if corename is not None else ""
            return get, set_, kernel
    return None


_controller: list = []  # one threadpoolctl controller per process: building one scans every loaded library


def _blas_controller() -> Any:
    """threadpoolctl's controller of the loaded libraries (for BLAS other than OpenBLAS), or None."""
    if not _controller:
        try:
            from threadpoolctl import ThreadpoolController
        except ImportError:
            return None
        _controller.append(ThreadpoolController())
    return _controller[0]


# OpenBLAS's kernel sets with a "small matrix" path (AVX-512): products of at most 100³ multiply-adds run
# straight from NumPy's arrays, on one thread, without packing the operands first.
_SMALL_MATRIX_KERNELS = frozenset({"SkylakeX", "Cooperlake", "SapphireRapids"})


def small_products_unpacked() -> bool:
    """True when NumPy's BLAS is OpenBLAS with an AVX-512 kernel and runs one thread now (as in a batch that holds
    one core): then a product small enough for its small-matrix path skips the packing of the weight matrix,
    which costs more than the multiplication itself for a few rows (fast.py uses this)."""
    return _BLAS.kernel() in _SMALL_MATRIX_KERNELS and _BLAS.get() == 1


_BLAS = _BlasThreadCount()
_CORES = _CoreBudget()
one_blas_thread = _OneBlasThread()
os.register_at_fork(after_in_child=lambda: (_CORES.reset(), one_blas_thread.reset()))
