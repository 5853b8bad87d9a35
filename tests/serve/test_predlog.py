"""Prediction log writer and reader: what the server and monitoring rely on."""

from __future__ import annotations

import contextlib
import hashlib
import json
import logging
import os
import signal
import subprocess
import sys
import textwrap
import threading
import time
from datetime import UTC, datetime, timedelta, timezone
from pathlib import Path

import pytest

from mangaassist.errors import UserError
from mangaassist.serve.predlog import PredictionLogWriter, read_prediction_logs

REPO = Path(__file__).resolve().parents[2]
DAY = datetime(2026, 12, 1, 18, 49, 46, tzinfo=UTC)


def record(i: int, text: str = "where is my order") -> dict:
    return {
        "ts": DAY.isoformat(),
        "request_id": f"r{i}",
        "item": i,
        "model_version": "v3",
        "latency_ms": 4.2,
        "intent": "faq",
        "confidence": 0.93,
        "top_k": [["faq", 0.93], ["promotion", 0.04]],
        "fallback": False,
        "fallback_reason": None,
        "text": text,
        "status": 200,
    }


def fixed_clock(when: datetime = DAY):
    return lambda: when


def test_records_round_trip_in_order(tmp_path):
    sent = [record(i, text=f"vol {i} は在庫ありますか") for i in range(20)]
    with PredictionLogWriter(tmp_path, privacy="text", clock=fixed_clock()) as log:
        assert all(log.write(r) for r in sent)
    got = read_prediction_logs(tmp_path)
    assert got.records == sent
    assert got.files == [tmp_path / "predictions-20261201.jsonl"]
    assert (got.torn_lines, got.bad_lines, got.problems) == (0, 0, [])
    assert log.written == 20 and log.dropped == 0 and log.errors == 0
    # Non-ASCII is stored as UTF-8, not \u-escaped, and one compact object per line.
    line = (tmp_path / "predictions-20261201.jsonl").read_text("utf-8").splitlines()[0]
    assert "在庫" in line and ", " not in line


def test_hash_privacy_is_salted_sha256_and_caller_dict_untouched(tmp_path):
    sent = record(0, text="my card keeps getting declined")
    before = json.dumps(sent)
    with PredictionLogWriter(tmp_path, privacy="hash", salt="s3cret", clock=fixed_clock()) as log:
        log.write(sent)
    assert json.dumps(sent) == before
    (got,) = read_prediction_logs(tmp_path).records
    assert "text" not in got
    want = hashlib.sha256(b"s3cretmy card keeps getting declined").hexdigest()
    assert got["text_sha256"] == want
    assert got["intent"] == "faq" and got["request_id"] == "r0"


def test_none_privacy_drops_text_and_adds_nothing(tmp_path):
    with PredictionLogWriter(tmp_path, privacy="none", clock=fixed_clock()) as log:
        log.write(record(0))
    (got,) = read_prediction_logs(tmp_path).records
    want = record(0)
    del want["text"]
    assert got == want


def test_unknown_privacy_names_the_allowed_values(tmp_path):
    with pytest.raises(ValueError, match="text, hash, none"):
        PredictionLogWriter(tmp_path, privacy="plain")


def test_full_queue_drops_and_counts_without_blocking(tmp_path):
    release = threading.Event()

    def stuck_clock():  # the background thread asks the clock per batch: hold it there
        release.wait(10)
        return DAY

    drops = []
    log = PredictionLogWriter(
        tmp_path, privacy="none", queue_size=2, on_drop=drops.append, clock=stuck_clock
    )
    try:
        results, slowest = [], 0.0
        for i in range(10):
            start = time.perf_counter()
            results.append(log.write(record(i)))
            slowest = max(slowest, time.perf_counter() - start)
        assert slowest < 0.05  # seconds: a request never waits on the disk
        dropped = results.count(False)
        assert dropped >= 7  # 2 queued, at most 1 already taken by the stuck thread
        assert log.dropped == dropped and drops == [1] * dropped
    finally:
        release.set()
        log.close()
    assert log.written == 10 - dropped
    assert len(read_prediction_logs(tmp_path).records) == 10 - dropped


