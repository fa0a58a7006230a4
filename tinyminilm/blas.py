"""NumPy's BLAS: the one place that finds the library NumPy calls, reads and sets its threads, and describes it.

    blas.describe()            what `tinyminilm info` reports: library, version, kernel, threading, threads, path
    with blas.one_thread: ...  while any encode runs batches, BLAS runs one thread (the process-wide limit)
    blas.limit(n)              a Ray actor's share of its node, for good

Which library. NumPy's wheels bundle their own OpenBLAS. Its C functions are looked up through NumPy's own
extension module: dlsym on that module's handle searches the module and the libraries it links, in their order, so
the OpenBLAS found is NumPy's. Another OpenBLAS in the process (SciPy's, imported with torch or scikit-learn, has
the same functions) is never taken for it — threadpoolctl lists every loaded OpenBLAS in an order that varies from
run to run, and taking the first one limited SciPy's library while NumPy's ran two threads in each of two batches
(half the throughput), and made `tinyminilm info` describe the wrong library. Calling the functions directly is
also cheaper than threadpoolctl for every encode: it kept ~250 bytes per call (measured with tracemalloc: +21 kB
over 156 calls) and, from 3.8 on, silently ignores a thread other than its "controlling" one. Other BLAS libraries
(MKL, BLIS) go through threadpoolctl; without any, the thread count is unknown and nothing is set.

One thread while encode runs. NumPy's elementwise loops (GELU, LayerNorm, softmax) run on one core, its BLAS
products on all of them; running one batch per core with BLAS on one thread keeps every core busy for all of the
work (tinyminilm.batching). BLAS's thread count is a single setting for the whole process, so it cannot be set
per worker thread: `one_thread` sets it once per process instead — the first encode call to start sets one
thread, the last to finish restores what it was before. So nobody's limit is undone by another thread, and every
batch is computed with the same BLAS settings: the same call gives the same bits whatever runs beside it
(OpenBLAS's Haswell kernels round differently on 1 and 2 threads).
"""

from __future__ import annotations

import ctypes
import functools
import os
import threading
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from typing import Any


@dataclass(frozen=True)
class _OpenBLAS:
    """The C functions of the OpenBLAS NumPy calls, and what it says about itself."""

    get_num_threads: Any
    set_num_threads: Any
    corename: str  # the kernel set OpenBLAS chose for this CPU: "SkylakeX", "Haswell", ...
    config: str  # e.g. "OpenBLAS 0.3.29 DYNAMIC_ARCH NO_AFFINITY Haswell MAX_THREADS=64"
    parallel: int | None  # 0 no threads, 1 pthreads, 2 OpenMP


@functools.cache
def _numpys_openblas() -> _OpenBLAS | None:
    """The OpenBLAS NumPy itself calls (see the module docstring), or None: NumPy built on another BLAS, or a
    platform where this lookup does not work (threadpoolctl then)."""
    try:
        from numpy._core import _multiarray_umath as numpy_core
    except ImportError:  # NumPy 1.x
        from numpy.core import _multiarray_umath as numpy_core  # type: ignore[no-redef]
    try:
        dll = ctypes.CDLL(numpy_core.__file__)
    except OSError:
        return None

    def function(prefix: str, name: str, suffix: str, restype: Any, argtypes: list) -> Any:
        found = getattr(dll, f"{prefix}{name}{suffix}", None)
        if found is not None:
            found.restype, found.argtypes = restype, argtypes
        return found

    for prefix, suffix in (("scipy_", "64_"), ("scipy_", ""), ("", "64_"), ("", "_64"), ("", "")):
        get = function(prefix, "openblas_get_num_threads", suffix, ctypes.c_int, [])
        set_ = function(prefix, "openblas_set_num_threads", suffix, None, [ctypes.c_int])
        if get is None or set_ is None:
            continue
        texts = [function(prefix, name, suffix, ctypes.c_char_p, []) for name in ("openblas_get_corename",
                                                                                  "openblas_get_config")]
        corename, config = ((f() or b"").decode("ascii", "replace") if f is not None else "" for f in texts)
        parallel = function(prefix, "openblas_get_parallel", suffix, ctypes.c_int, [])
        return _OpenBLAS(get, set_, corename, config, int(parallel()) if parallel is not None else None)
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


def _other_blas() -> list[Any]:
    """threadpoolctl's controllers of the BLAS libraries loaded (used only when NumPy's is not an OpenBLAS)."""
    controller = _blas_controller()
    return list(controller.select(user_api="blas").lib_controllers) if controller is not None else []


def kernel() -> str:
    """The name of the kernel set NumPy's OpenBLAS chose for this CPU ("SkylakeX", "Haswell", ...), or ""."""
    lib = _numpys_openblas()
    return lib.corename if lib is not None else ""


def get_threads() -> int | None:
    """The threads NumPy's BLAS runs a product on now, or None if unknown."""
    lib = _numpys_openblas()
    if lib is not None:
        return int(lib.get_num_threads())
    counts = [c.num_threads for c in _other_blas()]
    return counts[0] if counts else None


def set_threads(n: int | None) -> None:
    """Run NumPy's BLAS on n threads from now on (None: leave it as it is)."""
    if n is None:
        return
    lib = _numpys_openblas()
    if lib is not None:
        lib.set_num_threads(n)
        return
    controller = _blas_controller()
    if controller is not None:
        controller.limit(limits=n, user_api="blas")  # applied at once; not entering it keeps it


