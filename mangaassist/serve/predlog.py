"""Prediction log: one JSON line per answered message, written off the request path.

File format: UTF-8 JSON Lines. Each line is one object built by the server (``ts``,
``request_id``, ``intent``, ``confidence``, ``top_k``, ...), serialised compactly and ended by
``"\\n"``. The writer changes only the message text, according to ``privacy``:

* ``"text"``: keep ``text``;
* ``"hash"`` (default): replace ``text`` with ``text_sha256``, the hex sha256 of ``salt + text``;
* ``"none"``: drop ``text``.

Files and rotation, in the log directory (the day is the UTC date at write time)::

    predictions-20261201.jsonl     the live file for the day
    predictions-20261201.1.jsonl   the first part rotated out when the live file reached max_bytes
    predictions-20261201.2.jsonl   the second part, and so on

A day therefore reads ``.1``, ``.2``, ... and then the live file; :func:`read_prediction_logs`
sorts them that way. A process killed mid-write (``kill -9``) can leave a torn last line, which
the reader skips and counts. Stdlib only, so that the server and monitoring can import it
without torch.
"""

from __future__ import annotations

import contextlib
import hashlib
import json
import logging
import math
import os
import queue
import re
import threading
from collections.abc import Callable, Iterable, Iterator
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path
from typing import Any, BinaryIO

from mangaassist.errors import UserError

logger = logging.getLogger(__name__)

PRIVACY_MODES = ("text", "hash", "none")
_NAME = re.compile(r"^predictions-(\d{8})(?:\.(\d+))?\.jsonl$")


def _utc_now() -> datetime:
    return datetime.now(UTC)


