"""The open-loop load generator against a real stub server on 127.0.0.1."""

from __future__ import annotations

import argparse
import asyncio
import itertools
import json
import random
import re
import socket
import subprocess
import sys
import threading
import time
from pathlib import Path

import pytest
from aiohttp import web

from mangaassist.errors import UserError
from mangaassist.serve.loadtest import (
    _offsets,
    add_parser,
    classify_url,
    find_max_rate,
    format_line,
    load_test,
    read_texts,
)

LINE = re.compile(
    r"^\[LOAD_TEST\] p50_ms=[\d.]+ p95_ms=[\d.]+ p99_ms=[\d.]+ max_ms=[\d.]+ "
    r"error_rate=\d+\.\d\d% rps=[\d.]+( \S+=\S+)*$"
)


def _stub_app() -> web.Application:
    slow_lock, step_lock = asyncio.Lock(), asyncio.Lock()

    async def fast(request: web.Request) -> web.Response:
        body = await request.json()
        return web.json_response({"intent": "faq", "confidence": 0.9, "text": body["text"]})

    async def serialized(lock: asyncio.Lock, seconds: float) -> web.Response:
        async with lock:  # one request at a time, like a single-worker model server
            await asyncio.sleep(seconds)
        return web.json_response({"intent": "faq"})

    async def slow(request: web.Request) -> web.Response:
        await request.read()
        return await serialized(slow_lock, 0.1)

    async def step(request: web.Request) -> web.Response:
        await request.read()
        return await serialized(step_lock, 0.02)

    async def shed(request: web.Request) -> web.Response:
        if (await request.json())["text"].startswith("shed"):
            return web.json_response({"error": "busy"}, status=503, headers={"Retry-After": "1"})
        return web.json_response({"intent": "faq"})

    async def hang(request: web.Request) -> web.Response:
        await asyncio.sleep(30)  # never answers within any test's timeout
        return web.json_response({})

    app = web.Application()
    app.router.add_post("/v1/classify", fast)
    for path, handler in (("/fast", fast), ("/slow", slow), ("/step", step)):
        app.router.add_post(path, handler)
    app.router.add_post("/shed", shed)
    app.router.add_post("/hang", hang)
    return app


@pytest.fixture(scope="module")
def stub():
    """Base URL of the stub, served from a background thread; always shut down."""
    sock = socket.socket()
    sock.bind(("127.0.0.1", 0))  # the OS picks a free port; the site serves this socket
    loop = asyncio.new_event_loop()
    runner = web.AppRunner(_stub_app(), access_log=None)

    async def start() -> None:
        await runner.setup()
        await web.SockSite(runner, sock, shutdown_timeout=0.5).start()

    thread = threading.Thread(target=loop.run_forever, daemon=True)
    thread.start()
    try:
        asyncio.run_coroutine_threadsafe(start(), loop).result(timeout=10)
        yield f"http://127.0.0.1:{sock.getsockname()[1]}"
    finally:
        asyncio.run_coroutine_threadsafe(runner.cleanup(), loop).result(timeout=10)
        loop.call_soon_threadsafe(loop.stop)
        thread.join(timeout=10)
        loop.close()
        sock.close()


def test_rate_and_duration_bound_the_run(stub):
    t = time.monotonic()
    r = load_test(stub + "/fast", ["hi", "where is my order"], rate=50, duration_s=1.0)
    wall = time.monotonic() - t
    assert abs(r["scheduled"] - 50) <= 1 and r["ok"] == r["scheduled"] == r["completed"]
    assert r["errors"] == 0 and r["error_rate"] == 0 and r["status_counts"] == {"200": 50}
    assert wall < 1.0 + 1.5  # schedule + a little slack; nothing waits for a drain
    assert 0 < r["p50_ms"] <= r["p95_ms"] <= r["p99_ms"] <= r["max_ms"] < 500
    assert 30 < r["achieved_rps"] < 60 and r["send_lag_p99_ms"] is not None
    assert "latencies_ms" not in r  # small JSON by default
    assert LINE.match(format_line(r)), format_line(r)
    short = load_test(stub, ["hi"], rate=100, duration_s=1.0, max_requests=10)
    assert short["scheduled"] == short["ok"] == 10 and short["url"].endswith("/v1/classify")


def test_coordinated_omission_is_not_hidden(stub):
    """20 req/s at a serialized 100 ms handler: the queue grows and the latencies show it."""
    r = load_test(stub + "/slow", ["x"], rate=20, duration_s=1.0, samples=True)
    lat = r["latencies_ms"]
    assert r["ok"] == r["scheduled"] == 20 and None not in lat
    # A closed-loop client would report ~100 ms; open loop, the last request waited ~1 s.
    assert r["p99_ms"] > 500 and r["p50_ms"] > 300
    assert lat[0] < 300 and lat[-1] > lat[0] + 500
    assert sum(b > a for a, b in itertools.pairwise(lat)) >= 15  # grows with position


def test_503_counted_per_status(stub):
    texts = ["ok a", "ok b", "ok c", "shed d"]  # cycled: exactly 1 in 4 is shed
    r = load_test(stub + "/shed", texts, rate=40, duration_s=0.5)
    assert r["scheduled"] == 20 and r["status_counts"] == {"200": 15, "503": 5}
    assert r["ok"] == 15 and r["errors"] == 5 and r["error_rate"] == pytest.approx(0.25)
    assert r["completed"] == 20 and r["p50_ms"] is not None  # 503s have latencies too
    assert "error_rate=25.00%" in format_line(r)


