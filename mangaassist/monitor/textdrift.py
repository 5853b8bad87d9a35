"""Drift of the messages themselves: new vocabulary and Japanese script, in DuckDB SQL.

Needs the text in the log (``log_privacy=text``); with ``hash`` or ``none`` these signals are
unavailable and say so. Token lengths come from the log's ``tokens`` field in any mode
(:mod:`~mangaassist.monitor.windows`).

Word tokens (one definition, used for the reference vocabulary and the live log alike): the
message lower-cased (DuckDB ``lower``), then RE2 ``regexp_extract_all`` of ``TOKEN_RE``: each
kana/kanji character on its own (Japanese has no spaces, so a run would be one "word"), else
a run of characters that are not space, punctuation (``\\p{P}``), symbols (``\\p{S}``) or
kana/kanji. ``"Where's vol.12 この漫画?"`` gives ``where s vol 12 こ の 漫 画``.

* ``new_vocab_share`` = word tokens of the window not in the reference vocabulary / all its
  word tokens. The reference's own figure (``reference.new_vocab_share``) is measured by
  building the vocabulary from every other reference text and counting the rest: how much
  "new" vocabulary in-distribution messages already show.
* ``jp_share`` = messages with at least one kana/kanji character (``JP_CLASS``: hiragana,
  katakana, CJK ideographs and extension A, half-width katakana) / messages with text. This is
  the script part of the data audit's ``jp_en_mixed``; romaji cues are not counted.

Token counts add up, so they are computed once per smallest window and summed into the larger
ones (the widths are whole multiples; :mod:`~mangaassist.monitor.settings` checks it).
"""

from __future__ import annotations

from pathlib import Path

import duckdb

_JP_RANGES = r"\x{3040}-\x{30ff}\x{3400}-\x{4dbf}\x{4e00}-\x{9fff}\x{ff66}-\x{ff9f}"
JP_CLASS = f"[{_JP_RANGES}]"
TOKEN_RE = rf"{JP_CLASS}|[^\s\p{{P}}\p{{S}}{_JP_RANGES}]+"
_TOKENS = f"regexp_extract_all(lower(text), '{TOKEN_RE}')"


def load_reference_texts(con: duckdb.DuckDBPyConnection, path: Path, limit: int) -> int:
    """Table ``ref_text(i, text)`` from a JSON-lines split (first ``limit`` texts); the count."""
    con.execute(
        """CREATE OR REPLACE TABLE ref_text AS
        SELECT row_number() OVER () AS i, text
        FROM read_json($p, format = 'newline_delimited', ignore_errors = true,
                       columns = {text: 'VARCHAR'})
        WHERE text IS NOT NULL LIMIT $n""",
        {"p": str(path), "n": int(limit)},
    )
    return con.execute("SELECT count(*) FROM ref_text").fetchone()[0]


def reference_text_stats(con: duckdb.DuckDBPyConnection) -> dict[str, float | int | None]:
    """Build table ``vocab(tok)`` from ``ref_text``; the reference's own text figures."""
    con.execute(
        f"""CREATE OR REPLACE TABLE ref_tok AS
        SELECT i, unnest({_TOKENS}) AS tok FROM ref_text"""
    )
    con.execute("CREATE OR REPLACE TABLE vocab AS SELECT DISTINCT tok FROM ref_tok")
    held_out = con.execute(
        """WITH v AS (SELECT DISTINCT tok FROM ref_tok WHERE i % 2 = 0)
        SELECT avg((v.tok IS NULL)::DOUBLE)
        FROM (SELECT tok FROM ref_tok WHERE i % 2 = 1) t LEFT JOIN v ON t.tok = v.tok"""
    ).fetchone()[0]
    jp = con.execute(
        f"SELECT avg(regexp_matches(text, '{JP_CLASS}')::DOUBLE) FROM ref_text"
    ).fetchone()[0]
    con.execute("DROP TABLE ref_tok")
    return {
        "vocab_size": con.execute("SELECT count(*) FROM vocab").fetchone()[0],
        "new_vocab_share": None if held_out is None else round(float(held_out), 6),
        "jp_share": None if jp is None else round(float(jp), 6),
    }


def vocab_from_tokens(con: duckdb.DuckDBPyConnection, tokens: list[str]) -> int:
    """Table ``vocab(tok)`` from a stored list (a bundle's ``reference.json``)."""
    con.execute("CREATE OR REPLACE TABLE vocab (tok VARCHAR)")
    if tokens:
        con.execute("INSERT INTO vocab SELECT DISTINCT unnest($t)", {"t": list(tokens)})
    return con.execute("SELECT count(*) FROM vocab").fetchone()[0]


def vocab_list(con: duckdb.DuckDBPyConnection) -> list[str]:
    """The ``vocab`` table as a sorted list (to store in ``reference.json``)."""
    return [t for (t,) in con.execute("SELECT tok FROM vocab ORDER BY tok").fetchall()]


def new_vocab_counts(
    con: duckdb.DuckDBPyConnection, widths: dict[str, int]
) -> dict[tuple[str, str], tuple[int, int]]:
    """(window kind, start) -> (word tokens, tokens not in ``vocab``), for text lines only.

    The tokens are extracted and joined with the vocabulary once, per smallest window, and
    summed into the others: one regex pass over the log whatever the number of windows.
    """
    from mangaassist.monitor.windows import ANSWERED, iso

    base = min(widths.values())
    con.execute(
        f"""CREATE OR REPLACE TEMP TABLE text_base AS
        SELECT b, count(*) AS n_tok, count(*) FILTER (WHERE v.tok IS NULL) AS n_new
        FROM (SELECT time_bucket(to_seconds($s), ts) AS b, unnest({_TOKENS}) AS tok
              FROM champ WHERE text IS NOT NULL AND {ANSWERED}) t
        LEFT JOIN vocab v ON t.tok = v.tok
        GROUP BY b""",
        {"s": base},
    )
    out: dict[tuple[str, str], tuple[int, int]] = {}
    for kind, seconds in widths.items():
        rows = con.execute(
            """SELECT time_bucket(to_seconds($s), b) AS w, sum(n_tok), sum(n_new)
            FROM text_base GROUP BY w""",
            {"s": seconds},
        ).fetchall()
        for w, n_tok, n_new in rows:
            out[(kind, iso(w))] = (int(n_tok), int(n_new))
    return out
