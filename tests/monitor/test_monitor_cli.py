"""`mangaassist monitor` end to end on a tiny crafted log, reference, labels and registry."""

import json
import re
import subprocess
import sys
from pathlib import Path

import pytest

from mangaassist.cli import main
from mangaassist.errors import UserError
from mangaassist.monitor.cli import _print_run
from mangaassist.monitor.monitor import run_monitor

ROOT = Path(__file__).resolve().parents[2]
LABELS = ["faq", "order_tracking", "escalation"]
TEXTS = {
    "faq": "do you ship to canada",
    "order_tracking": "where is my order",
    "escalation": "get me a human now",
}


def make_reference(folder: Path) -> Path:
    """A run-directory-like reference: labels, class counts (escalation rare), a val split."""
    (folder / "data").mkdir(parents=True)
    (folder / "labels.json").write_text(json.dumps(LABELS))
    (folder / "class_counts.json").write_text(
        json.dumps({"faq": 600, "order_tracking": 370, "escalation": 30})
    )
    with (folder / "data" / "val.jsonl").open("w") as f:
        for i in range(60):
            label = LABELS[i % 3]
            f.write(json.dumps({"text": TEXTS[label] + f" {i % 4}", "label": label}) + "\n")
    return folder


def make_logs(folder: Path, privacy: str = "text") -> tuple[Path, Path]:
    """Hours 10-12 of 2026-12-07, 150 messages each, a drifted mix (escalation 3% -> 30%),
    hour 11 over the latency SLO, v15 answering 11:30-12:15, one worker folder, a torn line;
    and a labelled sample of 200 messages at 60% accuracy."""
    champion, sample = [], []
    for i in range(450):
        hour, minute = 10 + i // 150, (i % 150) * 60 // 150
        label = LABELS[[0, 1, 1, 2, 2, 0, 1, 2, 0, 1][i % 10]]  # 30% faq, 40% order, 30% esc
        version = "v15" if (hour, minute) >= (11, 30) and (hour, minute) < (12, 15) else "v14"
        text = TEXTS[label] + (" この漫画 frieren!!" if i % 5 == 0 else "")
        r = {
            "ts": f"2026-12-07T{hour}:{minute:02d}:{i % 60:02d}+00:00",
            "request_id": f"r{i}",
            "item": 0,
            "model_version": version,
            "latency_ms": 20.0 if hour == 11 else 6.0,
            "intent": label,
            "confidence": 0.8,
            "fallback": False,
            "fallback_reason": None,
            "tokens": 7,
            "status": 200,
            "role": "champion",
        }
        r.update({"text": text} if privacy == "text" else {"text_sha256": f"{i:064x}"})
        champion.append(r)
        if i % 9 < 4:  # 200 labels, 60% of them right
            truth = label if len(sample) % 5 < 3 else LABELS[(LABELS.index(label) + 1) % 3]
            sample.append({"request_id": f"r{i}", "item": 0, "label": truth})
    logs = folder / "logs"
    (logs / "worker-7").mkdir(parents=True)
    lines = [json.dumps(r, ensure_ascii=False) + "\n" for r in champion]
    (logs / "predictions-20261207.jsonl").write_text("".join(lines[:400]) + '{"ts": "2026-12-07T1')
    (logs / "worker-7" / "predictions-20261207.jsonl").write_text("".join(lines[400:]))
    labels = folder / "labels.jsonl"
    labels.write_text("".join(json.dumps(x) + "\n" for x in sample))
    return logs, labels


@pytest.fixture(scope="module")
def world(tmp_path_factory):
    """One real CLI run in a child process, which also reports the libraries it imported."""
    tmp = tmp_path_factory.mktemp("monitor")
    ref = make_reference(tmp / "run")
    logs, labels = make_logs(tmp)
    registry = tmp / "registry"
    registry.mkdir()
    events = [
        {"time": "2026-12-07T10:00:00+00:00", "event": "register", "version": "v15"},
        {"time": "2026-12-07T11:30:00+00:00", "event": "promote", "version": "v15", "from": "v14"},
        {"time": "2026-12-07T12:15:00+00:00", "event": "rollback", "version": "v14", "from": "v15"},
    ]
    (registry / "history.jsonl").write_text("".join(json.dumps(e) + "\n" for e in events))
    argv = [
        "monitor",
        str(logs),
        "--reference",
        str(ref),
        "--labels",
        str(labels),
        "--registry",
        str(registry),
        "--out",
        str(tmp / "out"),
    ]
    code = (
        "import sys; from mangaassist.cli import main; rc = main(sys.argv[1:]); "
        "heavy = [m for m in ('torch', 'transformers', 'lightning', 'hydra') if m in sys.modules]; "
        "print('HEAVY', heavy); sys.exit(rc)"
    )
    res = subprocess.run(
        [sys.executable, "-c", code, *argv], cwd=ROOT, capture_output=True, text=True, timeout=120
    )
    assert res.returncode == 0, res.stderr[-3000:]
    return {
        "tmp": tmp,
        "ref": ref,
        "logs": logs,
        "out": tmp / "out",
        "stdout": res.stdout,
        "stderr": res.stderr,
        "registry": registry,
    }