class PredictionLogWriter:
    """Append records to daily, size-rotated JSONL files from a background thread.

    ``write()`` never blocks: records go on a bounded queue and are dropped (and counted) when
    it is full, so a slow disk costs log lines, not request latency. For metrics, records
    accepted = ``written + errors + pending()``.

    Args:
        directory: where the files go; created if missing.
        privacy: ``"text"``, ``"hash"`` or ``"none"`` (see the module docstring).
        salt: prefix hashed with the text; keep it secret so that hashes of common messages
            cannot be looked up in a dictionary.
        max_bytes: rotate the live file before a batch once it holds at least this many bytes
            (a file can overshoot by one batch).
        queue_size: records that may wait for the disk before ``write()`` drops.
        on_drop: called with 1 per dropped record, e.g. a metrics counter's ``inc``.
        clock: returns the current aware datetime; its UTC date names the file.

    Example:
        >>> with PredictionLogWriter(log_dir, privacy="none") as log:  # doctest: +SKIP
        ...     log.write({"request_id": "r1", "intent": "faq", "text": "hi"})
        True
    """

    def __init__(
        self,
        directory: str | Path,
        *,
        privacy: str = "hash",
        salt: str = "",
        max_bytes: int = 100_000_000,
        queue_size: int = 10_000,
        on_drop: Callable[[int], None] | None = None,
        clock: Callable[[], datetime] = _utc_now,
    ) -> None:
        if privacy not in PRIVACY_MODES:
            raise ValueError(f"privacy={privacy!r}; expected one of: {', '.join(PRIVACY_MODES)}")
        if min(max_bytes, queue_size) < 1:  # Queue(0) would be unbounded
            raise ValueError("max_bytes and queue_size must be >= 1")
        self.directory = Path(directory)
        self.directory.mkdir(parents=True, exist_ok=True)  # here, so a bad path fails at startup
        self.privacy, self.max_bytes = privacy, max_bytes
        self._salt, self._on_drop, self._clock = salt, on_drop, clock
        self.written = self.dropped = self.errors = 0
        self._queue: queue.Queue[dict[str, Any]] = queue.Queue(maxsize=queue_size)
        # Re-entrant: close() may run in a signal handler that interrupted write() on this thread.
        self._lock = threading.RLock()
        self._done = threading.Condition()  # notified after each batch; flush() waits on it
        self._accepted = self._processed = 0
        self._closed = self._logged_error = False
        self._file: BinaryIO | None = None
        self._path: Path | None = None
        self._thread = threading.Thread(target=self._run, name="predlog-writer", daemon=True)
        self._thread.start()

    def write(self, record: dict[str, Any]) -> bool:
        """Queue one record; return False (and count it in ``dropped``) if it was dropped."""
        rec = dict(record)  # a copy: the caller's dict is untouched and later edits don't leak in
        if self.privacy != "text" and "text" in rec:
            text = rec.pop("text")
            if self.privacy == "hash" and text is not None:
                data = (self._salt + str(text)).encode("utf-8", "surrogatepass")
                rec["text_sha256"] = hashlib.sha256(data).hexdigest()
        with self._lock:
            if not self._closed:
                try:
                    self._queue.put_nowait(rec)
                    self._accepted += 1
                    return True
                except queue.Full:
                    pass
            self.dropped += 1
        if self._on_drop is not None:
            try:
                self._on_drop(1)
            except Exception:  # a broken metrics hook must not fail the request
                logger.exception("prediction log: on_drop callback failed")
        return False

    def pending(self) -> int:
        """Records queued but not yet written."""
        return self._queue.qsize()

    def flush(self, timeout: float = 5.0) -> None:
        """Block until every record accepted before this call is written and flushed to the OS."""
        target = self._accepted
        with self._done:
            self._done.wait_for(
                lambda: self._processed >= target or not self._thread.is_alive(), timeout
            )

    def close(self, timeout: float = 10.0) -> None:
        """Stop accepting, write what is queued, fsync and close the file. Idempotent."""
        with self._lock:
            if self._closed:
                return
            self._closed = True
        self._thread.join(timeout)
        if self._thread.is_alive():
            logger.warning("prediction log: %d record(s) still queued at close", self.pending())

    def __enter__(self) -> PredictionLogWriter:
        return self

    def __exit__(self, *exc_info: object) -> None:
        self.close()

    def _run(self) -> None:
        while True:
            try:
                batch = [self._queue.get(timeout=0.1)]  # wakes 10x/s to notice close()
            except queue.Empty:
                if self._closed and self._queue.empty():  # no put can follow _closed (lock)
                    break
                continue
            with contextlib.suppress(queue.Empty):
                while True:
                    batch.append(self._queue.get_nowait())
            self._write_batch(batch)
            with self._done:
                self._processed += len(batch)
                self._done.notify_all()
        self._close_file(sync=True)

    def _write_batch(self, batch: list[dict[str, Any]]) -> None:
        lines = []
        for rec in batch:
            try:
                line = json.dumps(rec, ensure_ascii=False, separators=(",", ":")) + "\n"
                # backslashreplace turns a lone surrogate into a JSON \u escape: still valid
                lines.append(line.encode("utf-8", "backslashreplace"))
            except (TypeError, ValueError) as exc:  # e.g. a numpy float32 left in the record
                self._error(1, exc)
        if not lines:
            return
        try:
            f = self._target()
            f.write(b"".join(lines))  # one write per batch: lines land whole
            f.flush()
            self.written += len(lines)
        except Exception as exc:  # OSError mostly (disk full); the thread must live on
            self._close_file(sync=False)  # reopen next batch, in case the disk recovered
            self._error(len(lines), exc)

    def _target(self) -> BinaryIO:
        """The file for this batch: today's, rotated first if it reached max_bytes."""
        now = self._clock()
        day = (now.astimezone(UTC) if now.tzinfo else now).strftime("%Y%m%d")
        path = self.directory / f"predictions-{day}.jsonl"
        try:
            st: os.stat_result | None = os.stat(path)
        except FileNotFoundError:
            st = None
        if self._file is not None and (
            path != self._path or st is None or os.fstat(self._file.fileno()).st_ino != st.st_ino
        ):
            self._close_file(sync=True)  # a new day, or someone moved our file away
        if st is not None and st.st_size >= self.max_bytes:
            self._close_file(sync=True)
            n = 1
            while (part := path.with_name(f"predictions-{day}.{n}.jsonl")).exists():
                n += 1
            os.replace(path, part)
            st = None
        if self._file is None:
            self._file = open(path, "ab")  # noqa: SIM115 - held open across batches
            self._path = path
            if st is not None and st.st_size > 0 and not _ends_with_newline(path):
                # A torn line from a killed writer: end it so our first record is not glued on.
                self._file.write(b"\n")
        return self._file

    def _close_file(self, *, sync: bool) -> None:
        f, self._file = self._file, None
        if f is None:
            return
        try:
            f.flush()
            if sync:
                os.fsync(f.fileno())
        except OSError as exc:
            self._error(0, exc)
        finally:
            with contextlib.suppress(OSError):
                f.close()

    def _error(self, lost: int, exc: BaseException) -> None:
        self.errors += lost
        if not self._logged_error:  # log once; a full disk would otherwise flood the log
            self._logged_error = True
            logger.error("prediction log %s: %r; further errors only counted", self.directory, exc)


