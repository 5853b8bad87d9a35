"""Alert rules: conditions, the runbook's combination (drift alone is not enough), hysteresis."""

import pytest

from mangaassist.errors import UserError
from mangaassist.monitor.alerts import judge, parse_condition, roi_estimate
from mangaassist.monitor.lines import alert_line
from mangaassist.monitor.settings import (
    AlertSettings,
    RetrainCosts,
    Rule,
    load_costs,
    load_settings,
)

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


# -- the retrain ROI estimate on the alert ------------------------------------------------------


def test_roi_estimate_hand_computed():
    costs = RetrainCosts(
        labels_needed=400,
        price_per_label=0.25,
        instance_price_per_hour=2.4,
        misrouted_message_cost=0.10,
    )
    # A 6-hour window of 3,000 messages is 12,000 a day; sampled accuracy 87.5 against 92.0.
    window = {"n": 3000, "sampled_acc": 0.875, "est_acc": 0.95}
    r = roi_estimate(
        window,
        costs,
        window_seconds=6 * 3600,
        baseline_acc=0.92,
        baseline="test_acc",
        training_minutes=45.0,
        minutes_source="config",
    )
    assert r["label_cost"] == 100.0  # 400 x 0.25
    assert r["training_cost"] == 1.8  # 45 min x 2.40 / 60
    assert r["cost"] == 101.8
    assert r["live"] == "sampled_acc" and r["points_lost"] == 4.5  # 92.0 - 87.5
    assert r["daily_volume"] == 12000.0
    assert r["misrouted_per_day"] == 540.0  # 4.5% of 12,000
    assert r["loss_per_day"] == 54.0  # 540 x 0.10
    assert r["payback_days"] == 1.89  # 101.8 / 54.0 = 1.885...
    event = {
        "event": "fire",
        "rule": "retrain_trigger",
        "reason": "drift + live accuracy degradation",
        "severity": "page",
        "window": "daily",
        "start": "2026-03-03T00:00:00+00:00",
        "model": "v1",
        "met": ["kl_div=0.04>0.028"],
        "triggers": "mangaassist retrain --labels LABELLED.jsonl",
        "roi": r,
    }
    assert alert_line(event).endswith(
        'action="mangaassist retrain --labels LABELLED.jsonl" roi="cost=$101.80 (400 labels x '
        "$0.25 + 45.0 train min x $2.40/h) vs 4.5 points lost (test_acc 92.0 -> sampled_acc "
        '87.5) = 540 misrouted/day of 12,000 = $54.00/day; payback 1.9 days"'
    )


def test_roi_falls_back_to_the_label_free_estimate_and_says_what_is_unknown():
    costs = RetrainCosts(misrouted_message_cost=None)
    r = roi_estimate(
        {"n": 1000, "sampled_acc": None, "est_acc": 0.80},
        costs,
        window_seconds=86_400,
        baseline_acc=0.90,
        baseline="target",
        training_minutes=30.0,
        minutes_source="unmeasured",
    )
    assert r["live"] == "est_acc" and r["points_lost"] == 10.0 and r["misrouted_per_day"] == 100.0
    assert r["loss_per_day"] is None and r["payback_days"] is None  # no price on a misroute
    assert r["cost"] == 51.5  # 500 x 0.10 + 30 x 3.00 / 60
    better = roi_estimate(
        {"n": 1000, "sampled_acc": 0.95},
        RetrainCosts(),
        window_seconds=86_400,
        baseline_acc=0.90,
        baseline="target",
        training_minutes=30.0,
        minutes_source="x",
    )
    assert better["points_lost"] == 0.0 and better["payback_days"] is None  # nothing lost
    none = roi_estimate(
        {"n": 1000},
        RetrainCosts(),
        window_seconds=86_400,
        baseline_acc=0.9,
        baseline="target",
        training_minutes=30.0,
        minutes_source="x",
    )
    assert none["points_lost"] is None and none["misrouted_per_day"] is None


def test_costs_and_roi_rules_are_checked(tmp_path):
    c = load_costs()
    assert (c.labels_needed, c.price_per_label, c.training_minutes) == (500, 0.10, None)
    f = tmp_path / "retrain.yaml"
    f.write_text("cost: {price_per_label: 0.5}\nout_root: elsewhere\n")
    assert load_costs(f).price_per_label == 0.5 and load_costs(f).labels_needed == 500
    f.write_text("cost: {price_per_lable: 0.5}\n")
    with pytest.raises(UserError, match="bad cost setting"):
        load_costs(f)
    f.write_text("cost: {instance_price_per_hour: -1}\n")
    with pytest.raises(UserError, match=r"cost.instance_price_per_hour=-1.0 must be >= 0"):
        load_costs(f)
    bad = tmp_path / "monitor.yaml"
    bad.write_text("roi: {rules: [retrain_triger]}\n")
    with pytest.raises(UserError, match=r"roi.rules names no rule \['retrain_triger'\]"):
        load_settings(bad)


def test_roi_context_reads_the_reference_runs_test_accuracy_and_training_time(tmp_path):
    from mangaassist.monitor.monitor import roi_context
    from mangaassist.monitor.reference import Reference

    run = tmp_path / "run"
    (run / "eval" / "test").mkdir(parents=True)
    (run / "eval" / "test" / "metrics.json").write_text('{"acc": 0.931}')
    (run / "metrics.json").write_text('{"train_minutes": 41.5}')
    ref = Reference(str(run), "run", ["a"], {"a": 1}, [])
    th = {"sampled_acc": 0.9}
    ctx = roi_context(ref, th, RetrainCosts())
    assert ctx == {
        "baseline_acc": 0.931,
        "baseline": "test_acc",
        "training_minutes": 41.5,
        "minutes_source": "measured (run/metrics.json)",
    }
    assert roi_context(ref, th, RetrainCosts(training_minutes=12))["training_minutes"] == 12.0
    bundle = Reference(str(tmp_path / "reference.json"), "bundle", ["a"], {"a": 1}, [])
    ctx = roi_context(bundle, th, RetrainCosts())
    assert (ctx["baseline_acc"], ctx["baseline"], ctx["training_minutes"]) == (0.9, "target", 30.0)
