"""Dynamic batching: the inputs of concurrent requests merged into one model call, under a token budget.

The event loop only enqueues a job (what to run, its items — texts, or (query, text) pairs — their token counts, and
a future) and awaits the future; one worker thread owns the models. Each turn it takes items from the head of the
queue, in arrival order, while they are to be run the same way and the batch's padded size (items × longest) stays
within `max_batch_tokens` — so 32 clients sending one query each share one forward pass, and a request larger than
a batch is split across consecutive batches. It then runs the model once on the merged items (`encode` and
`predict` sort them by length and run their own sub-batches on every core) and copies each row back to the job it
came from, in that job's order.

What a job runs is a small callable of the model's public API: `Encode` (embeddings, normalized or pooled) or
`Score` (a cross-encoder's logits). Jobs whose runs are equal share a batch; the rule above is the same for all.
"""

from __future__ import annotations

import threading
import time
from collections import deque
from collections.abc import Callable, Sequence
from concurrent.futures import Future
from dataclasses import dataclass, field
from typing import Any

import numpy as np

from .errors import overloaded


@dataclass(frozen=True)
class Encode:
    """Embedding jobs: `model.encode` of the texts, float32 [n, dim]; raw=True gives the pooled vectors before the
    model's Normalize module (TEI's normalize=false)."""

    model: Any
    raw: bool = False

    def __call__(self, texts: list[str]) -> np.ndarray:
        output = "pooled" if self.raw else "sentence_embedding"
        return self.model.encode(texts, batch_size=len(texts), output_value=output)


@dataclass(frozen=True)
class Score:
    """Reranking jobs: a one-label cross-encoder's logits of (query, text) pairs, float32 [n] (`predict` with the
    identity activation; each route applies its own)."""

    model: Any

    def __call__(self, pairs: list[tuple[str, str]]) -> np.ndarray:
        return self.model.predict(pairs, batch_size=len(pairs), activation_fn="identity")


Run = Callable[[list], np.ndarray]  # items -> one row per item, in their order


@dataclass(eq=False)
class _Job:
    run: Run
    items: Sequence[Any]
    tokens: list[int]
    out: np.ndarray | None = None  # made when the first rows come back (their shape and dtype are the run's)
    future: Future = field(default_factory=Future)
    taken: int = 0  # items already handed to a batch
    done: int = 0  # items whose rows are in `out`
    failed: bool = False


class Batcher:
    """A queue of jobs and the one thread that runs the models on them.

    max_batch_tokens: padded tokens per model call (items × longest item); a single item is never refused.
    max_concurrent_requests: jobs queued or running at once; `submit` raises a 429 ApiError beyond it.
    metrics: an object with `batch(items, padded_tokens, seconds)` and `queue(items, jobs)`, or None.
    """

    def __init__(self, max_batch_tokens: int, max_concurrent_requests: int, metrics: Any = None) -> None:
        self.max_batch_tokens = max_batch_tokens
        self.max_concurrent_requests = max_concurrent_requests
        self.metrics = metrics
        self._pending: deque[_Job] = deque()  # jobs with items not yet taken, oldest first
        self._queued_items = 0
        self._jobs = 0  # jobs submitted and not finished
        self._cond = threading.Condition()
        self._stopping = False
        self._thread = threading.Thread(target=self._run, name="tinyminilm-batcher", daemon=True)

    def start(self) -> None:
        """Start the worker thread."""
        self._thread.start()

    @property
    def alive(self) -> bool:
        """True while the worker thread runs and accepts jobs."""
        return self._thread.is_alive() and not self._stopping

    def submit(self, run: Run, items: Sequence[Any], tokens: list[int]) -> Future:
        """Queue `run(items)` (with each item's token count); the future gets its rows, e.g. float32 [n, dim] for
        `Encode` or [n] for `Score`, in the items' order.

        Raises ApiError 429 when max_concurrent_requests jobs are already queued or running.
        """
        job = _Job(run, items, tokens)
        job.future.set_running_or_notify_cancel()  # a caller that goes away cannot cancel it under the worker
        with self._cond:
            if self._stopping:
                raise RuntimeError("the batcher is stopped")
            if self._jobs >= self.max_concurrent_requests:
                raise overloaded(self.max_concurrent_requests)
            self._jobs += 1
            self._pending.append(job)
            self._queued_items += len(items)
            self._report_queue()
            self._cond.notify()
        return job.future

    def stop(self, timeout: float | None = None) -> None:
        """Stop accepting jobs, finish every queued one, and end the worker thread."""
        with self._cond:
            self._stopping = True
            self._cond.notify()
        if self._thread.is_alive():
            self._thread.join(timeout)

    # ----------------------------------------------------------------------------------------------------------

    def _report_queue(self) -> None:
        if self.metrics is not None:
            self.metrics.queue(self._queued_items, self._jobs)

    def _take(self) -> list[tuple[_Job, int, int]]:
        """(job, start, end) spans from the head of the queue, within the token budget; called under the lock."""
        spans: list[tuple[_Job, int, int]] = []
        run = self._pending[0].run  # one kind of job per model call
        count = longest = 0
        while self._pending and self._pending[0].run == run:
            job = self._pending[0]
            start = end = job.taken
            while end < len(job.items):
                new_longest = max(longest, job.tokens[end])
                if count and (count + 1) * new_longest > self.max_batch_tokens:
                    break
                count, longest, end = count + 1, new_longest, end + 1
            if end > start:
                spans.append((job, start, end))
                job.taken = end
                self._queued_items -= end - start
            if end < len(job.items):  # the budget is spent; the rest of this job goes in the next batch
                break
            self._pending.popleft()
        return spans

    def _run(self) -> None:
        while True:
            with self._cond:
                while not self._pending and not self._stopping:
                    self._cond.wait()
                if not self._pending:  # stopping, and nothing left to do
                    return
                spans = self._take()
                self._report_queue()
            self._run_batch(spans)

    def _run_batch(self, spans: list[tuple[_Job, int, int]]) -> None:
        items = [x for job, start, end in spans for x in job.items[start:end]]
        began = time.perf_counter()
        try:
            rows = spans[0][0].run(items)
        except Exception as e:  # noqa: BLE001 - a failure belongs to the jobs in this batch, not to the server
            finished = []
            for job, _, _ in spans:
                if not job.failed:
                    job.failed = True
                    job.future.set_exception(e)
                    finished.append(job)
            self._finish(finished)
            return
        if self.metrics is not None:
            longest = max(t for job, start, end in spans for t in job.tokens[start:end])
            self.metrics.batch(len(items), len(items) * longest, time.perf_counter() - began)
        row, finished = 0, []
        for job, start, end in spans:
            if job.out is None:
                job.out = np.empty((len(job.items), *rows.shape[1:]), dtype=rows.dtype)
            job.out[start:end] = rows[row:row + end - start]
            row += end - start
            job.done += end - start
            if job.done == len(job.items) and not job.failed:
                job.future.set_result(job.out)
                finished.append(job)
        self._finish(finished)

    def _finish(self, jobs: list[_Job]) -> None:
        if jobs:
            with self._cond:
                self._jobs -= len(jobs)
                self._report_queue()
