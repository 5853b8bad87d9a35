"""What a server process holds: the loaded model behind its batcher, the log writer, metrics.

:class:`Runtime` loads and verifies the bundle, warms the session up, starts the batcher and
the prediction-log writer, and answers :meth:`Runtime.classify`. The answering model is one
attribute (``model``), read once per request, so a later switch to another model is one
reference swap and a request is always answered by one model from start to end.
"""

from __future__ import annotations

import asyncio
import logging
import os
import random
import time
from collections import deque
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path

from mangaassist.inference import Bundle, Predictor, open_bundle
from mangaassist.serve.batcher import BatchStats, MicroBatcher, Overloaded
from mangaassist.serve.metrics import ROLLING, ServeMetrics
from mangaassist.serve.predlog import PredictionLogWriter, prediction_record
from mangaassist.serve.schemas import ApiError
from mangaassist.serve.settings import ServeSettings

logger = logging.getLogger("mangaassist.serve")
# Messages of growing length, so warm-up meets the shapes traffic brings (ORT allocates per shape).
_WARMUP = ("hi", "where is my order", "is vol 12 of one piece in stock and when does 13 ship")


def rss_mb() -> float:
    """Resident memory of this process in MiB (Linux /proc; 0 where unavailable)."""
    try:
        for line in Path("/proc/self/status").read_text().splitlines():
            if line.startswith("VmRSS:"):
                return int(line.split()[1]) / 1024
    except OSError:
        pass
    return 0.0


@dataclass
class LoadedModel:
    """A verified bundle, its predictor and the batcher in front of it."""

    bundle: Bundle
    predictor: Predictor
    batcher: MicroBatcher
    version: str
    # Recent model-side latencies (ms) of this model's requests, None for a failure: what
    # the auto-rollback watch judges a freshly deployed model by.
    outcomes: deque = field(default_factory=lambda: deque(maxlen=5000))

    @property
    def runtime_name(self) -> str:
        """e.g. ``onnxruntime-int8``."""
        return f"onnxruntime-{self.predictor.precision}"


def load_model(
    bundle: Bundle, s: ServeSettings, metrics: ServeMetrics, threads: int | None = None
) -> LoadedModel:
    """Load and warm up a verified bundle (:func:`open_bundle`), then start its batcher."""
    predictor = Predictor.from_bundle(bundle, s.precision, threads or s.intra_op_threads)
    for i in range(s.warmup_batches):  # untimed: first calls allocate and pick kernels
        predictor.logits([_WARMUP[j % len(_WARMUP)] for j in range(1 + i * 4)])

    def on_batch(stats: BatchStats) -> None:
        metrics.batch_size.observe(stats.size)
        metrics.compute_seconds.observe(stats.compute_ms / 1000)
        metrics.padding_ratio.set(stats.padded / max(1, stats.tokens))

    batcher = MicroBatcher(
        predictor,
        max_batch_size=s.max_batch_size if s.batching else 1,
        max_wait_ms=s.max_wait_ms if s.batching else 0.0,
        max_queue=s.max_queue,
        group_padding=s.group_padding,
        top_k=s.top_k,
        on_batch=on_batch,
    )
    return LoadedModel(bundle, predictor, batcher, s.model_version or bundle.version)


