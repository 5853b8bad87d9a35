"""Alert rules: conditions, the runbook's combination (drift alone is not enough), hysteresis."""

import pytest

from mangaassist.errors import UserError
from mangaassist.monitor.alerts import judge, parse_condition
from mangaassist.monitor.settings import AlertSettings, Rule, load_settings

TH = {"p95_ms": 15.0, "kl_retrain": 0.028, "chi2_alpha": 0.01, "sampled_acc": 0.9}


def windows(values, key="p95_ms", kind="hourly", n=1000):
    return [
        {
            "kind": kind,
            "start": f"2026-12-07T{h:02d}:00:00+00:00",
            "end": f"2026-12-07T{h + 1:02d}:00:00+00:00",
            "n": n,
            "model": "v14",
            key: v,
        }
        for h, v in enumerate(values)
    ]


LATENCY = Rule(name="latency_slo", window="hourly", all=["p95_ms > $p95_ms"], severity="page")


def test_fires_once_while_the_condition_lasts_and_again_after_it_clears():
    #         0   1   2   3   4   5   6   7   8   9
    p95 = [10, 20, 21, 22, 10, 10, 10, 20, 20, 10]
    events = judge(windows(p95), [LATENCY], AlertSettings(clear_after=3), TH)
    assert [(e["event"], e["start"][11:13]) for e in events] == [
        ("fire", "01"),  # entering the condition
        ("clear", "06"),  # the third clean window in a row (04, 05, 06)
        ("fire", "07"),  # it came back: a new alert
    ]
    first, _, second = events
    assert first["windows"] == 3 and not first["active"]  # 01-03 were one alert
    assert second["active"]  # still open at the end of the log
    assert first["met"] == ["p95_ms=20>15"] and first["signals"] == {"p95_ms": 20}


def test_short_dips_do_not_clear_and_small_or_unknown_windows_do_not_count():
    p95 = [20, 10, 20, 10, 10, None, 10]
    ws = windows(p95)
    ws[4]["n"] = 5  # too small to judge: neither clean nor firing
    events = judge(ws, [LATENCY], AlertSettings(clear_after=3, min_window_n=100), TH)
    # 01 clean, 02 fires again (same alert), 03 clean, 04 not judged, 05 unknown (not clean),
    # 06 clean: only two clean windows since 02, so the alert never clears.
    assert [e["event"] for e in events] == ["fire"]
    assert events[0]["windows"] == 2 and events[0]["active"]


def test_drift_alone_does_not_trigger_retraining():
    rule = Rule(
        name="retrain_trigger",
        window="daily",
        all=["kl_div > $kl_retrain", "chi2_p < $chi2_alpha"],
        any=["sampled_acc < $sampled_acc"],
        reason="drift + live accuracy degradation",
    )
    drift = {"kind": "daily", "end": "x", "n": 50_000, "kl_div": 0.04, "chi2_p": 1e-9}
    days = [
        {**drift, "start": "2026-12-07", "sampled_acc": None},  # drift, no labels: quiet
        {**drift, "start": "2026-12-08", "sampled_acc": 0.95},  # drift, accuracy fine: quiet
        {**drift, "start": "2026-12-09", "sampled_acc": 0.86},  # drift and degradation: fire
    ]
    (event,) = judge(days, [rule], AlertSettings(), TH)
    assert event["start"] == "2026-12-09"
    assert event["met"] == ["kl_div=0.04>0.028", "chi2_p=1e-09<0.01", "sampled_acc=0.86<0.9"]
    assert event["signals"] == {"kl_div": 0.04, "chi2_p": 1e-9, "sampled_acc": 0.86}


def test_conditions_parse_numbers_and_thresholds_and_refuse_typos():
    assert parse_condition("p99_ms >= 20", {}).holds({"p99_ms": 20.0}) is True
    with pytest.raises(UserError, match="unknown signal 'kl_dvi'"):
        parse_condition("kl_dvi > 0.02", TH)
    with pytest.raises(UserError, match="no threshold 'kl_retrian'"):
        parse_condition("kl_div > $kl_retrian", TH)
    with pytest.raises(UserError, match="SIGNAL OP VALUE"):
        parse_condition("kl_div is big", TH)


def test_settings_name_the_file_and_key(tmp_path):
    s = load_settings()
    assert s.thresholds["p95_ms"] == 15.0 and s.thresholds["kl_retrain"] == 0.028
    assert {r.name for r in s.alerts.rules} >= {"latency_slo", "drift", "retrain_trigger"}
    bad = tmp_path / "bad.yaml"
    bad.write_text("alerts:\n  rules:\n    - {name: x, window: hourly, all: ['kl_dvi > 0.02']}\n")
    with pytest.raises(UserError, match=r"bad.yaml: alerts.rules\[0\] \(x\).*kl_dvi"):
        load_settings(bad)
    bad.write_text("windows: {hourly: 1 hour, odd: 90 minutes}\n")
    with pytest.raises(UserError, match="not a whole multiple"):
        load_settings(bad)
    bad.write_text("treshold: {}\n")
    with pytest.raises(UserError, match="bad monitor setting"):
        load_settings(bad)