def _ends_with_newline(path: Path) -> bool:
    with open(path, "rb") as f:
        f.seek(-1, os.SEEK_END)
        return f.read(1) == b"\n"


@dataclass
class LogRead:
    """What :func:`read_prediction_logs` found.

    Attributes:
        records: the parsed objects, in reading order.
        files: the log files, in reading order.
        torn_lines: torn last lines skipped (at most one per file; a killed writer leaves them).
        bad_lines: other lines skipped because they are not a JSON object.
        problems: every warning issued, naming the file (and line for bad lines).
    """

    records: list[dict[str, Any]] = field(default_factory=list)
    files: list[Path] = field(default_factory=list)
    torn_lines: int = 0
    bad_lines: int = 0
    problems: list[str] = field(default_factory=list)


def _log_order(path: Path) -> tuple[int, str, float, str]:
    """Sort key: by day, then rotated parts .1, .2, ... numerically, then the live file."""
    m = _NAME.match(path.name)
    if m is None:
        return (1, "", 0.0, path.name)  # odd names (hand-made copies) last, by name
    return (0, m[1], float(m[2]) if m[2] else math.inf, path.name)


def _log_files(paths: str | Path | Iterable[str | Path]) -> list[Path]:
    if isinstance(paths, str | os.PathLike):
        paths = [paths]
    files: list[Path] = []
    for p in map(Path, paths):
        if p.is_dir():
            found = sorted(
                (f for f in p.glob("predictions-*.jsonl") if f.is_file()), key=_log_order
            )
            if not found:
                raise UserError(
                    f"no predictions-*.jsonl in {p}; point at the serve process's log directory"
                )
        elif p.exists():
            found = [p]
        else:
            raise UserError(f"{p}: no such file or directory; pass prediction logs or their dir")
        files += found
    return files


def iter_prediction_logs(
    paths: str | Path | Iterable[str | Path],
    stats: LogRead | None = None,
    *,
    warn: Callable[[str], None] | None = None,
) -> Iterator[dict[str, Any]]:
    """Stream the records of :func:`read_prediction_logs`, one line in memory at a time.

    ``stats`` (if given) collects the files, counts and problems; its ``records`` stay empty.
    """
    stats = stats if stats is not None else LogRead()
    warn = warn or logger.warning
    stats.files += _log_files(paths)  # raises before the first record if a path is wrong
    for path in stats.files:
        with path.open("rb") as f:
            lines = enumerate(f, 1)
            ahead = next(lines, None)  # one line ahead, so the last line is known as such
            while ahead is not None:
                (lineno, raw), ahead = ahead, next(lines, None)
                if (rec := _parse(path, lineno, raw, ahead is None, stats, warn)) is not None:
                    yield rec


def read_prediction_logs(
    paths: str | Path | Iterable[str | Path], *, warn: Callable[[str], None] | None = None
) -> LogRead:
    """Read prediction logs: files, and directories meaning every ``predictions-*.jsonl`` in them.

    Torn last lines and bad lines are skipped, counted and passed to ``warn`` (default: a
    logging warning).

    Example:
        >>> got = read_prediction_logs("logs/")  # doctest: +SKIP
        >>> got.records[0]["intent"], got.torn_lines
        ('faq', 0)

    Raises:
        UserError: a path is missing, or a directory holds no log files.
    """
    stats = LogRead()
    stats.records = list(iter_prediction_logs(paths, stats, warn=warn))
    return stats


