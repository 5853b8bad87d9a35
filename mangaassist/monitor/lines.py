"""The monitor's one-line records, in the team's runbook format (``[TAG] key=value ...``).

Rates and shares print as percentages with ``%``; accuracies as points without it (the
runbook's ``sampled_acc=91.7``); milliseconds and tokens with one decimal; KL with three
decimals, p-values with two significant digits; a signal that is unavailable prints ``n/a``.

Example:
    >>> w = {"kind": "hourly", "start": "2026-12-07T10:00:00+00:00", "model": "v14", "n": 5321,
    ...      "p50_ms": 8.11, "p95_ms": 12.84, "err_rate": None, "low_conf_rate": 0.062,
    ...      "kl_div": 0.01104}
    >>> window_line(w, ["p50_ms", "p95_ms", "err_rate", "low_conf_rate", "kl_div"])
    '[MONITOR_HOURLY] model=v14 start=2026-12-07T10:00Z n=5321 p50_ms=8.1 p95_ms=12.8 \
err_rate=n/a low_conf_rate=6.2% kl_div=0.0110'
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any

_POINTS = ("sampled_acc", "sampled_acc_lo", "sampled_acc_hi", "rare_recall", "est_acc")
_POINTS += ("rare_recall_lo", "rare_recall_hi")
_PERCENT = ("err_rate", "low_conf_rate", "fallback_rate", "ambiguous_rate")
_PERCENT += ("new_vocab_share", "jp_share")


def fmt(name: str, x: Any) -> str:
    """One signal's value as the lines print it."""
    if x is None:
        return "n/a"
    if name in _POINTS:
        return f"{100 * x:.1f}"
    if name in _PERCENT:
        return f"{100 * x:.{2 if 0 < 100 * x < 0.1 else 1}f}%"
    if name in ("n", "sampled_n", "rare_n"):
        return str(int(x))
    if name == "kl_div":
        return f"{x:.4f}"
    if name in ("chi2_p", "chi2"):
        return f"{x:.2g}"
    if name.endswith("_ratio"):
        return f"{x:.2f}"
    return f"{x:.1f}"


def short_time(iso: str) -> str:
    """``2026-12-07T10:00:00+00:00`` -> ``2026-12-07T10:00Z``."""
    return iso[:16] + "Z" if iso.endswith("+00:00") else iso


def window_line(w: Mapping[str, Any], signals: Sequence[str]) -> str:
    """``[MONITOR_<KIND>] model=... start=... n=... <signals>``."""
    parts = [f"[MONITOR_{w['kind'].upper()}]", f"model={w.get('model') or 'n/a'}"]
    parts += [f"start={short_time(w['start'])}"]
    parts += [f"{s}={fmt(s, w.get(s))}" for s in ("n", *(x for x in signals if x != "n"))]
    return " ".join(parts)


def alert_line(event: Mapping[str, Any]) -> str:
    """``[ALERT] <rule>=true reason="..." ...`` on firing, ``<rule>=cleared`` on clearing."""
    where = f"window={event['window']} start={short_time(event['start'])}"
    model = f"model={event.get('model') or 'n/a'}"
    if event["event"] == "clear":
        return (
            f"[ALERT] {event['rule']}=cleared {where} {model} "
            f"clean_windows={event['clean_windows']} fired_at={short_time(event['fired_at'])}"
        )
    line = (
        f'[ALERT] {event["rule"]}=true reason="{event["reason"]}" severity={event["severity"]} '
        f'{where} {model} signals="{" ".join(event["met"])}"'
    )
    return line + (f' action="{event["triggers"]}"' if event.get("triggers") else "")


def logs_line(summary: Mapping[str, Any]) -> str:
    """``[MONITOR_LOGS]``: what was read, what was skipped."""
    return (
        f"[MONITOR_LOGS] files={len(summary['files'])} champion_lines={summary['champion_lines']} "
        f"shadow_lines={summary['shadow_lines']} skipped_lines={summary['skipped_lines']} "
        f"torn_lines={summary['torn_lines']} text={summary['text']}"
    )
