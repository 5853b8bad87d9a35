"""Model switches from a registry's ``history.jsonl``, to mark on the dashboard's time axis.

The registry (:mod:`mangaassist.release.registry`) appends one JSON object per event:
``{"time": "2026-12-09T14:00:00+00:00", "event": "promote"|"rollback"|"register",
"version": "v15", "from": "v14", ...}``. Promotions and rollbacks change what answers, so
they are the switches; registrations change nothing live and are left out. Read here with the
standard library (the registry module imports the evaluation stage, which needs torch).

Example:
    >>> read_switches(None)
    []
"""

from __future__ import annotations

import datetime as dt
import json
from pathlib import Path

from mangaassist.errors import UserError

SWITCH_EVENTS = ("promote", "rollback")


def read_switches(registry: str | Path | None) -> list[dict]:
    """Promote and rollback events, oldest first: ``{time, event, version, from}``.

    Raises:
        UserError: the folder has no ``history.jsonl``, or a line of it is not a JSON event.
    """
    if registry is None:
        return []
    path = Path(registry) / "history.jsonl"
    if not path.is_file():
        raise UserError(f"{path}: no registry history; --registry takes the registry folder")
    out = []
    for lineno, line in enumerate(path.read_text(encoding="utf-8").splitlines(), 1):
        if not line.strip():
            continue
        try:
            ev = json.loads(line)
            when = dt.datetime.fromisoformat(ev["time"])
        except (ValueError, KeyError, TypeError) as err:
            raise UserError(f"{path}:{lineno}: not a registry event with a time ({err})") from None
        if ev.get("event") in SWITCH_EVENTS:
            when = when if when.tzinfo else when.replace(tzinfo=dt.UTC)
            out.append(
                {
                    "time": when.astimezone(dt.UTC).isoformat(),
                    "event": ev["event"],
                    "version": ev.get("version"),
                    "from": ev.get("from"),
                }
            )
    return sorted(out, key=lambda e: e["time"])