class Runtime:
    """The serving state of one process (see the module docstring)."""

    def __init__(
        self,
        model: LoadedModel,
        settings: ServeSettings,
        metrics: ServeMetrics,
        writer: PredictionLogWriter,
        startup_s: float,
    ) -> None:
        self.model = model
        self.settings = settings
        self.metrics = metrics
        self.writer = writer
        self.startup_s = startup_s
        self.ready = True
        self.previous: LoadedModel | None = None  # blue after a switch, kept for rollback
        self.shadow: LoadedModel | None = None  # a candidate scored off the critical path
        self.shadow_share = 1.0
        self.switches: list[dict] = []
        self.admin_lock = asyncio.Lock()
        self.watch: asyncio.Task | None = None  # auto-rollback watch of the last deploy
        self._shadow_tasks: set[asyncio.Task] = set()
        self._recent: deque = deque(maxlen=ROLLING)  # (intent, low confidence) per message
        self._since_roll = 0

    @classmethod
    def start(cls, bundle_dir: Path, s: ServeSettings, metrics: ServeMetrics) -> Runtime:
        """Load everything; raises UserError (naming the file) for a bad bundle."""
        t0 = time.perf_counter()
        model = load_model(open_bundle(bundle_dir), s, metrics)
        writer = PredictionLogWriter(
            s.log_dir,
            privacy=s.log_privacy,
            salt=os.environ.get(s.log_salt_env, ""),
            max_bytes=s.log_max_bytes,
            queue_size=s.log_queue,
            on_drop=lambda n: metrics.log_dropped.inc(n),
        )
        rt = cls(model, s, metrics, writer, time.perf_counter() - t0)
        rt._publish_model()
        return rt

    def _publish_model(self) -> None:
        m = self.model
        self.metrics.model.info(
            {
                "version": m.version,
                "bundle_sha256": m.bundle.sha256[:16],
                "runtime": m.runtime_name,
                "threads": str(m.predictor.num_threads),
            }
        )

    @property
    def version(self) -> str:
        """The answering model's version."""
        return self.model.version

    async def classify(self, texts: list[str]) -> tuple[str, list[dict]]:
        """(version, answers) from the current model; ApiError 503 when its queue is full."""
        model = self.model  # one read: this request is answered by this model only
        self.metrics.queue_depth.set(model.batcher.pending())
        t0 = time.perf_counter()
        try:
            answers = await model.batcher.submit(texts)
        except Overloaded as err:
            self.metrics.shed.inc()
            raise ApiError(503, "overloaded", f"server busy: {err}; retry shortly") from err
        except Exception:
            model.outcomes.append(None)  # a model failure, for the auto-rollback watch
            raise
        model.outcomes.append((time.perf_counter() - t0) * 1000)
        m = self.metrics
        self._roll(answers)
        for a in answers:
            m.predictions.labels(a["intent"]).inc()
            m.queue_seconds.observe(a["queue_ms"] / 1000)
            if a["fallback"]:
                m.fallback.labels(a["fallback_reason"]).inc()
                if a["fallback_reason"] == "low_confidence":
                    m.low_confidence.inc()
        return model.version, answers

    def _roll(self, answers: list[dict]) -> None:
        """Keep the last ROLLING messages' intents and low-confidence flags; every 100
        messages, refresh the rolling gauges (cheap: one pass over 1,000 small tuples)."""
        for a in answers:
            self._recent.append((a["intent"], a["fallback_reason"] == "low_confidence"))
        self._since_roll += len(answers)
        if self._since_roll < 100:
            return
        self._since_roll = 0
        n = len(self._recent)
        counts: dict[str, int] = dict.fromkeys(self.model.bundle.labels, 0)
        low = 0
        for intent, is_low in self._recent:
            counts[intent] = counts.get(intent, 0) + 1
            low += is_low
        self.metrics.rolling_low_confidence.set(low / n)
        for intent, c in counts.items():
            self.metrics.rolling_intent.labels(intent).set(c / n)

    def record_switch(self, event: str, before: str, after: str) -> None:
        """Remember a deploy or rollback (``/v1/model`` lists them) and republish the model."""
        when = datetime.now(UTC).isoformat(timespec="milliseconds")
        self.switches.append({"event": event, "from": before, "to": after, "at": when})
        self.metrics.switches.labels(event).inc()
        self._publish_model()

    def score_shadow(self, texts: list[str], rid: str, ts: str) -> None:
        """Score the shadow candidate on these messages, never delaying the caller.

        Skipped (and counted) when the champion has a backlog, or when the shadow's own small
        queue is full: under saturation the shadow gives way first, never the champion.
        """
        shadow = self.shadow
        if shadow is None or random.random() >= self.shadow_share:
            return
        if self.model.batcher.pending() > self.settings.shadow_max_champion_queue:
            self.metrics.shadow_skipped.labels("champion_busy").inc(len(texts))
            return
        task = asyncio.create_task(self._shadow(shadow, texts, rid, ts))
        self._shadow_tasks.add(task)  # a reference, so the task is not collected mid-way
        task.add_done_callback(self._shadow_tasks.discard)

    async def _shadow(self, shadow: LoadedModel, texts: list[str], rid: str, ts: str) -> None:
        t0 = time.perf_counter()
        try:
            answers = await shadow.batcher.submit(texts)
        except Overloaded:
            self.metrics.shadow_skipped.labels("shadow_queue_full").inc(len(texts))
            return
        ms = (time.perf_counter() - t0) * 1000
        for i, (text, a) in enumerate(zip(texts, answers, strict=True)):
            self.record(ts, rid, i, text, a, ms, shadow.version, role="shadow")

    def record(
        self,
        ts: str,
        rid: str,
        item: int,
        text: str,
        a: dict,
        latency_ms: float,
        version: str,
        role: str = "champion",
    ) -> None:
        """Hand one prediction-log record to the writer (never blocks)."""
        self.writer.write(
            prediction_record(
                ts,
                rid,
                item,
                text,
                a,
                model_version=version,
                latency_ms=latency_ms,
                queue_ms=a["queue_ms"],
                batch=a["batch"],
                role=role,
            )
        )

    def describe(self) -> dict:
        """``GET /v1/model``: what answers, with which rule."""
        m = self.model
        c = m.predictor.calibration
        return {
            "model_version": m.version,
            "runtime": m.runtime_name,
            "precisions": m.bundle.precisions(),
            "threads": m.predictor.num_threads,
            "labels": m.bundle.labels,
            "temperature": c.temperature,
            "global_threshold": c.global_threshold,
            "margin": c.margin,
            "thresholds": m.predictor.policy.threshold_vector(m.bundle.labels).tolist(),
            "bundle_sha256": m.bundle.sha256,
            "manifest": m.bundle.manifest,
            "previous": self.previous.version if self.previous else None,
            "shadow": self.shadow.version if self.shadow else None,
            "shadow_share": self.shadow_share if self.shadow else None,
            "switches": self.switches,
        }

    def start_line(self) -> str:
        """The one start-up line."""
        m, s = self.model, self.settings
        return (
            f"[SERVE] event=start model_version={m.version} bundle_sha={m.bundle.sha256[:12]} "
            f"runtime={m.runtime_name} threads={m.predictor.num_threads} pid={os.getpid()} "
            f"batching={'on' if s.batching else 'off'} max_batch_size={s.max_batch_size} "
            f"max_wait_ms={s.max_wait_ms:g} url=http://{s.host}:{s.port} "
            f"startup_s={self.startup_s:.2f} rss_mb={rss_mb():.0f} log_dir={s.log_dir}"
        )

    def stop_line(self) -> str:
        """The one shutdown line: what the log writer kept and lost."""
        w = self.writer
        return (
            f"[SERVE] event=stop model_version={self.version} log_written={w.written} "
            f"log_dropped={w.dropped} log_errors={w.errors}"
        )

    def close(self) -> None:
        """Finish queued messages (every loaded model), then flush and close the log."""
        self.ready = False
        for model in {id(m): m for m in (self.model, self.previous, self.shadow) if m}.values():
            model.batcher.close(self.settings.graceful_timeout_s)
        self.writer.close()