def test_prints_the_runbook_lines_and_imports_no_heavy_library(world):
    out = world["stdout"]
    assert "HEAVY []" in out
    assert (
        "[MONITOR_LOGS] files=2 champion_lines=450 shadow_lines=0 skipped_lines=1 torn_lines=1"
        in out
    )
    hourly = [x for x in out.splitlines() if x.startswith("[MONITOR_HOURLY]")]
    assert len(hourly) == 3
    assert hourly[1].startswith(
        "[MONITOR_HOURLY] model=v14 start=2026-12-07T11:00Z n=150 p50_ms=20.0 p95_ms=20.0"
    )
    assert re.search(r"err_rate=n/a low_conf_rate=0\.0% kl_div=0\.\d{4}$", hourly[0])
    assert re.search(r"\[MONITOR_DAILY\] model=v14 .* sampled_acc=60\.0 rare_recall=\d", out)
    assert "[MONITOR_WEEKLY] model=v14 start=2026-12-07T00:00Z n=450" in out
    assert 'err_rate="unavailable: the prediction log holds answered messages only' in out
    # Fired once each, whatever the number of windows in the condition (hysteresis).
    assert out.count("[ALERT] latency_slo=true") == 1
    assert out.count('[ALERT] retrain_trigger=true reason="drift + live accuracy degradation"') == 1
    behind = r'signals="kl_div=[\d.]+>0.028 chi2_p=[\de.-]+<0.01 sampled_acc=0.6<0.9'
    assert re.search(r"retrain_trigger=true .*" + behind, out)
    assert 'action="mangaassist retrain --labels LABELLED.jsonl"' in out
    # The retrain request carries its ROI. The crafted reference has no test figures and no
    # measured training time: baseline = the sampled_acc target (90.0), minutes = the
    # unmeasured default (30). Cost 500 x $0.10 + 30 min x $3.00/h = $51.50; 90.0 - 60.0 = 30
    # points of the day's 450 messages = 135 misrouted, x $0.05 = $6.75/day; 51.50 / 6.75 = 7.6.
    assert (
        'roi="cost=$51.50 (500 labels x $0.10 + 30.0 train min x $3.00/h) vs 30.0 points lost '
        "(target 90.0 -> sampled_acc 60.0) = 135 misrouted/day of 450 = $6.75/day; payback "
        '7.6 days"' in out
    )
    assert out.count('roi="') == 1  # only the retrain request is priced
    assert (
        "predictions-20261207.jsonl: skipped 1 of 401 lines (its last line is torn"
        in world["stderr"]
    )
    assert out.rstrip().splitlines()[-2].startswith("[MONITOR] report=")


def test_monitor_json_holds_every_window_alert_and_switch(world):
    report = json.loads((world["out"] / "monitor.json").read_text())
    kinds = [w["kind"] for w in report["windows"]]
    assert (kinds.count("hourly"), kinds.count("daily"), kinds.count("weekly")) == (3, 1, 1)
    (day,) = [w for w in report["windows"] if w["kind"] == "daily"]
    assert day["models"] == {"v14": 337, "v15": 113} and day["sampled_n"] == 200
    assert day["intent_counts"] == {"faq": 135, "order_tracking": 180, "escalation": 135}
    assert day["kl_div"] > 0.028 and day["chi2_p"] < 0.01
    assert day["jp_share"] == pytest.approx(0.2) and day["new_vocab_share"] > 0
    fired = {e["rule"] for e in report["alerts"] if e["event"] == "fire"}
    (retrain,) = [e for e in report["alerts"] if e["rule"] == "retrain_trigger"]
    roi = retrain["roi"]
    assert (roi["cost"], roi["points_lost"], roi["misrouted_per_day"]) == (51.5, 30.0, 135.0)
    assert (roi["baseline"], roi["live"], roi["payback_days"]) == ("target", "sampled_acc", 7.63)
    assert roi["training_minutes_source"] == "unmeasured (config default)"
    assert {"latency_slo", "drift", "accuracy_drop", "retrain_trigger"} <= fired
    assert [(s["event"], s["version"]) for s in report["switches"]] == [
        ("promote", "v15"),
        ("rollback", "v14"),
    ]
    assert report["reference"]["rare"] == ["escalation"] and report["reference"]["texts"] == 60
    assert (world["out"] / "monitor.json").stat().st_mode & 0o044  # readable, not mkstemp's 0600
    assert not list(world["out"].glob(".*.tmp"))  # atomic writes leave no temp files


