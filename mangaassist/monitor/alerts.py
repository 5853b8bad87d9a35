"""Alert rules over window signals, with hysteresis: fire on entering a condition, not per window.

A rule (``conf/monitor/default.yaml``, ``alerts.rules``) holds when every ``all`` condition
holds and, if it lists ``any``, at least one of those. A condition is ``SIGNAL OP VALUE``
(``kl_div > $kl_retrain``): ``$name`` is read from ``thresholds``. An unavailable signal
(``None``: no labels, hashed text, too few labels) makes its condition false, so a missing
figure can never fire an alert, and it cannot clear one either: the window is then not clean.

Hysteresis, per rule, over that rule's windows in time order:

* inactive and the rule holds: **fire** (one alert, naming each condition's signal and value);
* active and it holds again: the alert stays open (``windows`` counts its windows);
* active and the window is clean (``clear_after`` times in a row): **clear**;
* windows with fewer than ``min_window_n`` messages are not judged at all.

A fired alert of a rule listed in ``roi.rules`` carries a retrain ROI estimate
(:func:`roi_estimate`): what a retrain would cost against what the drop costs per day.

Example:
    >>> c = parse_condition("kl_div > $kl_retrain", {"kl_retrain": 0.028})
    >>> c.holds({"kl_div": 0.031}), c.holds({"kl_div": None}), c.describe({"kl_div": 0.031})
    (True, None, 'kl_div=0.031>0.028')
"""

from __future__ import annotations

import operator
import re
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Any

from mangaassist.errors import UserError
from mangaassist.monitor.settings import SIGNALS, AlertSettings, RetrainCosts, Rule

_OPS = {
    "<": operator.lt,
    "<=": operator.le,
    ">": operator.gt,
    ">=": operator.ge,
    "==": operator.eq,
    "!=": operator.ne,
}
_COND = re.compile(r"^\s*(\w+)\s*(<=|>=|==|!=|<|>)\s*(\S+)\s*$")


@dataclass(frozen=True)
class Condition:
    """``signal op value``, e.g. ``p95_ms > 15.0``."""

    signal: str
    op: str
    value: float

    def holds(self, signals: Mapping[str, Any]) -> bool | None:
        """True/False, or None when the signal is unavailable in this window."""
        x = signals.get(self.signal)
        return None if x is None else bool(_OPS[self.op](x, self.value))

    def describe(self, signals: Mapping[str, Any]) -> str:
        """``kl_div=0.031>0.028``: the signal's value beside the condition."""
        x = signals.get(self.signal)
        shown = "n/a" if x is None else f"{x:.4g}"
        return f"{self.signal}={shown}{self.op}{self.value:.4g}"


def parse_condition(text: str, thresholds: Mapping[str, float]) -> Condition:
    """Parse ``"SIGNAL OP VALUE"``; VALUE is a number or ``$threshold``.

    Raises:
        UserError: bad syntax, an unknown signal, or a ``$name`` not in ``thresholds``.
    """
    m = _COND.match(str(text))
    if m is None:
        raise UserError(f"condition {text!r}: expected 'SIGNAL OP VALUE', e.g. 'p95_ms > $p95_ms'")
    signal, op, raw = m.groups()
    if signal not in SIGNALS:
        raise UserError(f"condition {text!r}: unknown signal {signal!r}; known: {SIGNALS}")
    if raw.startswith("$"):
        if raw[1:] not in thresholds:
            raise UserError(
                f"condition {text!r}: no threshold {raw[1:]!r}; thresholds: {sorted(thresholds)}"
            )
        return Condition(signal, op, float(thresholds[raw[1:]]))
    try:
        return Condition(signal, op, float(raw))
    except ValueError:
        raise UserError(f"condition {text!r}: {raw!r} is neither a number nor $threshold") from None


def _evaluate(rule: Rule, signals: Mapping[str, Any], thresholds: Mapping[str, float]):
    """(holds, the conditions that held, every condition's description)."""
    all_c = [parse_condition(t, thresholds) for t in rule.all]
    any_c = [parse_condition(t, thresholds) for t in rule.any]
    met = [c for c in [*all_c, *any_c] if c.holds(signals)]
    holds = all(c.holds(signals) for c in all_c) and (not any_c or any(c in met for c in any_c))
    return holds, met, [c.describe(signals) for c in [*all_c, *any_c]]


