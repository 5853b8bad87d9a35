"""``mangaassist simulate``: days of timestamped MangaAssist traffic, with injected drift.

Per simulated hour, each intent's message count is Poisson with mean
``rate_per_hour x hour factor x intent share x drift`` (see :mod:`.scenarios`); each message is
worded by the corpus generator's pieces, answered by the bundle's predictor (batched, the same
answers the server gives) or by a running server (``--url``), and logged in the serve stage's
prediction-log format under its *simulated* time. Outputs, in ``OUT``::

    logs/predictions-YYYYMMDD.jsonl   role=champion, one file per simulated UTC day
    labels.jsonl                      the delayed labelled sample: request_id, item, label, ts,
                                      ts_labelled = ts + delay (the generator knows the truth)
    truth.jsonl                       every message's true label, drift flag and tags
    scenario.json                     the scenario, its drift start/end and expected signals

Default rate, 600 messages per simulated hour (~14,400 a day): an hourly window then holds
~120 messages at night and ~1,000 at the evening peak, enough for a chi-square over ten
intents (the rarest, escalation at 3%, expects >= 5 per window at most hours), and a 2%
labelled sample gives ~290 labels a day, a +-3.5 point 95% interval on a sampled accuracy
near 90%. A week (~100,000 messages) takes 26-36 s with the tiny model on two busy cores.

Latency in direct mode is drawn, not measured (lognormal around the team's load-test p50), so
that the same seed writes the same files; ``--url`` logs the server's measured latency.
"""

from __future__ import annotations

import http.client
import json
import random
import sys
import time
from dataclasses import asdict, dataclass
from datetime import datetime, timedelta
from pathlib import Path
from urllib.parse import urlsplit

import numpy as np

from mangaassist.data.schema import INTENTS
from mangaassist.errors import UserError
from mangaassist.monitor.scenarios import (
    HOUR_FACTORS,
    MessageMaker,
    Scenario,
    Traffic,
    corrupt,
    get_scenario,
    intent_rates,
)
from mangaassist.serve.predlog import PredictionLogWriter, prediction_record

DEFAULT_RATE = 600.0
BATCH = 256  # messages per predictor call: ONNX overhead amortised, padding still per batch


@dataclass
class Message:
    """One simulated request, before it is answered."""

    ts: datetime
    request_id: str
    label: str
    text: str
    drift: bool
    tags: list[str]
    latency_ms: float
    queue_ms: float
    labelled: bool


def day_messages(
    traffic: Traffic, sc: Scenario, day: int, rate: float, seed: int, label_share: float
) -> list[Message]:
    """The messages of simulated day ``day``, in time order.

    Each day has its own seeded streams, so day 3 is the same whether a run has 7 days or 30.
    """
    nrng = np.random.default_rng([seed, day])
    rng = random.Random(f"simulate-{seed}-{day}")
    maker = MessageMaker(rng, traffic.multi_intent)
    start = _start(traffic) + timedelta(days=day)
    out: list[Message] = []
    for hour in range(24):
        t_day = day + hour / 24
        rates = intent_rates(sc, t_day)
        drift = sc.active(t_day)
        counts = nrng.poisson([rate * HOUR_FACTORS[hour] * rates[i] for i in INTENTS])
        labels = [i for i, c in zip(INTENTS, counts, strict=True) for _ in range(c)]
        nrng.shuffle(labels)
        n = len(labels)
        secs = np.sort(nrng.uniform(0, 3600, n))
        jp_p = min(1.0, traffic.jp_share * (sc.jp_multiplier if drift else 1.0))
        jp, hit_u, slang_u, bad_u, lab_u = nrng.random((5, n))  # (5, n) uniform draws
        queue = traffic.queue_p50_ms * nrng.lognormal(0, 0.5, n)
        latency = traffic.latency_p50_ms * nrng.lognormal(0, traffic.latency_sigma, n)
        for k, label in enumerate(labels):
            japanese, hit = bool(jp[k] < jp_p), sc.new_title if drift else None
            if hit is None or hit_u[k] >= hit.share or not maker.can_mention_title(label):
                hit = None
            slang = hit is not None and slang_u[k] < hit.slang_share
            tags = [t for t, on in (("jp", japanese), ("hit_title", hit), ("slang", slang)) if on]
            text = maker.render(label, japanese=japanese, hit=hit, slang=slang)
            if drift and sc.corruption and bad_u[k] < sc.corruption.share:
                kind = rng.choice(sc.corruption.kinds)
                text, tags = corrupt(text, kind, rng), [*tags, kind]
            at = start + timedelta(hours=hour, seconds=float(secs[k]))
            rid = f"sim{seed}-d{day:03d}-{len(out):06d}"
            lat = float(latency[k] + queue[k])  # latency counts the queue wait, as the server's
            out.append(
                Message(
                    at, rid, label, text, drift, tags, lat, float(queue[k]), lab_u[k] < label_share
                )
            )
    return out


