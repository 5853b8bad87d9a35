"""Prometheus metrics of one server process (``GET /metrics``, text exposition format).

Latency buckets are 1 ms wide up to 20 ms, so a 15 ms P95 is read off the histogram within a
millisecond (``histogram_quantile(0.95, rate(mangaassist_request_duration_seconds_bucket[5m]))``).
Queue wait is apart from compute, as Triton reports them, and batch size is a histogram of
messages per model batch. Each app gets its own registry, so several apps in one process
(tests, blue/green) do not collide.
"""

from __future__ import annotations

from prometheus_client import CollectorRegistry, Counter, Gauge, Histogram, Info

# Seconds: 0.5 ms, then 1 ms steps to 20 ms, then coarser to 5 s.
LATENCY_BUCKETS = (
    0.0005,
    *(ms / 1000 for ms in range(1, 21)),
    0.025,
    0.03,
    0.04,
    0.05,
    0.075,
    0.1,
    0.25,
    0.5,
    1.0,
    2.5,
    5.0,
)
BATCH_BUCKETS = (1, 2, 4, 8, 12, 16, 24, 32, 48, 64, 128)
ROLLING = 1000  # messages behind the rolling gauges (low-confidence rate, intent mix)


class ServeMetrics:
    """Every metric the server exports, on a registry of its own."""

    def __init__(self) -> None:
        r = self.registry = CollectorRegistry()
        self.request_seconds = Histogram(
            "mangaassist_request_duration_seconds",
            "Time from request received to response sent, by route",
            ["route"],
            buckets=LATENCY_BUCKETS,
            registry=r,
        )
        self.queue_seconds = Histogram(
            "mangaassist_queue_wait_seconds",
            "Time a message waited before its model batch started",
            buckets=LATENCY_BUCKETS,
            registry=r,
        )
        self.compute_seconds = Histogram(
            "mangaassist_batch_compute_seconds",
            "Tokenize + model + softmax time of one batch",
            buckets=LATENCY_BUCKETS,
            registry=r,
        )
        self.batch_size = Histogram(
            "mangaassist_batch_size",
            "Messages per model batch",
            buckets=BATCH_BUCKETS,
            registry=r,
        )
        self.padding_ratio = Gauge(
            "mangaassist_batch_padding_ratio",
            "Computed tokens / real tokens of the last batch (1.0 = no padding)",
            registry=r,
        )
        self.in_flight = Gauge(
            "mangaassist_requests_in_flight", "Requests being handled now", registry=r
        )
        self.queue_depth = Gauge(
            "mangaassist_queue_depth", "Messages waiting for the model", registry=r
        )
        self.requests = Counter(
            "mangaassist_requests",
            "Requests answered, by route and status",
            ["route", "status"],
            registry=r,
        )
        self.errors = Counter(
            "mangaassist_errors",
            "Requests answered with 4xx/5xx, by status and code",
            ["status", "code"],
            registry=r,
        )
        self.predictions = Counter(
            "mangaassist_predictions",
            "Messages classified, by predicted intent",
            ["intent"],
            registry=r,
        )
        self.low_confidence = Counter(
            "mangaassist_low_confidence",
            "Messages below their intent's confidence threshold (fallback)",
            registry=r,
        )
        self.fallback = Counter(
            "mangaassist_fallback", "Messages not routed, by reason", ["reason"], registry=r
        )
        self.shed = Counter(
            "mangaassist_shed", "Requests refused with 503 because the queue was full", registry=r
        )
        self.log_dropped = Counter(
            "mangaassist_prediction_log_dropped",
            "Prediction-log records dropped because the writer's queue was full",
            registry=r,
        )
        self.shadow_skipped = Counter(
            "mangaassist_shadow_skipped",
            "Messages the shadow model did not score, by reason",
            ["reason"],
            registry=r,
        )
        self.switches = Counter(
            "mangaassist_model_switches", "Blue/green deploys and rollbacks", ["event"], registry=r
        )
        self.rolling_low_confidence = Gauge(
            "mangaassist_rolling_low_confidence_rate",
            f"Share of the last {ROLLING} messages below their intent's threshold",
            registry=r,
        )
        self.rolling_intent = Gauge(
            "mangaassist_rolling_intent_share",
            f"Share of each predicted intent over the last {ROLLING} messages",
            ["intent"],
            registry=r,
        )
        self.model = Info("mangaassist_model", "The model answering", registry=r)
