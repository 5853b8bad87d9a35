"""Per-window signals, computed by DuckDB: one ``GROUP BY time_bucket(width, ts)`` per window.

Buckets are DuckDB's ``time_bucket`` with its default origin (2000-01-03, a Monday, 00:00
UTC): hours start on the hour, days at UTC midnight, 7-day windows on Mondays. A window exists
where the log has at least one champion line; empty hours are simply absent.

Volume ``n`` counts every champion line of the window (answered or not). Latency, rates, the
label-free estimate, token lengths and the intent counts use answered lines only (``status``
missing or < 400). ``err_rate`` = lines with ``status >= 400`` / ``n``, and only when the log
holds error lines at all: today's server logs answered messages only, so without them the
error rate is ``None`` (read ``mangaassist_requests_total{status=...}`` from ``/metrics``).

Example:
    >>> con = connect()  # doctest: +SKIP
    >>> rows = window_rows(con, "hourly", 3600, errors_logged=False)  # doctest: +SKIP
    >>> rows[0]["start"], rows[0]["n"], rows[0]["p95_ms"]  # doctest: +SKIP
    ('2026-12-07T00:00:00+00:00', 5655, 12.8)
"""

from __future__ import annotations

import datetime as dt
from typing import Any

import duckdb
import numpy as np

from mangaassist.monitor.textdrift import JP_CLASS

ANSWERED = "coalesce(status, 200) < 400"

_WINDOWS_SQL = f"""
SELECT time_bucket(to_seconds($s), ts) AS b,
       count(*) AS n,
       count(*) FILTER (WHERE status >= 400) AS errors,
       mode(model_version) AS model,
       histogram(model_version) AS models,
       quantile_cont(latency_ms, [0.5, 0.95, 0.99]) FILTER (WHERE {ANSWERED}) AS lat,
       avg((coalesce(fallback_reason, '') = 'low_confidence')::DOUBLE)
           FILTER (WHERE {ANSWERED}) AS low_conf_rate,
       avg(fallback::DOUBLE) FILTER (WHERE {ANSWERED}) AS fallback_rate,
       avg((coalesce(fallback_reason, '') = 'ambiguous')::DOUBLE)
           FILTER (WHERE {ANSWERED}) AS ambiguous_rate,
       avg(confidence) FILTER (WHERE {ANSWERED}) AS est_acc,
       avg(tokens) FILTER (WHERE {ANSWERED}) AS len_mean,
       quantile_cont(tokens, 0.95) FILTER (WHERE {ANSWERED}) AS len_p95,
       count(text) FILTER (WHERE {ANSWERED}) AS text_n,
       count(*) FILTER (WHERE {ANSWERED} AND regexp_matches(text, '{JP_CLASS}')) AS jp_n
FROM champ
GROUP BY b
ORDER BY b
"""

_INTENTS_SQL = f"""
SELECT time_bucket(to_seconds($s), ts) AS b, intent, count(*) AS n
FROM champ
WHERE {ANSWERED} AND intent IS NOT NULL
GROUP BY ALL
"""


def iso(t: dt.datetime) -> str:
    """A naive UTC bucket start as ISO-8601 with +00:00, as the log writes times."""
    return t.replace(tzinfo=dt.UTC).isoformat()


def _r(x: Any, nd: int = 6) -> float | None:
    return None if x is None else round(float(x), nd)


def window_rows(
    con: duckdb.DuckDBPyConnection, kind: str, seconds: int, *, errors_logged: bool
) -> list[dict[str, Any]]:
    """One dict per window of this width: start, end, volume, model, latency, rates, lengths.

    Args:
        con: a connection holding the ``champ`` view (:func:`~mangaassist.monitor.logs.load_logs`).
        kind: the window's name (``hourly``), kept in each row.
        seconds: its width.
        errors_logged: whether the log holds error lines; if not, ``err_rate`` is None.
    """
    rows = []
    cur = con.execute(_WINDOWS_SQL, {"s": seconds})
    names = [d[0] for d in cur.description]
    for rec in cur.fetchall():
        r = dict(zip(names, rec, strict=True))
        lat = r["lat"] or [None, None, None]
        models = dict(sorted(r["models"].items(), key=lambda kv: -kv[1])) if r["models"] else {}
        rows.append(
            {
                "kind": kind,
                "start": iso(r["b"]),
                "end": iso(r["b"] + dt.timedelta(seconds=seconds)),
                "n": int(r["n"]),
                "model": r["model"],
                "models": models,
                "p50_ms": _r(lat[0], 3),
                "p95_ms": _r(lat[1], 3),
                "p99_ms": _r(lat[2], 3),
                "err_rate": _r(r["errors"] / r["n"]) if errors_logged else None,
                "low_conf_rate": _r(r["low_conf_rate"]),
                "fallback_rate": _r(r["fallback_rate"]),
                "ambiguous_rate": _r(r["ambiguous_rate"]),
                "est_acc": _r(r["est_acc"]),
                "len_mean": _r(r["len_mean"], 3),
                "len_p95": _r(r["len_p95"], 3),
                "text_n": int(r["text_n"]),
                "jp_share": _r(r["jp_n"] / r["text_n"]) if r["text_n"] else None,
            }
        )
    return rows


def intent_counts(
    con: duckdb.DuckDBPyConnection, seconds: int, starts: list[str], labels: list[str]
) -> tuple[np.ndarray, list[str]]:
    """Counts (W, K) of predicted intents per window, columns ``labels`` then unknown intents.

    An intent the reference does not know (a new label, a typo upstream) gets its own column
    after the reference's, so the KL sees it instead of dropping it.
    """
    found = con.execute(_INTENTS_SQL, {"s": seconds}).fetchall()
    extra = sorted({intent for _, intent, _ in found} - set(labels))
    cols = [*labels, *extra]
    col = {name: j for j, name in enumerate(cols)}
    row = {s: i for i, s in enumerate(starts)}
    counts = np.zeros((len(starts), len(cols)), dtype=np.int64)
    for b, intent, n in found:
        counts[row[iso(b)], col[intent]] = n
    return counts, cols