def test_rotation_by_size_keeps_every_record_in_order(tmp_path):
    # max_bytes=1: any non-empty live file is rotated before the next batch.
    with PredictionLogWriter(tmp_path, privacy="text", max_bytes=1, clock=fixed_clock()) as log:
        for i in range(3):
            log.write(record(i))
            log.flush()
    names = sorted(p.name for p in tmp_path.iterdir())
    assert names == [
        "predictions-20261201.1.jsonl",
        "predictions-20261201.2.jsonl",
        "predictions-20261201.jsonl",
    ]
    got = read_prediction_logs(tmp_path)
    assert [r["item"] for r in got.records] == [0, 1, 2]
    assert [p.name for p in got.files] == names


def test_reader_orders_parts_numerically_then_live_file_by_day(tmp_path):
    order = [
        "predictions-20261130.jsonl",
        "predictions-20261201.2.jsonl",
        "predictions-20261201.10.jsonl",
        "predictions-20261201.jsonl",
    ]
    for i, name in enumerate(reversed(order)):
        (tmp_path / name).write_text(json.dumps({"name": name, "i": i}) + "\n")
    got = read_prediction_logs(tmp_path)
    assert [r["name"] for r in got.records] == order


def test_date_change_starts_the_new_days_file(tmp_path):
    now = [DAY.replace(hour=23, minute=59)]
    with PredictionLogWriter(tmp_path, privacy="text", clock=lambda: now[0]) as log:
        log.write(record(0))
        log.flush()
        now[0] += timedelta(minutes=2)
        log.write(record(1))
    got = read_prediction_logs(tmp_path)
    assert [p.name for p in got.files] == [
        "predictions-20261201.jsonl",
        "predictions-20261202.jsonl",
    ]
    assert [r["item"] for r in got.records] == [0, 1]


def test_file_day_is_the_utc_date(tmp_path):
    jst = timezone(timedelta(hours=9))
    when = datetime(2026, 12, 2, 8, 0, tzinfo=jst)  # already the 2nd in Tokyo, the 1st in UTC
    with PredictionLogWriter(tmp_path, privacy="none", clock=lambda: when) as log:
        log.write(record(0))
    assert [p.name for p in tmp_path.iterdir()] == ["predictions-20261201.jsonl"]


def test_close_drains_is_idempotent_and_later_writes_drop(tmp_path):
    log = PredictionLogWriter(tmp_path, privacy="none", clock=fixed_clock())
    for i in range(200):
        log.write(record(i))
    log.close()
    assert log.written == 200 and log.pending() == 0
    log.close()  # a shutdown hook and a signal handler may both call it
    assert log.write(record(200)) is False
    assert log.dropped == 1
    assert [r["item"] for r in read_prediction_logs(tmp_path).records] == list(range(200))


def test_write_errors_are_counted_logged_once_and_survived(tmp_path, caplog):
    blocker = tmp_path / "predictions-20261201.jsonl"
    blocker.mkdir()  # opening the log file now fails, like a broken disk
    with caplog.at_level(logging.ERROR, logger="mangaassist.serve.predlog"):
        log = PredictionLogWriter(tmp_path, privacy="none", clock=fixed_clock())
        for i in range(2):
            log.write(record(i))
            log.flush()
        assert log.errors == 2 and log.written == 0
        assert len(caplog.records) == 1
        blocker.rmdir()
        log.write(record(2))
        log.close()
    assert log.written == 1
    assert [r["item"] for r in read_prediction_logs(tmp_path).records] == [2]


def test_torn_last_line_is_skipped_and_counted(tmp_path):
    path = tmp_path / "predictions-20261201.jsonl"
    good = json.dumps(record(0)) + "\n"
    path.write_text(good + json.dumps(record(1))[:40], "utf-8")
    warnings = []
    got = read_prediction_logs(path, warn=warnings.append)
    assert [r["item"] for r in got.records] == [0]
    assert got.torn_lines == 1 and got.bad_lines == 0
    assert warnings == got.problems
    assert "torn last line (40 bytes)" in warnings[0] and str(path) in warnings[0]