class _Server:
    """``POST /v1/classify`` one message at a time over one keep-alive connection."""

    def __init__(self, url: str) -> None:
        parts = urlsplit(url)
        if parts.scheme != "http" or not parts.hostname:
            raise UserError(f"--url {url!r}: expected http://HOST:PORT of `mangaassist serve`")
        self.conn = http.client.HTTPConnection(parts.hostname, parts.port or 80, timeout=30)
        self.path = parts.path.rstrip("/") + "/v1/classify"
        self.errors = 0

    def classify(self, text: str, rid: str) -> dict | None:
        body = json.dumps({"text": text}).encode()
        headers = {"Content-Type": "application/json", "X-Request-ID": rid}
        try:
            self.conn.request("POST", self.path, body, headers)
            resp = self.conn.getresponse()
            data = resp.read()
        except OSError as err:
            raise UserError(f"--url: cannot reach the server ({err}); is it running?") from err
        if resp.status != 200:  # the server logs only answered messages; so do we
            self.errors += 1
            return None
        return json.loads(data)


def _record(m: Message, a: dict, version: str, *, url_mode: bool) -> dict:
    """The serve stage's record (:func:`~mangaassist.serve.predlog.prediction_record`)."""
    return prediction_record(
        m.ts.isoformat(),
        m.request_id,
        0,
        m.text,
        a,
        model_version=a.get("model_version", version),
        latency_ms=a["latency_ms"] if url_mode else m.latency_ms,
        queue_ms=None if url_mode else m.queue_ms,  # the API does not return it
        batch=None if url_mode else 1,
    )


class _Sink:
    """The run's three outputs: the prediction log (simulated clock), truth and labels."""

    def __init__(self, out: Path, traffic: Traffic, privacy: str, delay_hours: float) -> None:
        self.now = _start(traffic)
        self.writer = PredictionLogWriter(
            out / "logs", privacy=privacy, clock=lambda: self.now, queue_size=4 * BATCH
        )
        self.truth = open(out / "truth.jsonl", "w", encoding="utf-8")  # noqa: SIM115
        self.labels = open(out / "labels.jsonl", "w", encoding="utf-8")  # noqa: SIM115
        self.delay = timedelta(hours=delay_hours)
        self.counts = {"messages": 0, "labelled": 0, "errors": 0}
        self.versions: set[str] = set()

    def write(self, chunk: list[Message], answers: list[dict | None], version: str, url: bool):
        if chunk:  # a chunk never spans two days, and the writer is idle (flushed) here
            self.now = chunk[0].ts
        for m, a in zip(chunk, answers, strict=True):
            if a is None:
                continue
            rec = _record(m, a, version, url_mode=url)
            self.versions.add(rec["model_version"])
            self.writer.write(rec)
            self.counts["messages"] += 1
            ts = m.ts.isoformat()
            key = {"request_id": m.request_id, "item": 0, "ts": ts, "label": m.label}
            truth = {**key, "drift": m.drift, "tags": m.tags}
            self.truth.write(json.dumps(truth, ensure_ascii=False) + "\n")
            if m.labelled:
                self.counts["labelled"] += 1
                later = (m.ts + self.delay).isoformat()
                label = {**key, "ts_labelled": later, "source": "simulator"}
                self.labels.write(json.dumps(label) + "\n")
        self.writer.flush(timeout=60)  # on disk under this chunk's day before the clock moves

    def close(self) -> None:
        self.writer.close()
        self.truth.close()
        self.labels.close()
        if self.writer.dropped or self.writer.errors:
            lost = self.writer.dropped + self.writer.errors
            raise UserError(f"{self.writer.directory}: {lost} log records lost; disk full?")


def _start(traffic: Traffic) -> datetime:
    try:
        start = datetime.fromisoformat(traffic.start.replace("Z", "+00:00"))
    except ValueError as err:
        raise UserError(f"traffic.start={traffic.start!r}: not an ISO-8601 time") from err
    if start.tzinfo is None:
        raise UserError(f"traffic.start={traffic.start!r}: give a zone, e.g. ...T00:00:00Z")
    return start


