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
    line += f' action="{event["triggers"]}"' if event.get("triggers") else ""
    return line + (f' roi="{roi_text(event["roi"])}"' if event.get("roi") else "")


def roi_text(roi: Mapping[str, Any]) -> str:
    """The alert's ROI estimate in one sentence (:func:`~mangaassist.monitor.alerts.roi_estimate`).

    Example:
        >>> roi = {"cost": 50.6, "labels_needed": 500, "price_per_label": 0.1, "currency": "$",
        ...        "training_minutes": 12.0, "instance_price_per_hour": 3.0, "points_lost": 6.2,
        ...        "baseline": "test_acc", "baseline_acc": 0.917, "live": "sampled_acc",
        ...        "live_acc": 0.855, "misrouted_per_day": 892.8, "daily_volume": 14400.0,
        ...        "loss_per_day": 44.64, "payback_days": 1.13}
        >>> roi_text(roi)
        'cost=$50.60 (500 labels x $0.10 + 12.0 train min x $3.00/h) vs 6.2 points lost \
(test_acc 91.7 -> sampled_acc 85.5) = 893 misrouted/day of 14,400 = $44.64/day; payback 1.1 days'
    """
    cur = roi.get("currency", "$")
    text = (
        f"cost={cur}{roi['cost']:,.2f} ({roi['labels_needed']} labels x "
        f"{cur}{roi['price_per_label']:,.2f} + {roi['training_minutes']:.1f} train min x "
        f"{cur}{roi['instance_price_per_hour']:,.2f}/h)"
    )
    if roi.get("points_lost") is None:
        why = "no sampled or estimated accuracy" if roi.get("live") is None else "no baseline"
        return f"{text} vs points lost n/a ({why})"
    text += (
        f" vs {roi['points_lost']:.1f} points lost ({roi['baseline']} "
        f"{100 * roi['baseline_acc']:.1f} -> {roi['live']} {100 * roi['live_acc']:.1f}) = "
        f"{roi['misrouted_per_day']:,.0f} misrouted/day of {roi['daily_volume']:,.0f}"
    )
    if roi.get("loss_per_day") is not None:
        text += f" = {cur}{roi['loss_per_day']:,.2f}/day"
        pay = roi.get("payback_days")
        text += f"; payback {pay:.1f} days" if pay is not None else "; no payback (nothing lost)"
    return text


def logs_line(summary: Mapping[str, Any]) -> str:
    """``[MONITOR_LOGS]``: what was read, what was skipped."""
    return (
        f"[MONITOR_LOGS] files={len(summary['files'])} champion_lines={summary['champion_lines']} "
        f"shadow_lines={summary['shadow_lines']} skipped_lines={summary['skipped_lines']} "
        f"torn_lines={summary['torn_lines']} text={summary['text']}"
    )
