"""The HTTP server over a tiny bundle, run in-process on 127.0.0.1: routes, answers, limits."""

from __future__ import annotations

import asyncio
import json
import threading
import time
from contextlib import contextmanager
from pathlib import Path

import aiohttp
import httpx
import numpy as np
import pytest
import uvicorn

from mangaassist.inference import Predictor, open_bundle
from mangaassist.inference.policy import ROUTES
from mangaassist.serve.app import create_app
from mangaassist.serve.predlog import read_prediction_logs
from mangaassist.serve.settings import load_serve_settings
from tests.conftest import free_port

TEXTS = [
    "where is my order",
    "hi",
    "any sales this weekend pls",
    "vol 3 came ripped can i swap it for a new one or do i need to send it back first",
    "この漫画の在庫ありますか",
]


@contextmanager
def running(bundle: Path, tmp_path: Path, *overrides: str):
    """A uvicorn server in a thread on a free port; stopped (and its log closed) on exit."""
    port = free_port()
    settings = load_serve_settings(
        overrides=[f"port={port}", f"log_dir={tmp_path / 'logs'}", "log_privacy=text", *overrides]
    )
    app = create_app(bundle, settings)
    server = uvicorn.Server(uvicorn.Config(app, host="127.0.0.1", port=port, log_level="warning"))
    thread = threading.Thread(target=server.run, daemon=True)
    thread.start()
    try:
        deadline = time.monotonic() + 30
        while not server.started:
            assert thread.is_alive() and time.monotonic() < deadline, "server did not start"
            time.sleep(0.02)
        yield f"http://127.0.0.1:{port}", app
    finally:
        server.should_exit = True
        thread.join(15)


@pytest.fixture(scope="module", params=["fast_path=true", "fast_path=false"])
def server(tiny_bundle, tmp_path_factory, request):
    """The server both ways: /v1/classify answered in the Guard, or by the FastAPI route."""
    with running(tiny_bundle, tmp_path_factory.mktemp("srv"), request.param) as (url, app):
        yield url, app


@pytest.fixture(scope="module")
def offline(tiny_bundle):
    return Predictor.from_bundle(open_bundle(tiny_bundle))


def post(url: str, **kw) -> httpx.Response:
    return httpx.post(f"{url}/v1/classify", timeout=10, **kw)


def test_one_message_answers_every_field_with_the_offline_numbers(server, offline):
    url, _ = server
    r = post(url, json={"text": TEXTS[3]}, headers={"X-Request-ID": "req-1"})
    assert r.status_code == 200
    a = r.json()
    want = offline.classify([TEXTS[3]])[0]
    assert a["intent"] == want["intent"] and a["tokens"] == want["tokens"]
    assert a["confidence"] == pytest.approx(want["confidence"], abs=1e-5)
    assert a["fallback"] == want["fallback"] and a["fallback_reason"] == want["fallback_reason"]
    assert a["route"] == (ROUTES[a["intent"]] if not a["fallback"] else "clarify_or_fallback")
    assert a["top_k"][0][0] == a["intent"] and len(a["top_k"]) == 3
    assert a["request_id"] == "req-1" == r.headers["x-request-id"]
    assert a["model_version"].startswith("tiny-random-bert-") and a["latency_ms"] > 0


def test_texts_are_answered_in_order(server, offline):
    url, _ = server
    r = post(url, json={"texts": TEXTS})
    assert r.status_code == 200
    got = [a["intent"] for a in r.json()["results"]]
    assert got == [a["intent"] for a in offline.classify(TEXTS)]
    assert len({a["request_id"] for a in r.json()["results"]}) == 1


def test_health_ready_model_metrics_and_openapi(server):
    url, _ = server
    assert httpx.get(f"{url}/healthz").json() == {"status": "ok"}
    ready = httpx.get(f"{url}/readyz")
    assert ready.status_code == 200 and ready.json()["ready"] is True
    info = httpx.get(f"{url}/v1/model").json()
    assert len(info["labels"]) == 10 and len(info["thresholds"]) == 10
    assert info["manifest"]["tokenizer_sha256"] and info["temperature"] > 0
    post(url, json={"text": "hi"})
    metrics = httpx.get(f"{url}/metrics").text
    for name in (
        "mangaassist_request_duration_seconds_bucket",
        "mangaassist_queue_wait_seconds_bucket",
        "mangaassist_batch_size_bucket",
        "mangaassist_requests_in_flight",
        "mangaassist_requests_total",
        "mangaassist_predictions_total",
        "mangaassist_low_confidence_total",
        "mangaassist_fallback_total",
        "mangaassist_model_info",
    ):
        assert name in metrics, name
    assert 'le="0.015"' in metrics  # a bucket edge at the 15 ms budget
    schema = httpx.get(f"{url}/openapi.json").json()
    assert "/v1/classify" in schema["paths"] and httpx.get(f"{url}/docs").status_code == 200


