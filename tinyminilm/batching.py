"""How the texts of one `encode` call become batches, and how the batches use the CPU's cores.

  1. texts with identical token ids are computed once (`deduplicate`);
  2. the rest are sorted by token count and cut into batches of at most `batch_size` texts and `BATCH_TOKENS`
     padded tokens, small enough that every worker thread gets one (`plan_batches`);
  3. the batches run on up to `threads` worker threads (`run_batches`).

Threads and BLAS. Running one batch per core with BLAS on one thread keeps every core busy for all of the work
(tinyminilm.blas sets that one-thread limit, once per process, and says why). All the `encode` calls of a process
share one budget of one running batch per core, so concurrent callers never run more compute threads than there
are cores.
"""

from __future__ import annotations

import os
import threading
from collections.abc import Callable, Iterator
from concurrent.futures import ThreadPoolExecutor
from contextlib import contextmanager
from typing import TypeVar

import numpy as np

from . import blas

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
    with blas.one_thread:
        if len(batches) == 1 and threads >= cores > 1:
            with _CORES.take(cores), blas.threads(cores):
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


_CORES = _CoreBudget()
os.register_at_fork(after_in_child=_CORES.reset)