def test_dashboard_is_self_contained_and_marks_the_switches(world):
    page = (world["out"] / "dashboard.html").read_text()
    assert page.startswith("<!doctype html>") and page.rstrip().endswith("</html>")
    assert not re.search(r"""(src|href)\s*=\s*["']?\s*(https?:)?//""", page, re.I)
    assert "<script" not in page and "url(" not in page
    assert page.count("src='data:image/png;base64,") == 10
    for title in (
        "Latency P50 / P95 / P99",
        "Volume",
        "Error rate",
        "Intent distribution",
        "KL divergence",
        "Sampled accuracy",
        "Rare-class recall",
        "Message drift",
    ):
        assert f"<h2>{title}" in page
    assert "<td>promote</td><td>v15</td><td>v14</td>" in page
    assert "<td>rollback</td><td>v14</td><td>v15</td>" in page
    assert "retrain_trigger" in page and "drift + live accuracy degradation" in page


def test_hashed_logs_say_text_signals_are_unavailable(tmp_path, capsys):
    logs, _ = make_logs(tmp_path, privacy="hash")
    report = run_monitor(logs, make_reference(tmp_path / "run"), warn=lambda m: None)
    assert report["unavailable"]["new_vocab_share"] == "unavailable (log_privacy=hash)"
    assert report["unavailable"]["sampled_acc"] == "unavailable (no --labels sample)"
    assert all(w["jp_share"] is None and w["new_vocab_share"] is None for w in report["windows"])
    assert all(w["len_mean"] == 7 for w in report["windows"])  # from `tokens`: still there
    _print_run(report)
    out = capsys.readouterr().out
    assert 'new_vocab_share,jp_share,jp_share_ratio="unavailable (log_privacy=hash)"' in out
    assert "new_vocab_share=n/a jp_share=n/a" in out


def test_reference_kinds_bundle_registry_and_file(world, tmp_path, capsys):
    bundle = tmp_path / "bundle"
    bundle.mkdir()
    (bundle / "manifest.json").write_text("{}")
    with pytest.raises(
        UserError, match=r"is a model bundle: it has no class counts.*run directory"
    ):
        run_monitor(world["logs"], bundle, warn=lambda m: None)
    assert (
        main(["monitor-reference", str(world["ref"]), "--out", str(bundle / "reference.json")]) == 0
    )
    assert "[MONITOR_REFERENCE] out=" in capsys.readouterr().out
    from_bundle = run_monitor(world["logs"], bundle, warn=lambda m: None)
    from_run = json.loads((world["out"] / "monitor.json").read_text())
    assert from_bundle["reference"]["kind"] == "bundle"
    assert from_bundle["reference"]["vocab_size"] == from_run["reference"]["vocab_size"]
    day = next(w for w in from_bundle["windows"] if w["kind"] == "daily")
    ref_day = next(w for w in from_run["windows"] if w["kind"] == "daily")
    assert (day["kl_div"], day["new_vocab_share"]) == (
        ref_day["kl_div"],
        ref_day["new_vocab_share"],
    )
    version = world["registry"] / "versions" / "v1"
    make_reference(version)
    (version / "version.json").write_text('{"version": "v1"}')
    got = run_monitor(world["logs"], "v1", registry=world["registry"], warn=lambda m: None)
    assert got["reference"]["kind"] == "registry"
    with pytest.raises(UserError, match="no version 'v9'"):
        run_monitor(world["logs"], "v9", registry=world["registry"], warn=lambda m: None)
    assert main(["monitor", str(world["logs"]), "--reference", str(tmp_path / "nope")]) == 2
    assert "error: --reference" in capsys.readouterr().err


def test_grafana_dashboard_uses_only_exported_metric_names():
    from mangaassist.serve.metrics import ServeMetrics

    suffixes = {
        "counter": ["_total"],
        "histogram": ["_bucket", "_sum", "_count"],
        "gauge": [""],
        "info": ["_info"],
    }
    exported = {
        fam.name + s for fam in ServeMetrics().registry.collect() for s in suffixes[fam.type]
    }
    board = (ROOT / "experiments" / "monitoring" / "grafana-dashboard.json").read_text()
    exprs = [t["expr"] for p in json.loads(board)["panels"] for t in p["targets"]]
    used = {m for e in exprs for m in re.findall(r"\bmangaassist_[a-z_]+", e)}
    assert used and used <= exported, used - exported
    assert {"mangaassist_low_confidence_total", "mangaassist_predictions_total"} <= used