def judge(
    windows: Sequence[Mapping[str, Any]],
    rules: Sequence[Rule],
    settings: AlertSettings,
    thresholds: Mapping[str, float],
) -> list[dict[str, Any]]:
    """Fire and clear events of every rule over the windows (dicts with ``kind``, ``start``).

    Returns:
        Events in time order: ``{"event": "fire"|"clear", "rule", "window", "start", "end",
        "model", "severity", "reason", "triggers", "signals": {name: value},
        "met": [...], "conditions": [...], "windows": int, "active": bool}``; a fired alert
        still open at the end of the log has ``active`` true.
    """
    events: list[dict[str, Any]] = []
    for rule in rules:
        own = sorted((w for w in windows if w["kind"] == rule.window), key=lambda w: w["start"])
        open_alert: dict[str, Any] | None = None
        clean = 0
        for w in own:
            if (w.get("n") or 0) < settings.min_window_n:
                continue  # too small to judge: neither fires nor counts as clean
            holds, met, described = _evaluate(rule, w, thresholds)
            if holds and open_alert is None:
                names = dict.fromkeys(
                    parse_condition(t, thresholds).signal for t in [*rule.all, *rule.any]
                )
                open_alert = {
                    "event": "fire",
                    "rule": rule.name,
                    "window": rule.window,
                    "start": w["start"],
                    "end": w["end"],
                    "model": w.get("model"),
                    "severity": rule.severity,
                    "reason": rule.reason or rule.name,
                    "triggers": rule.triggers,
                    "signals": {k: w.get(k) for k in names},
                    "met": [c.describe(w) for c in met],
                    "conditions": described,
                    "windows": 1,
                    "active": True,
                }
                events.append(open_alert)
                clean = 0
            elif holds and open_alert is not None:
                open_alert["windows"] += 1
                clean = 0
            elif open_alert is not None:
                # Unavailable signals are not evidence that things are fine: not clean.
                if all(c is not None for c in _availability(rule, w, thresholds)):
                    clean += 1
                if clean >= settings.clear_after:
                    open_alert["active"] = False
                    events.append(
                        {
                            "event": "clear",
                            "rule": rule.name,
                            "window": rule.window,
                            "start": w["start"],
                            "end": w["end"],
                            "model": w.get("model"),
                            "severity": rule.severity,
                            "fired_at": open_alert["start"],
                            "clean_windows": clean,
                        }
                    )
                    open_alert, clean = None, 0
    return sorted(events, key=lambda e: (e["start"], e["event"] != "clear", e["rule"]))


def _availability(rule: Rule, w: Mapping[str, Any], thresholds: Mapping[str, float]) -> list:
    """Each ``all`` condition's verdict (None = unavailable); ``any`` needs one available."""
    verdicts = [parse_condition(t, thresholds).holds(w) for t in rule.all]
    if rule.any:
        anys = [parse_condition(t, thresholds).holds(w) for t in rule.any]
        verdicts.append(None if all(v is None for v in anys) else False)
    return verdicts


def roi_estimate(
    window: Mapping[str, Any],
    costs: RetrainCosts,
    *,
    window_seconds: int,
    baseline_acc: float | None,
    baseline: str,
    training_minutes: float,
    minutes_source: str,
) -> dict[str, Any]:
    """What a retrain would cost, against the accuracy the window says was lost.

    cost = labels_needed x price_per_label + training_minutes x instance_price_per_hour / 60;
    points_lost = 100 x (baseline_acc - live accuracy), at least 0, where the live accuracy is
    the window's ``sampled_acc``, else its label-free ``est_acc``; misrouted_per_day =
    points_lost / 100 x the window's messages scaled to a day; loss_per_day = misrouted_per_day
    x misrouted_message_cost; payback_days = cost / loss_per_day.

    Args:
        window: the window that fired (``n``, ``sampled_acc``, ``est_acc``).
        costs: prices (``conf/retrain/default.yaml``, ``cost:``).
        window_seconds: the window's width, to scale its volume to a day.
        baseline_acc: the accuracy the model had (its test accuracy), or None when unknown.
        baseline: where ``baseline_acc`` came from (``test_acc``, ``target``).
        training_minutes: minutes one training run takes; ``minutes_source`` says whose.

    Returns:
        Every input and result, JSON-ready; unknown figures are None.

    Example:
        >>> w = {"n": 14_400, "sampled_acc": 0.855, "est_acc": 0.88}
        >>> r = roi_estimate(w, RetrainCosts(), window_seconds=86_400, baseline_acc=0.917,
        ...                  baseline="test_acc", training_minutes=12.0, minutes_source="config")
        >>> r["cost"], r["points_lost"], r["misrouted_per_day"], r["payback_days"]
        (50.6, 6.2, 892.8, 1.13)
    """
    label_cost = costs.labels_needed * costs.price_per_label
    training_cost = training_minutes * costs.instance_price_per_hour / 60
    cost = label_cost + training_cost
    live, live_name = window.get("sampled_acc"), "sampled_acc"
    if live is None:
        live, live_name = window.get("est_acc"), "est_acc"
    daily = (window.get("n") or 0) * 86_400 / window_seconds
    points = misrouted = loss = payback = None
    if live is not None and baseline_acc is not None:
        points = max(0.0, 100 * (baseline_acc - live))
        misrouted = points / 100 * daily
        if costs.misrouted_message_cost is not None:
            loss = misrouted * costs.misrouted_message_cost
            payback = cost / loss if loss > 0 else None

    def r(x: float | None, digits: int) -> float | None:
        return None if x is None else round(x, digits)

    return {
        "labels_needed": costs.labels_needed,
        "price_per_label": costs.price_per_label,
        "label_cost": r(label_cost, 2),
        "training_minutes": training_minutes,
        "training_minutes_source": minutes_source,
        "instance_price_per_hour": costs.instance_price_per_hour,
        "training_cost": r(training_cost, 2),
        "cost": r(cost, 2),
        "currency": costs.currency,
        "baseline_acc": baseline_acc,
        "baseline": baseline,
        "live_acc": live,
        "live": live_name if live is not None else None,
        "points_lost": r(points, 2),
        "daily_volume": r(daily, 1),
        "misrouted_per_day": r(misrouted, 1),
        "misrouted_message_cost": costs.misrouted_message_cost,
        "loss_per_day": r(loss, 2),
        "payback_days": r(payback, 2),
    }