def simulate(
    out: str | Path,
    scenario: str,
    *,
    bundle: str | Path | None = None,
    url: str | None = None,
    days: int = 7,
    rate_per_hour: float = DEFAULT_RATE,
    seed: int = 0,
    label_share: float = 0.02,
    label_delay_hours: float = 24.0,
    privacy: str = "text",
    max_requests: int = 5000,
    max_seconds: float = 120.0,
    scenarios_path: str | Path | None = None,
    progress: bool | None = None,
) -> dict:
    """Simulate ``days`` of traffic for ``scenario`` and write the files listed above.

    Args:
        bundle: the model bundle to call directly (needed unless ``url``).
        url: a running server to replay against instead; bounded by ``max_requests`` and
            ``max_seconds`` (the run stops early, and ``scenario.json`` says where).
        privacy: the log's text mode (``text`` keeps the message; active learning needs it).
        progress: a tqdm bar; None shows it only on a terminal.

    Returns:
        The ``scenario.json`` content.

    Raises:
        UserError: a bad scenario, argument or bundle, or ``out`` already holding a simulation.
    """
    traffic, sc = get_scenario(scenario, scenarios_path)
    if (
        rate_per_hour <= 0
        or min(days - 1, label_share, 1 - label_share, label_delay_hours, seed) < 0
    ):
        raise UserError(
            f"days={days} rate_per_hour={rate_per_hour} label_share={label_share} "
            f"label_delay_hours={label_delay_hours} seed={seed}: need days >= 1, rate > 0, "
            "a share in [0, 1], a delay >= 0 and a seed >= 0"
        )
    out, rate_per_hour = Path(out), float(rate_per_hour)  # 30 and 30.0: the same scenario.json
    label_share, label_delay_hours = float(label_share), float(label_delay_hours)
    if any((out / "logs").glob("predictions-*.jsonl")):
        raise UserError(f"{out}/logs already holds prediction logs; pass a new --out directory")
    server, predictor, version = None, None, "unknown"
    if url is not None:
        server = _Server(url)
    elif bundle is not None:
        from mangaassist.inference import Predictor, open_bundle

        opened = open_bundle(bundle)
        predictor, version = Predictor.from_bundle(opened), opened.version
    else:
        raise UserError("simulate needs --bundle BUNDLE (direct, fast) or --url URL (a server)")
    from tqdm import tqdm

    sink = _Sink(out, traffic, privacy, label_delay_hours)
    tty = sys.stderr.isatty() if progress is None else progress
    stopped_at, t0 = None, time.monotonic()
    try:
        for _day in tqdm(range(days), unit="day", disable=not tty):
            msgs = day_messages(traffic, sc, _day, rate_per_hour, seed, label_share)
            for i in range(0, len(msgs), BATCH):
                chunk = msgs[i : i + BATCH]
                if predictor is not None:
                    sink.write(chunk, predictor.classify([m.text for m in chunk]), version, False)
                    continue
                answers: list[dict | None] = []
                for m in chunk:  # the replay is bounded: a server is slower than a predictor
                    if sink.counts["messages"] + len(answers) >= max_requests or (
                        time.monotonic() - t0 > max_seconds
                    ):
                        stopped_at = m.ts.isoformat()
                        break
                    answers.append(server.classify(m.text, m.request_id))  # type: ignore[union-attr]
                sink.write(chunk[: len(answers)], answers, version, True)
                if stopped_at:
                    break
            if stopped_at:
                break
    finally:
        sink.close()
    sink.counts["errors"] = server.errors if server else 0
    start = _start(traffic)

    def iso(day: float | None) -> str | None:
        return None if day is None else (start + timedelta(days=day)).isoformat()

    end_day = None if sc.duration_days is None else (sc.start_day or 0) + sc.duration_days
    info = {
        "scenario": sc.name,
        "description": sc.description,
        "seed": seed,
        "days": days,
        "rate_per_hour": rate_per_hour,
        "mode": "url" if server else "direct",
        "model_versions": sorted(sink.versions),
        "start": iso(0),
        "end": iso(days),
        "drift_start": iso(sc.start_day),
        "drift_end": iso(end_day) if sc.start_day is not None else None,
        "expected_signals": list(sc.expected_signals),
        "label_share": label_share,
        "label_delay_hours": label_delay_hours,
        "stopped_early_at": stopped_at,
        "counts": sink.counts,
        "scenario_config": asdict(sc),
        "traffic_config": asdict(traffic),
    }
    (out / "scenario.json").write_text(json.dumps(info, indent=1) + "\n", encoding="utf-8")
    return info
