"""What the server is doing, in the Prometheus text format (``GET /metrics``), through ``prometheus-client``.

Each app has its own registry, so two servers in one process (tests, a notebook) never mix their counts.
Routes are labelled by their template (unknown paths are ``other``), so a scanner cannot blow up the
number of series.
"""
from __future__ import annotations

from typing import Any, Callable

LATENCY_BUCKETS = (0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0, 30.0, 60.0)
BATCH_BUCKETS = (1, 2, 4, 8, 16, 32, 64, 128)
ROUTES = ("/", "/answer", "/retrieve", "/health", "/metrics", "/openapi.json", "/docs")


def route_label(path: str) -> str:
    return path if path in ROUTES else "other"


class ServeMetrics:
    """The server's counters, histograms and gauges, on a registry of their own."""

    def __init__(self, queue_depth: Callable[[], float], ready: Callable[[], float]) -> None:
        from prometheus_client import CollectorRegistry, Counter, Gauge, Histogram, Info

        self.registry = registry = CollectorRegistry()
        self.requests = Counter("odqa_requests", "HTTP requests by route and status.", ["route", "status"],
                                registry=registry)
        self.request_seconds = Histogram("odqa_request_seconds", "Time from request to response, by route.",
                                         ["route"], buckets=LATENCY_BUCKETS, registry=registry)
        self.stage_seconds = Histogram("odqa_stage_seconds", "Time of one pipeline call (a micro-batch) by stage: "
                                       "retrieve, read, total.", ["stage"], buckets=LATENCY_BUCKETS, registry=registry)
        self.batch_questions = Histogram("odqa_batch_questions", "Questions read together in one pipeline call.",
                                         buckets=BATCH_BUCKETS, registry=registry)
        self.questions = Counter("odqa_questions", "Questions answered.", registry=registry)
        self.abstentions = Counter("odqa_abstentions", "Questions answered \"no answer\" (the threshold).",
                                   registry=registry)
        self.rejected = Counter("odqa_rejected", "Requests refused with 503, by reason: overloaded (queue full), "
                                "draining (shutting down), loading (not ready).", ["reason"], registry=registry)
        self.unauthorized = Counter("odqa_unauthorized", "Requests refused with 401 (no or wrong API key).",
                                    registry=registry)
        self.queue_depth = Gauge("odqa_queue_depth", "Requests waiting for the reader.", registry=registry)
        self.queue_depth.set_function(queue_depth)
        self.ready = Gauge("odqa_ready", "1 once the pipeline is loaded and the server answers.", registry=registry)
        self.ready.set_function(ready)
        self.info = Info("odqa_server", "Model, index and version served.", registry=registry)

    def describe(self, **labels: Any) -> None:
        self.info.info({k: "" if v is None else str(v) for k, v in labels.items()})

    def observe_batch(self, questions: int, timings: dict[str, float]) -> None:
        self.batch_questions.observe(questions)
        for stage in ("retrieve", "read", "total"):
            if stage in timings:
                self.stage_seconds.labels(stage).observe(timings[stage])

    def render(self) -> tuple[bytes, str]:
        from prometheus_client import CONTENT_TYPE_LATEST, generate_latest

        return generate_latest(self.registry), CONTENT_TYPE_LATEST