def _parse(path: Path, lineno: int, raw: bytes, last: bool, stats: LogRead, warn) -> dict | None:
    if not raw.strip():
        return None  # the writer never writes blank lines; a hand edit may
    obj, error = None, None
    try:
        obj = json.loads(raw)
    except ValueError as exc:  # JSONDecodeError, or bytes that are not UTF-8
        error = str(exc)
    if last and (error is not None or not raw.endswith(b"\n")):
        stats.torn_lines += 1
        message = f"{path}: skipped a torn last line ({len(raw)} bytes): the writer was killed "
        message += "mid-write (or is writing this file now)"
    elif not isinstance(obj, dict):
        stats.bad_lines += 1
        message = (
            f"{path}:{lineno}: skipped a line that is not a JSON object ({error or repr(obj)[:60]})"
        )
    else:
        return obj
    stats.problems.append(message)
    warn(message)
    return None


def read_label_sample(path: str | Path, known: Iterable[str]) -> dict[tuple[str, int], str]:
    """A labelled sample of logged traffic: JSON lines ``{"request_id", "item" (0), "label"}``.

    Shadow reports and the monitor join it to the log by (request id, item).

    Raises:
        UserError: a missing or empty file, or a line (named) that is not a label object, has
            a label outside ``known``, or labels one message twice differently.
    """
    path, known = Path(path), list(known)
    if not path.is_file():
        raise UserError(f"{path}: no such labels file (JSON lines: request_id, item, label)")
    labels: dict[tuple[str, int], str] = {}
    with path.open(encoding="utf-8") as f:
        for lineno, line in enumerate(f, 1):
            if not line.strip():
                continue
            where = f"{path}:{lineno}"
            try:
                obj = json.loads(line)
            except ValueError as err:
                raise UserError(f"{where}: not JSON ({err})") from None
            rid = obj.get("request_id") if isinstance(obj, dict) else None
            item = obj.get("item", 0) if isinstance(obj, dict) else None
            if not isinstance(rid, str) or isinstance(item, bool) or not isinstance(item, int):
                raise UserError(f"{where}: needs a string request_id and an integer item (or none)")
            label = obj.get("label")
            if label not in known:
                raise UserError(f"{where}: unknown label {label!r}: not one of {known}")
            if labels.setdefault((rid, item), label) != label:
                raise UserError(f"{where}: ({rid}, {item}) labelled {labels[(rid, item)]!r} above")
    if not labels:
        raise UserError(f"{path}: no labels in the file")
    return labels


def prediction_record(
    ts: str,
    request_id: str,
    item: int,
    text: str,
    answer: dict,
    *,
    model_version: str,
    latency_ms: float,
    queue_ms: float | None,
    batch: int | None,
    role: str = "champion",
) -> dict[str, Any]:
    """One log line's fields for an answered message (``answer`` as the predictor gives it).

    The server and the traffic simulator both build their lines here, so the monitor reads one
    format. ``queue_ms`` / ``batch`` are None where they are not known (replayed traffic).
    ``secondary_intents`` (``[{"intent", "probability"}, ...]``, as answered) is there only
    when the answering model has the secondary head.
    """
    record = {
        "ts": ts,
        "request_id": request_id,
        "item": item,
        "model_version": model_version,
        "latency_ms": round(latency_ms, 3),
        "queue_ms": None if queue_ms is None else round(queue_ms, 3),
        "batch": batch,
        "intent": answer["intent"],
        "confidence": round(answer["confidence"], 6),
        "top_k": [[k, round(p, 6)] for k, p in answer["top_k"]],
        "fallback": answer["fallback"],
        "fallback_reason": answer["fallback_reason"],
        "route": answer["route"],
        "tokens": answer["tokens"],
        "text": text,
        "status": 200,
        "role": role,
    }
    if "secondary_intents" in answer:
        record["secondary_intents"] = [
            {"intent": s["intent"], "probability": round(s["probability"], 6)}
            for s in answer["secondary_intents"]
        ]
    return record
