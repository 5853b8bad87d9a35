"""Reading logs into DuckDB: windows on hour boundaries, counts, percentiles, torn lines."""

import itertools
import json

import pytest

from mangaassist.errors import UserError
from mangaassist.monitor.logs import connect, find_log_files, load_logs
from mangaassist.monitor.windows import window_rows
from mangaassist.serve.predlog import read_prediction_logs

_ids = itertools.count()


def rec(ts, **kw):
    """A serve-shaped prediction-log record (mangaassist/serve/runtime.py)."""
    r = {
        "ts": ts,
        "request_id": f"r{next(_ids)}",
        "item": 0,
        "model_version": "v14",
        "latency_ms": 5.0,
        "queue_ms": 0.1,
        "batch": 1,
        "intent": "faq",
        "confidence": 0.9,
        "top_k": [["faq", 0.9]],
        "fallback": False,
        "fallback_reason": None,
        "route": "faq",
        "tokens": 8,
        "text": "hi",
        "status": 200,
        "role": "champion",
    }
    return {**r, **kw}


def write(path, records, tail=""):
    path.parent.mkdir(parents=True, exist_ok=True)
    lines = "".join(json.dumps(r, ensure_ascii=False) + "\n" for r in records)
    path.write_text(lines + tail, encoding="utf-8")
    return path


def rows_by_start(con, kind, seconds, errors_logged=False):
    return {r["start"]: r for r in window_rows(con, kind, seconds, errors_logged=errors_logged)}


def test_hour_boundaries_counts_and_percentiles(tmp_path):
    # Hour 10: ten answers with latency 1..10 ms, two of them low-confidence fallbacks.
    hour10 = [
        rec(f"2026-12-07T10:{5 * i:02d}:00+00:00", latency_ms=float(i + 1), tokens=i + 1)
        for i in range(10)
    ]
    for r in hour10[:2]:
        r.update(fallback=True, fallback_reason="low_confidence")
    hour10[-1]["ts"] = "2026-12-07T10:59:59.999999+00:00"  # still hour 10
    later = [
        rec("2026-12-07T11:00:00+00:00"),  # exactly on the boundary: hour 11
        rec("2026-12-07T13:30:00+02:00"),  # 11:30 UTC: offsets are honoured
        rec("2026-12-07T11:10:00+00:00", role="shadow"),  # not the served model's answer
    ]
    con = connect()
    logs = load_logs(write(tmp_path / "predictions-20261207.jsonl", hour10 + later), con)
    assert (logs.champion, logs.shadow, logs.skipped, logs.torn) == (12, 1, 0, 0)
    hourly = rows_by_start(con, "hourly", 3600)
    assert list(hourly) == ["2026-12-07T10:00:00+00:00", "2026-12-07T11:00:00+00:00"]
    h10, h11 = hourly.values()
    assert (h10["n"], h11["n"]) == (10, 2)
    assert h10["end"] == "2026-12-07T11:00:00+00:00"
    # quantile_cont interpolates linearly (numpy's default): on 1..10, the q-quantile sits at
    # position 1 + 9q: P50 = 5.5, P95 = 1 + 8.55 = 9.55, P99 = 1 + 8.91 = 9.91.
    assert (h10["p50_ms"], h10["p95_ms"], h10["p99_ms"]) == pytest.approx((5.5, 9.55, 9.91))
    assert h10["low_conf_rate"] == pytest.approx(0.2) and h10["fallback_rate"] == pytest.approx(0.2)
    assert h10["len_mean"] == pytest.approx(5.5) and h10["model"] == "v14"
    assert h10["err_rate"] is None  # no error lines in the log: unknown, not 0%
    daily = rows_by_start(con, "daily", 86_400)
    weekly = rows_by_start(con, "weekly", 7 * 86_400)
    assert {k: r["n"] for k, r in daily.items()} == {"2026-12-07T00:00:00+00:00": 12}
    assert list(weekly) == ["2026-12-07T00:00:00+00:00"]  # 2026-12-07 is a Monday


def test_error_lines_give_an_error_rate_and_stay_out_of_latency(tmp_path):
    records = [rec("2026-12-07T10:00:00+00:00", latency_ms=5.0) for _ in range(3)]
    records.append(rec("2026-12-07T10:01:00+00:00", status=503, latency_ms=900.0, intent=None))
    con = connect()
    logs = load_logs(write(tmp_path / "predictions-20261207.jsonl", records), con)
    (w,) = rows_by_start(con, "hourly", 3600, errors_logged=logs.error_rows > 0).values()
    assert (w["n"], w["err_rate"], w["p99_ms"]) == (4, 0.25, 5.0)


def test_torn_last_line_and_garbage_are_skipped_and_counted(tmp_path):
    good = [rec(f"2026-12-07T10:0{i}:00+00:00") for i in range(3)]
    torn = write(tmp_path / "logs" / "predictions-20261207.jsonl", good, tail='{"ts":"2026-12-0')
    whole = tmp_path / "logs" / "predictions-20261207.1.jsonl"
    whole.write_text(json.dumps(good[0]) + "\nnot json\n[1, 2]\n" + json.dumps(good[1]) + "\n")
    warnings = []
    logs = load_logs(tmp_path / "logs", warn=warnings.append)
    files = {f.path: f for f in logs.files}
    assert (files[str(torn)].lines, files[str(torn)].rows, files[str(torn)].skipped) == (4, 3, 1)
    assert files[str(torn)].torn and not files[str(whole)].torn
    assert (files[str(whole)].skipped, logs.skipped, logs.torn, logs.champion) == (2, 3, 1, 5)
    assert any(str(torn) in w and "torn" in w for w in warnings)
    assert any(str(whole) in w and "skipped 2 of 4" in w for w in warnings)
    # The serve stage's Python reader agrees on the torn line.
    assert read_prediction_logs(torn, warn=lambda m: None).torn_lines == 1


def test_folders_rotation_and_worker_subfolders(tmp_path):
    for worker in ("worker-101", "worker-102"):
        write(
            tmp_path / "logs" / worker / "predictions-20261207.1.jsonl",
            [rec("2026-12-07T09:00:00+00:00")],
        )
        write(
            tmp_path / "logs" / worker / "predictions-20261207.jsonl",
            [rec("2026-12-07T10:00:00+00:00")],
        )
    (tmp_path / "logs" / "notes.txt").write_text("not a log")
    assert len(find_log_files(tmp_path / "logs")) == 4
    assert load_logs(tmp_path / "logs").champion == 4


def test_bad_paths_and_empty_logs_are_user_errors(tmp_path):
    with pytest.raises(UserError, match="no such file"):
        find_log_files(tmp_path / "missing")
    (tmp_path / "empty").mkdir()
    with pytest.raises(UserError, match="no predictions"):
        find_log_files(tmp_path / "empty")
    shadow_only = write(tmp_path / "p.jsonl", [rec("2026-12-07T10:00:00+00:00", role="shadow")])
    with pytest.raises(UserError, match="no champion prediction lines"):
        load_logs(shadow_only)