def test_timeouts_and_connection_errors(stub):
    t = time.monotonic()
    r = load_test(stub + "/hang", ["x"], rate=10, duration_s=0.3, request_timeout_s=0.3)
    assert r["scheduled"] == 3 and r["timeouts"] == 3 and r["error_rate"] == 1.0
    assert r["completed"] == 0 and r["p50_ms"] is None and "p50_ms=nan" in format_line(r)
    # per-request timeout longer than the drain: the drain cancels them, still timeouts
    r = load_test(stub + "/hang", ["x"], rate=10, duration_s=0.3, drain_timeout_s=0.2)
    assert r["timeouts"] == 3 and r["errors"] == 3
    assert time.monotonic() - t < 0.3 + 0.3 + 0.3 + 0.2 + 2.0  # bounded by itself
    with socket.socket() as s:  # a port nobody listens on
        s.bind(("127.0.0.1", 0))
        dead = f"http://127.0.0.1:{s.getsockname()[1]}"
    r = load_test(dead, ["x"], rate=20, duration_s=0.2)
    assert r["conn_errors"] == r["errors"] == 4 and r["error_rate"] == 1.0


def test_poisson_schedule_is_seeded():
    a = _offsets(200, 1.0, "poisson", random.Random(3))
    assert a == _offsets(200, 1.0, "poisson", random.Random(3)) and 150 < len(a) < 250
    assert all(0 <= x < 1.0 for x in a) and a == sorted(a)
    assert len(_offsets(20, 1.5, "uniform", random.Random(0))) == 30


def test_find_max_steps_up_and_stops_at_first_fail(stub):
    lines: list[str] = []
    out = find_max_rate(
        stub + "/step", ["x"], 20, 0.5, budget_ms=100, step=2, pause_s=0.1, echo=lines.append
    )  # 20 ms serialized: 50 req/s capacity, so 80 req/s must fail
    rates = [s["rate"] for s in out["steps"]]
    assert rates[:3] == [20, 40, 80] and out["steps"][2]["passed"] is False
    assert out["steps"][0]["passed"] and out["stopped"] == "fail"
    assert out["max_sustained_rps"] in (40, 60) and len(rates) <= 4  # 60: the refinement
    assert len(lines) == len(rates) + 1 and all(LINE.match(x) for x in lines[:-1])
    assert re.match(r"^\[LOAD_TEST\] max_sustained_rps=\d+ budget_ms=100 p95_ms=[\d.]+$", lines[-1])


def _cli(argv: list[str]) -> int:
    parser = argparse.ArgumentParser(prog="mangaassist")
    add_parser(parser.add_subparsers(dest="command", required=True))
    args = parser.parse_args(["loadtest", *argv])
    return args.func(args)


def test_cli_prints_line_and_writes_json(stub, tmp_path, capsys):
    data = tmp_path / "msgs.jsonl"
    data.write_text('{"text": "hi"}\n{"text": "any sales", "label": "promotion"}\n')
    out = tmp_path / "r" / "load.json"
    assert (
        _cli([stub, "--rate", "20", "--duration", "0.5", "--data", str(data), "--out", str(out)])
        == 0
    )
    line = capsys.readouterr().out.strip()
    assert LINE.match(line) and "sent=10" in line
    saved = json.loads(out.read_text())
    assert saved["ok"] == 10 and saved["url"] == stub + "/v1/classify" and saved["p95_ms"] > 0

    fm = tmp_path / "fm.json"
    argv = [stub, "--find-max", "--rate", "20", "--step", "+20", "--max-rate", "40"]
    argv += ["--duration", "0.3", "--pause", "0", "--budget-ms", "1000", "--out", str(fm)]
    assert _cli(argv) == 0
    res = json.loads(fm.read_text())
    assert [s["rate"] for s in res["steps"]] == [20, 40] and res["stopped"] == "max_rate"
    assert res["max_sustained_rps"] == 40 and "max_sustained_rps=40" in capsys.readouterr().out

    shed = ["--rate", "20", "--duration", "0.2", "--fail-on-error"]
    csv = tmp_path / "m.csv"
    csv.write_text("text,label\nshed me,faq\n")
    assert _cli([stub + "/shed", *shed, "--data", str(csv)]) == 1


@pytest.mark.parametrize(
    ("name", "content", "match"),
    [
        ("missing.jsonl", None, "no such file"),
        ("empty.jsonl", "  \n", "empty"),
        ("nocol.csv", "message,label\nhi,faq\n", "no 'text' column"),
        ("nocol.jsonl", '{"message": "hi"}\n', "'text' field"),
        ("bad.jsonl", "{not json\n", "not valid JSON"),
        ("blank.csv", "text\n\n", "empty"),
    ],
)
def test_bad_data_file_is_a_user_error(tmp_path, name, content, match):
    path = tmp_path / name
    if content is not None:
        path.write_text(content)
    with pytest.raises(UserError, match=match) as err:
        read_texts(path)
    assert name in str(err.value)


def test_bad_arguments_are_user_errors(stub):
    with pytest.raises(UserError):
        load_test(stub, [], rate=10, duration_s=1)
    with pytest.raises(UserError):
        find_max_rate(stub, ["x"], 10, 1, step=1.0)
    assert classify_url("http://h:1/") == "http://h:1/v1/classify"
    assert classify_url("http://h:1/other") == "http://h:1/other"
    with pytest.raises(UserError, match="not an http"):
        classify_url("localhost:8000")
    with pytest.raises(SystemExit):  # argparse rejects a step that is not a number
        _cli([stub, "--find-max", "--step", "fast"])


def test_loadtest_module_is_torch_free():
    code = (
        "import sys, mangaassist.serve.loadtest; "
        "bad = {'torch', 'transformers', 'lightning', 'hydra'} & set(sys.modules); "
        "sys.exit(f'imports {bad}' if bad else 0)"
    )
    root = Path(__file__).resolve().parents[2]
    subprocess.run([sys.executable, "-c", code], check=True, cwd=root, timeout=60)
