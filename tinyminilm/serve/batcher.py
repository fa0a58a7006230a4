"""Dynamic batching: texts of concurrent requests merged into one `encode` call, under a token budget.

The event loop only enqueues a job (its texts, their token counts, a future) and awaits the future; one worker
thread owns the model. Each turn it takes texts from the head of the queue, in arrival order, while the batch's
padded size (texts × longest) stays within `max_batch_tokens` — so 32 clients sending one query each share one
forward pass, and a request larger than a batch is split across consecutive batches. It then calls
`model.encode` once on the merged texts (which sorts them by length and runs its own sub-batches on every core)
and copies each row back to the job it came from, in that job's order.
"""

from __future__ import annotations

import threading
import time
from collections import deque
from concurrent.futures import Future
from dataclasses import dataclass, field
from typing import Any

import numpy as np

from .errors import overloaded


@dataclass(eq=False)
class _Job:
    texts: list[str]
    tokens: list[int]
    raw: bool  # True: the pooled vectors, before the model's Normalize module (TEI's normalize=false)
    out: np.ndarray
    future: Future = field(default_factory=Future)
    taken: int = 0  # texts already handed to a batch
    done: int = 0  # texts whose vectors are in `out`
    failed: bool = False


class Batcher:
    """A queue of embedding jobs and the one thread that runs the model on them.

    model: a tinyminilm encoder (only its public `encode` and `get_embedding_dimension` are used).
    max_batch_tokens: padded tokens per `encode` call (texts × longest text); a single text is never refused.
    max_concurrent_requests: jobs queued or running at once; `submit` raises a 429 ApiError beyond it.
    metrics: an object with `batch(texts, padded_tokens, seconds)` and `queue(texts, jobs)`, or None.
    """

    def __init__(self, model: Any, max_batch_tokens: int, max_concurrent_requests: int, metrics: Any = None) -> None:
        self.model = model
        self.max_batch_tokens = max_batch_tokens
        self.max_concurrent_requests = max_concurrent_requests
        self.metrics = metrics
        self._dim = model.get_embedding_dimension()
        self._pending: deque[_Job] = deque()  # jobs with texts not yet taken, oldest first
        self._queued_texts = 0
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

    def submit(self, texts: list[str], tokens: list[int], raw: bool = False) -> Future:
        """Queue texts (with their token counts); the future gets a float32 [len(texts), dim] array.

        raw=False gives `model.encode(texts)`; raw=True `model.encode(texts, output_value="pooled")`, the pooled
        vectors before the model's Normalize module.
        Raises ApiError 429 when max_concurrent_requests jobs are already queued or running.
        """
        job = _Job(texts, tokens, raw, np.empty((len(texts), self._dim), dtype=np.float32))
        job.future.set_running_or_notify_cancel()  # a caller that goes away cannot cancel it under the worker
        with self._cond:
            if self._stopping:
                raise RuntimeError("the batcher is stopped")
            if self._jobs >= self.max_concurrent_requests:
                raise overloaded(self.max_concurrent_requests)
            self._jobs += 1
            self._pending.append(job)
            self._queued_texts += len(texts)
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
            self.metrics.queue(self._queued_texts, self._jobs)

    def _take(self) -> list[tuple[_Job, int, int]]:
        """(job, start, end) spans from the head of the queue, within the token budget; called under the lock."""
        spans: list[tuple[_Job, int, int]] = []
        raw = self._pending[0].raw  # one kind of output per encode call
        count = longest = 0
        while self._pending and self._pending[0].raw == raw:
            job = self._pending[0]
            start = end = job.taken
            while end < len(job.texts):
                new_longest = max(longest, job.tokens[end])
                if count and (count + 1) * new_longest > self.max_batch_tokens:
                    break
                count, longest, end = count + 1, new_longest, end + 1
            if end > start:
                spans.append((job, start, end))
                job.taken = end
                self._queued_texts -= end - start
            if end < len(job.texts):  # the budget is spent; the rest of this job goes in the next batch
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
            self._encode(spans)

    def _encode(self, spans: list[tuple[_Job, int, int]]) -> None:
        texts = [t for job, start, end in spans for t in job.texts[start:end]]
        raw = spans[0][0].raw
        began = time.perf_counter()
        try:
            vectors = self.model.encode(texts, batch_size=len(texts),
                                        output_value="pooled" if raw else "sentence_embedding")
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
            self.metrics.batch(len(texts), len(texts) * longest, time.perf_counter() - began)
        row, finished = 0, []
        for job, start, end in spans:
            job.out[start:end] = vectors[row:row + end - start]
            row += end - start
            job.done += end - start
            if job.done == len(job.texts) and not job.failed:
                job.future.set_result(job.out)
                finished.append(job)
        self._finish(finished)

    def _finish(self, jobs: list[_Job]) -> None:
        if jobs:
            with self._cond:
                self._jobs -= len(jobs)
                self._report_queue()