BAD = [
    ({"json": {"text": ""}}, 422, "empty_text", "text"),
    ({"json": {"text": "   \n\t "}}, 422, "empty_text", "text"),
    ({"json": {"text": 42}}, 422, "string_type", "text"),
    ({"json": {"texts": ["ok", 3]}}, 422, "string_type", "texts.1"),
    ({"json": {}}, 422, "text_or_texts", "text"),
    ({"json": {"text": "a", "texts": ["b"]}}, 422, "text_or_texts", "text"),
    ({"json": {"text": "hi", "lang": "en"}}, 422, "extra_forbidden", "lang"),
    ({"json": {"texts": []}}, 422, "empty_list", "texts"),
    ({"json": ["hi"]}, 422, "not_an_object", None),
    ({"json": {"text": "x" * 2001}}, 413, "text_too_long", "text"),
    ({"json": {"texts": ["hi"] * 65}}, 413, "too_many_items", "texts"),
    ({"json": {"text": "null\u0000byte"}}, 422, "invalid_character", "text"),
    ({"json": {"text": "bell\u0007"}}, 422, "invalid_character", "text"),
    (
        {"content": b'{"text": "\\ud800 lone"}', "headers": {"content-type": "application/json"}},
        422,
        "invalid_character",
        "text",
    ),
    (
        {"content": b'{"text": "hi"', "headers": {"content-type": "application/json"}},
        400,
        "malformed_json",
        None,
    ),
    ({"content": b"text=hi", "headers": {"content-type": "text/plain"}}, 415, None, None),
    (
        {
            "content": b'{"text": "' + b"a" * 300_000 + b'"}',
            "headers": {"content-type": "application/json"},
        },
        413,
        "body_too_large",
        None,
    ),
]


@pytest.mark.parametrize(("kw", "status", "code", "field"), BAD)
def test_bad_input_gets_a_json_error_naming_the_field(server, kw, status, code, field):
    url, _ = server
    r = post(url, **kw)
    assert r.status_code == status, r.text
    err = r.json()["error"]
    assert err["status"] == status and err["message"]
    if code is not None:
        assert err["code"] == code
    if field is not None:
        assert err["field"] == field
    if status == 413 and code != "too_many_items" and field == "text":
        assert err["limit"] == 2000


def test_chunked_body_over_the_limit_is_413(server):
    url, _ = server

    def chunks():
        yield b'{"text": "'
        for _ in range(40):
            yield b"a" * 10_000
        yield b'"}'

    r = post(url, content=chunks(), headers={"content-type": "application/json"})
    assert r.status_code == 413 and r.json()["error"]["code"] == "body_too_large"


def test_unknown_route_and_wrong_method(server):
    url, _ = server
    r = httpx.get(f"{url}/v2/nothing")
    assert r.status_code == 404 and r.json()["error"]["code"] == "not_found"
    r = httpx.get(f"{url}/v1/classify")
    assert r.status_code == 405 and r.json()["error"]["code"] == "method_not_allowed"


async def _concurrent(url: str, texts: list[str]) -> list[tuple[int, dict, dict]]:
    async with aiohttp.ClientSession() as session:

        async def one(text: str):
            async with session.post(f"{url}/v1/classify", json={"text": text}) as r:
                return r.status, await r.json(), dict(r.headers)

        return await asyncio.gather(*(one(t) for t in texts))


def test_concurrent_callers_each_get_their_own_answer_and_batches_form(tiny_bundle, tmp_path):
    texts = [f"{TEXTS[i % len(TEXTS)]} {'pls ' * (i % 7)}{i}" for i in range(96)]
    with running(tiny_bundle, tmp_path, "max_wait_ms=20", "max_batch_size=16") as (url, app):
        got = asyncio.run(_concurrent(url, texts))
        runtime = app.state.runtime
        runtime.writer.flush()
        offline = runtime.model.predictor.classify(texts)
    assert all(status == 200 for status, _, _ in got)
    for (_, answer, _), want in zip(got, offline, strict=True):
        assert answer["intent"] == want["intent"]
        assert answer["confidence"] == pytest.approx(want["confidence"], abs=1e-5)
    log = read_prediction_logs(tmp_path / "logs")
    assert sorted(r["text"] for r in log.records) == sorted(texts)
    assert max(r["batch"] for r in log.records) > 1  # concurrent requests shared model calls
    ids = {a["request_id"] for _, a, _ in got}
    assert len(ids) == len(texts) and {r["request_id"] for r in log.records} == ids


