"""Prometheus metrics of the server, in a registry of their own (GET /metrics)."""

from __future__ import annotations

from prometheus_client import CollectorRegistry, Counter, Gauge, Histogram, generate_latest
from prometheus_client.exposition import CONTENT_TYPE_LATEST

_LATENCY_BUCKETS = (0.005, 0.01, 0.025, 0.05, 0.075, 0.1, 0.15, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0, 30.0)


class Metrics:
    """Requests by route and status, request latency, queue depth, batch sizes (texts, padded tokens), batch time."""

    content_type = CONTENT_TYPE_LATEST

    def __init__(self) -> None:
        self.registry = CollectorRegistry()
        r = self.registry
        self.requests = Counter("tinyminilm_requests", "HTTP requests answered, by route and status",
                                ["route", "status"], registry=r)
        self.latency = Histogram("tinyminilm_request_duration_seconds", "time from request to response, by route",
                                 ["route"], buckets=_LATENCY_BUCKETS, registry=r)
        self.queue_texts = Gauge("tinyminilm_queue_texts", "texts waiting for a batch", registry=r)
        self.queue_requests = Gauge("tinyminilm_queue_requests", "embedding requests queued or running", registry=r)
        self.batch_texts = Histogram("tinyminilm_batch_texts", "texts per model batch",
                                     buckets=(1, 2, 4, 8, 16, 32, 64, 128, 256, 512, 1024, 2048), registry=r)
        self.batch_tokens = Histogram("tinyminilm_batch_padded_tokens", "padded tokens (texts x longest) per batch",
                                      buckets=(16, 64, 256, 512, 1024, 2048, 4096, 8192, 16384, 65536), registry=r)
        self.batch_seconds = Histogram("tinyminilm_batch_duration_seconds", "model time per batch",
                                       buckets=_LATENCY_BUCKETS, registry=r)

    def request(self, route: str, status: int, seconds: float) -> None:
        """Count one answered request."""
        self.requests.labels(route, str(status)).inc()
        self.latency.labels(route).observe(seconds)

    def queue(self, texts: int, requests: int) -> None:
        """The batcher's queue depth now."""
        self.queue_texts.set(texts)
        self.queue_requests.set(requests)

    def batch(self, texts: int, padded_tokens: int, seconds: float) -> None:
        """One model batch run."""
        self.batch_texts.observe(texts)
        self.batch_tokens.observe(padded_tokens)
        self.batch_seconds.observe(seconds)

    def render(self) -> bytes:
        """The text exposition format."""
        return generate_latest(self.registry)