@contextmanager
def threads(n: int) -> Iterator[None]:
    """NumPy's BLAS on n threads meanwhile, then back to what it was (batching: a batch that holds every core)."""
    before = get_threads()
    set_threads(n)
    try:
        yield
    finally:
        set_threads(before)


def limit(n: int) -> None:
    """BLAS on at most n threads for the rest of this process — a Ray actor's share of its node: NumPy's library,
    and every other BLAS library loaded (SciPy's, say, which the actor's own code may call), as threadpoolctl
    finds them when it is installed."""
    set_threads(n)
    try:
        from threadpoolctl import threadpool_limits
    except ImportError:
        return
    threadpool_limits(limits=n, user_api="blas")  # a plain call (not `with`): the limit stays for the process


class _OneThread:
    """A process-wide context: BLAS runs one thread while at least one `encode` is inside it.

    The first to enter sets the limit, the last to leave restores the thread count found on entry; entries in
    between change nothing. (threadpoolctl's own `limit()` contexts restore on each exit, so two of them
    overlapping in two threads leave the process with the inner one's limit for good.)
    """

    def __init__(self) -> None:
        self.reset()

    def __enter__(self) -> None:
        with self._lock:
            if self._inside == 0:
                self._saved = get_threads()
                set_threads(1)
            self._inside += 1

    def __exit__(self, *exc: object) -> None:
        with self._lock:
            self._inside -= 1
            if self._inside == 0 and self._saved is not None:
                set_threads(self._saved)
                self._saved = None

    def reset(self) -> None:
        """At start, and in a forked child: no encode runs there yet (the limit in force is inherited as it is)."""
        self._lock = threading.Lock()
        self._inside = 0
        self._saved: int | None = None


one_thread = _OneThread()
os.register_at_fork(after_in_child=one_thread.reset)

# OpenBLAS's kernel sets with a "small matrix" path (AVX-512): products of at most 100³ multiply-adds run
# straight from NumPy's arrays, on one thread, without packing the operands first.
SMALL_MATRIX_KERNELS = frozenset({"SkylakeX", "Cooperlake", "SapphireRapids"})


def small_products_unpacked() -> bool:
    """True when NumPy's BLAS is OpenBLAS with an AVX-512 kernel and runs one thread now (as in a batch that holds
    one core): then a product small enough for its small-matrix path skips the packing of the weight matrix,
    which costs more than the multiplication itself for a few rows (fast.py uses this)."""
    return kernel() in SMALL_MATRIX_KERNELS and get_threads() == 1


# --------------------------------------------------------------------------------------------------------------
# What `tinyminilm info` reports
# --------------------------------------------------------------------------------------------------------------

class _DlInfo(ctypes.Structure):
    _fields_ = [("dli_fname", ctypes.c_char_p), ("dli_fbase", ctypes.c_void_p), ("dli_sname", ctypes.c_char_p),
                ("dli_saddr", ctypes.c_void_p)]


def _library_path(function: Any) -> str | None:
    """The file a loaded C function comes from (dladdr), or None where that cannot be asked (Windows)."""
    try:
        dladdr = ctypes.CDLL(None).dladdr
    except (OSError, AttributeError, TypeError):
        return None
    dladdr.restype, dladdr.argtypes = ctypes.c_int, [ctypes.c_void_p, ctypes.POINTER(_DlInfo)]
    info = _DlInfo()
    if not dladdr(ctypes.cast(function, ctypes.c_void_p), ctypes.byref(info)) or not info.dli_fname:
        return None
    return os.path.realpath(os.fsdecode(info.dli_fname))


_THREADING = {0: "disabled", 1: "pthreads", 2: "openmp"}  # openblas_get_parallel(), named as threadpoolctl does
_NAMES = {"openblas": "OpenBLAS", "mkl": "MKL", "blis": "BLIS", "flexiblas": "FlexiBLAS"}


def describe() -> dict[str, Any]:
    """NumPy's BLAS: {"library", "version", "kernel", "threading", "threads", "path"}; None where unknown.

    For OpenBLAS (NumPy's wheels), the library NumPy itself calls, found as every other function here finds it —
    never another OpenBLAS loaded beside it, whatever order threadpoolctl lists them in. For another BLAS,
    threadpoolctl's description of it when it is the only BLAS loaded (with several, which one NumPy calls is
    unknown, and so is every value).
    E.g. {"library": "OpenBLAS", "version": "0.3.29", "kernel": "Haswell", "threading": "pthreads", "threads": 2,
    "path": ".../numpy.libs/libscipy_openblas64_-….so"}.
    """
    lib = _numpys_openblas()
    if lib is not None:
        words = lib.config.split()
        return {"library": "OpenBLAS", "version": words[1] if len(words) > 1 and words[0] == "OpenBLAS" else None,
                "kernel": lib.corename or None, "threading": _THREADING.get(lib.parallel),
                "threads": int(lib.get_num_threads()), "path": _library_path(lib.get_num_threads)}
    libs = _other_blas()
    if len(libs) != 1:
        return dict.fromkeys(("library", "version", "kernel", "threading", "threads", "path"))
    info = libs[0].info()
    return {"library": _NAMES.get(info.get("internal_api"), info.get("internal_api")), "version": info.get("version"),
            "kernel": info.get("architecture"), "threading": info.get("threading_layer"),
            "threads": info.get("num_threads"), "path": info.get("filepath")}


__all__ = ["describe", "kernel", "get_threads", "set_threads", "threads", "limit", "one_thread",
           "small_products_unpacked", "SMALL_MATRIX_KERNELS"]