def test_batches_are_padded_per_length_group_not_to_128(tiny_bundle, tmp_path):
    with running(tiny_bundle, tmp_path, "max_wait_ms=50", "max_batch_size=32") as (url, app):
        predictor = app.state.runtime.model.predictor
        widths: list[tuple[int, int]] = []
        real = predictor.run

        def spy(inputs):
            widths.append(inputs["input_ids"].shape)
            return real(inputs)

        predictor.run = spy
        texts = ["hi"] * 8 + ["where is my order " * 5] * 4
        asyncio.run(_concurrent(url, texts))
    # Short and long messages of one gathered batch run as separate groups, each padded to
    # its own longest; none is padded to the tokenizer file's fixed 128.
    short = predictor.tokenizer.encode(["hi"])[0]
    assert (8, len(short)) in widths and all(w < 128 for _, w in widths)


def test_full_queue_sheds_with_503_and_retry_after(tiny_bundle, tmp_path):
    with running(tiny_bundle, tmp_path, "max_queue=2", "max_batch_size=1") as (url, app):
        predictor = app.state.runtime.model.predictor
        real = predictor.run_ids
        predictor.run_ids = lambda ids: (time.sleep(0.2), real(ids))[1]  # a slow model
        t0 = time.perf_counter()
        got = asyncio.run(_concurrent(url, [f"hi {i}" for i in range(12)]))
        metrics = httpx.get(f"{url}/metrics").text
    statuses = [s for s, _, _ in got]
    shed = [(a, h) for s, a, h in got if s == 503]
    assert statuses.count(200) >= 2 and len(shed) >= 6, statuses
    assert all(h["Retry-After"] == "1" and a["error"]["code"] == "overloaded" for a, h in shed)
    assert time.perf_counter() - t0 < 0.2 * 12  # shed requests did not wait for the model
    assert "mangaassist_shed_total " in metrics and "mangaassist_shed_total 0.0" not in metrics


def test_metrics_carry_the_rolling_low_confidence_rate_and_intent_mix(server):
    url, _ = server
    r = post(url, json={"texts": [f"where is my order {i}" for i in range(60)]})
    post(url, json={"texts": [f"hi {i}" for i in range(60)]})
    assert r.status_code == 200
    lines = httpx.get(f"{url}/metrics").text.splitlines()
    shares = [
        float(x.split()[-1]) for x in lines if x.startswith("mangaassist_rolling_intent_share{")
    ]
    low = [
        float(x.split()[-1])
        for x in lines
        if x.startswith("mangaassist_rolling_low_confidence_rate ")
    ]
    assert len(shares) == 10 and abs(sum(shares) - 1) < 1e-6 and 0 <= low[0] <= 1


def test_batching_off_runs_one_model_call_per_request(tiny_bundle, tmp_path):
    with running(tiny_bundle, tmp_path, "batching=false", "max_wait_ms=50") as (url, app):
        asyncio.run(_concurrent(url, [f"where is my order {i}" for i in range(24)]))
        app.state.runtime.writer.flush()
    assert {r["batch"] for r in read_prediction_logs(tmp_path / "logs").records} == {1}


def test_log_privacy_hash_keeps_no_text(tiny_bundle, tmp_path, monkeypatch):
    monkeypatch.setenv("MANGAASSIST_LOG_SALT", "pepper")
    with running(tiny_bundle, tmp_path, "log_privacy=hash") as (url, app):
        post(url, json={"text": "my secret order 123"})
        app.state.runtime.writer.flush()
    (rec,) = read_prediction_logs(tmp_path / "logs").records
    raw = json.dumps(rec)
    assert "secret" not in raw and len(rec["text_sha256"]) == 64
    for key in ("ts", "request_id", "model_version", "latency_ms", "queue_ms", "intent"):
        assert key in rec
    assert rec["top_k"][0][0] == rec["intent"] and isinstance(rec["fallback"], bool)


def test_served_confidence_is_softmax_of_logits_over_the_bundle_temperature(server, offline):
    url, _ = server
    a = post(url, json={"text": "do you accept paypal"}).json()
    z = offline.logits(["do you accept paypal"])[0] / offline.temperature
    p = np.exp(z - z.max()) / np.exp(z - z.max()).sum()
    assert a["confidence"] == pytest.approx(float(p.max()), abs=1e-5)