def test_bad_middle_line_is_counted_with_its_line_number(tmp_path):
    path = tmp_path / "predictions-20261201.jsonl"
    lines = [json.dumps(record(0)), "{not json", "[1, 2]", json.dumps(record(3))]
    path.write_text("\n".join(lines) + "\n", "utf-8")
    warnings = []
    got = read_prediction_logs(tmp_path, warn=warnings.append)
    assert [r["item"] for r in got.records] == [0, 3]
    assert got.bad_lines == 2 and got.torn_lines == 0
    assert f"{path}:2:" in warnings[0] and f"{path}:3:" in warnings[1]


def test_restart_after_a_torn_line_does_not_glue_records_to_it(tmp_path):
    path = tmp_path / "predictions-20261201.jsonl"
    path.write_text(json.dumps(record(0)) + "\n" + json.dumps(record(1))[:30], "utf-8")
    with PredictionLogWriter(tmp_path, privacy="text", clock=fixed_clock()) as log:
        log.write(record(2))
    got = read_prediction_logs(tmp_path, warn=lambda _: None)
    assert [r["item"] for r in got.records] == [0, 2]  # the fragment is a bad line, 2 survives
    assert got.bad_lines == 1 and got.torn_lines == 0


CHILD = textwrap.dedent(
    """
    import sys, time
    from mangaassist.serve.predlog import PredictionLogWriter
    log = PredictionLogWriter(sys.argv[1], privacy="text", max_bytes=50_000)
    i = 0
    while True:
        rec = {"item": i, "text": "x" * 3000, "intent": "faq", "end": "complete"}
        while not log.write(rec):  # never drop, so the items on disk are a prefix
            time.sleep(0.001)
        i += 1
        if i % 50 == 0:
            time.sleep(0.002)  # let batches land between the kill points
    """
)


def size(files: list[Path]) -> int:
    total = 0
    for p in files:
        with contextlib.suppress(FileNotFoundError):  # rotated away since the glob
            total += p.stat().st_size
    return total


@pytest.mark.skipif(not hasattr(signal, "SIGKILL"), reason="needs POSIX SIGKILL")
def test_kill_minus_nine_loses_at_most_one_line(tmp_path):
    env = {**os.environ, "PYTHONPATH": str(REPO) + os.pathsep + os.environ.get("PYTHONPATH", "")}
    proc = subprocess.Popen([sys.executable, "-c", CHILD, str(tmp_path)], cwd=REPO, env=env)
    try:
        deadline = time.monotonic() + 30  # seconds; bounds the test if the child is stuck
        # Kill mid-stream: after a few rotations and ~200 records, while it keeps writing.
        while len(files := list(tmp_path.glob("*.jsonl"))) < 3 or size(files) < 600_000:
            assert proc.poll() is None, "the writer process died on its own"
            assert time.monotonic() < deadline, "the writer process wrote too little in 30 s"
            time.sleep(0.01)
        os.kill(proc.pid, signal.SIGKILL)
        proc.wait(timeout=10)
    finally:
        if proc.poll() is None:
            proc.kill()
            proc.wait(timeout=10)
    got = read_prediction_logs(tmp_path, warn=lambda _: None)
    assert len(got.files) >= 3  # rotation happened under load, and every part was read
    assert got.torn_lines <= 1 and got.bad_lines == 0
    assert [r["item"] for r in got.records] == list(range(len(got.records)))
    assert all(r["text"] == "x" * 3000 and r["end"] == "complete" for r in got.records)


def test_module_imports_without_the_training_stack():
    code = (
        "import sys, mangaassist.serve.predlog; "
        "heavy = {'torch', 'transformers', 'lightning', 'hydra'} & set(sys.modules); "
        "assert not heavy, heavy"
    )
    subprocess.run([sys.executable, "-c", code], cwd=REPO, check=True, timeout=60)


def test_missing_path_and_empty_directory_are_user_errors(tmp_path):
    with pytest.raises(UserError, match="nope"):
        read_prediction_logs(tmp_path / "nope")
    with pytest.raises(UserError, match=r"no predictions-\*\.jsonl in .*log directory"):
        read_prediction_logs(tmp_path)
