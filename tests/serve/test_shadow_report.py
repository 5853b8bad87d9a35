"""``mangaassist shadow-report`` on crafted prediction logs, every figure checked by hand."""

from __future__ import annotations

import argparse
import doctest
import json
import re
import subprocess
import sys
from pathlib import Path

import pytest

import mangaassist.serve.shadow_report as sr
from mangaassist.data.schema import INTENTS
from mangaassist.errors import UserError
from mangaassist.serve.predlog import read_prediction_logs
from mangaassist.serve.shadow_html import write_shadow_html
from mangaassist.serve.shadow_report import (
    DEFAULT_CONFIG,
    ShadowSettings,
    format_line,
    load_shadow_settings,
    read_labels,
    shadow_report,
)

SCRIPT = "<script>alert('x')</script> where is my order"


def line(rid, intent, conf, *, role="champion", version=None, item=0, text=None, lat=5.0, **kw):
    rec = {
        "ts": "2026-12-01T18:49:46+00:00",
        "request_id": rid,
        "item": item,
        "model_version": version or ("v3" if role == "champion" else "v4"),
        "latency_ms": lat,
        "intent": intent,
        "confidence": conf,
        "top_k": [[intent, conf]],
        "fallback": False,
        "fallback_reason": None,
        "status": 200,
        "role": role,
        "text": text if text is not None else f"message {rid}",
        **kw,
    }
    if role == "champion":
        rec |= {"queue_ms": 0.5, "batch": 1, "route": "x", "tokens": 7}
    return rec


def crafted() -> list[dict]:
    """20 champion (v3) lines, 18 with a v4 shadow line, plus one orphan shadow line.

    escalation e0-e9: candidate agrees on 9; e9 -> faq.
    faq f0-f4: candidate agrees on 4; f4 -> escalation (with the <script> text).
    order_tracking o0-o2: all agree.  chitchat c0, c1: no shadow line (unpaired).
    """
    recs = []
    for i in range(10):
        recs.append(line(f"e{i}", "escalation", 0.9, lat=10.0 + i))
        recs.append(line(f"e{i}", "faq" if i == 9 else "escalation", 0.6, role="shadow", lat=20.0))
    for i in range(5):
        text = SCRIPT if i == 4 else None
        recs.append(line(f"f{i}", "faq", 0.8 if i < 4 else 0.95, text=text))
        cand = "escalation" if i == 4 else "faq"
        recs.append(line(f"f{i}", cand, 0.85, role="shadow", text=text, fallback=i == 0))
    for i in range(3):
        recs += [
            line(f"o{i}", "order_tracking", 0.7),
            line(f"o{i}", "order_tracking", 0.7, role="shadow"),
        ]
    recs += [line("c0", "chitchat", 0.99), line("c1", "chitchat", 0.99)]
    recs.append(line("ghost", "faq", 0.5, role="shadow"))  # its champion line is not in the log
    return recs


def write_log(tmp_path: Path, recs: list[dict], name="predictions-20261201.jsonl") -> Path:
    path = tmp_path / "logs" / name
    path.parent.mkdir(exist_ok=True)
    path.write_text("".join(json.dumps(r, ensure_ascii=False) + "\n" for r in recs), "utf-8")
    return path


def logged(tmp_path: Path, recs: list[dict] | None = None) -> list[dict]:
    got = read_prediction_logs(write_log(tmp_path, recs if recs is not None else crafted()))
    assert got.torn_lines == got.bad_lines == 0
    return got.records


def test_agreement_matrix_and_counts(tmp_path):
    r = shadow_report(logged(tmp_path))
    assert (r["champion_version"], r["candidate_version"]) == ("v3", "v4")
    assert r["n_paired"] == 18 and r["n_unpaired_champion"] == 2 and r["n_orphan_shadow"] == 1
    assert r["agreement_with_champion"] == pytest.approx(16 / 18)
    assert r["disagreement_rate"] == pytest.approx(2 / 18)
    assert r["meets_min_agreement"] is False  # 88.9% < 95%
    assert r["per_intent"]["escalation"] == {"n": 10, "agreement": pytest.approx(0.9)}
    assert r["per_intent"]["faq"] == {"n": 5, "agreement": pytest.approx(0.8)}
    assert r["per_intent"]["order_tracking"] == {"n": 3, "agreement": 1.0}
    assert r["per_intent"]["chitchat"] == {"n": 0, "agreement": None}  # unpaired: not counted
    names, m = r["matrix"]["labels"], r["matrix"]["counts"]
    assert names == list(INTENTS)
    at = {(names[i], names[j]): c for i, row in enumerate(m) for j, c in enumerate(row) if c}
    assert at == {
        ("escalation", "escalation"): 9,
        ("escalation", "faq"): 1,
        ("faq", "faq"): 4,
        ("faq", "escalation"): 1,
        ("order_tracking", "order_tracking"): 3,
    }
    # Disagreements: the champion's most confident first (f4 at 0.95, then e9 at 0.9).
    d = r["disagreements"]
    assert [(x["request_id"], x["champion_intent"], x["candidate_intent"]) for x in d] == [
        ("f4", "faq", "escalation"),
        ("e9", "escalation", "faq"),
    ]
    assert d[0]["text"] == SCRIPT and d[0]["champion_confidence"] == 0.95
    assert d[0]["candidate_confidence"] == 0.85 and d[0]["critical"] is True
    # Confidence deltas, candidate - champion: e -0.3 (x10), f0-3 +0.05, f4 -0.1, o 0 (x3).
    deltas = [-0.3] * 10 + [0.05] * 4 + [-0.1] + [0.0] * 3
    assert r["confidence_delta"]["all"]["mean"] == pytest.approx(sum(deltas) / 18)
    assert r["confidence_delta"]["all"]["median"] == pytest.approx(-0.3)
    agreeing = [-0.3] * 9 + [0.05] * 4 + [0.0] * 3
    assert r["confidence_delta"]["agreeing"]["mean"] == pytest.approx(sum(agreeing) / 16)
    assert r["fallback_rate"] == {"champion": 0.0, "candidate": pytest.approx(1 / 18)}
    lat = r["latency_ms"]
    champ = sorted([10.0 + i for i in range(10)] + [5.0] * 8)
    assert lat["champion"]["p50"] == pytest.approx((champ[8] + champ[9]) / 2)
    assert lat["candidate"]["p99"] == pytest.approx(20.0)
    assert lat["delta"]["p50"] == pytest.approx(lat["candidate"]["p50"] - lat["champion"]["p50"])
    json.dumps(r, allow_nan=False)  # the --json output is plain JSON


def test_format_line_exact(tmp_path):
    got = format_line(shadow_report(logged(tmp_path)))
    assert got.startswith(
        "[SHADOW] agreement_with_champion=88.9% disagreement_rate=11.1% "
        "critical_intent_regression=true "
    )
    assert got.endswith("champion=v3 candidate=v4 paired=18 unpaired_champion=2")
    # The printed shares always add up to 100.0, whatever the rounding.
    for a in (0.9615, 0.96149, 0.5, 1.0, 0.0):
        r = {"agreement_with_champion": a, "critical_intent_regression": False}
        r |= {"champion_version": "a", "candidate_version": "b", "n_paired": 1}
        m = re.match(
            r"\[SHADOW\] agreement_with_champion=([\d.]+)% disagreement_rate=([\d.]+)% "
            r"critical_intent_regression=false ",
            format_line(r | {"n_unpaired_champion": 0}),
        )
        assert m and float(m[1]) + float(m[2]) == pytest.approx(100.0)


@pytest.mark.parametrize(
    ("settings", "regression"),
    [
        (ShadowSettings(), True),  # 1 flip of 10 escalations: tolerated max(0, floor(0.2)) = 0
        (ShadowSettings(max_flips_away=1), False),  # tolerated 1: exactly at the limit
        (ShadowSettings(max_flip_share=0.1), False),  # floor(0.1 x 10) = 1
        (ShadowSettings(max_flip_share=0.099), True),  # floor(0.99) = 0
        (ShadowSettings(critical_intents=["order_tracking", "checkout_help"]), False),
    ],
)
def test_critical_regression_around_tolerance(tmp_path, settings, regression):
    r = shadow_report(logged(tmp_path), settings=settings)
    assert r["critical_intent_regression"] is regression
    if "escalation" in settings.critical_intents:
        esc = r["critical"]["escalation"]
        assert (esc["champion_n"], esc["flips_away"], esc["flips_into"]) == (10, 1, 1)
        assert esc["flip_share"] == pytest.approx(0.1) and esc["regression"] is regression
    assert r["critical"]["order_tracking"]["flips_away"] == 0


def test_labelled_paired_test(tmp_path):
    labels_file = tmp_path / "sample.jsonl"
    rows = [
        {"request_id": "e0", "label": "escalation"},  # both right
        {"request_id": "e1", "item": 0, "label": "escalation"},  # both right
        {"request_id": "e9", "label": "escalation"},  # champion right, candidate (faq) wrong: b
        {"request_id": "f4", "label": "faq"},  # champion right, candidate (escalation) wrong: b
        {"request_id": "o0", "label": "order_tracking"},  # both right
        {"request_id": "c0", "label": "chitchat"},  # champion line has no shadow: not joined
        {"request_id": "e0", "item": 1, "label": "faq"},  # no such message
    ]
    labels_file.write_text("".join(json.dumps(x) + "\n" for x in rows), "utf-8")
    labels = read_labels(labels_file)
    assert labels[("e0", 0)] == "escalation" and len(labels) == 7
    lab = shadow_report(logged(tmp_path), labels)["labelled"]
    assert (lab["n"], lab["n_labels"], lab["n_labels_unmatched"]) == (5, 7, 2)
    assert lab["champion"]["acc"] == 1.0 and lab["candidate"]["acc"] == pytest.approx(0.6)
    assert lab["candidate"]["lo"] < 0.6 < lab["candidate"]["hi"] < 1.0
    assert lab["champion"]["lo"] < 1.0 == lab["champion"]["hi"]
    t = lab["mcnemar"]
    assert (t["b"], t["c"], t["method"]) == (2, 0, "exact")
    assert t["p_value"] == pytest.approx(0.5)  # two-sided binomial, 2 of 2 at p = 1/2
    assert lab["verdict"] == "no significant difference"


@pytest.mark.parametrize(
    ("row", "needle"),
    [
        ('{"request_id": "e0", "label": "refund"}', "unknown label 'refund'"),
        ('{"request_id": "e0", "item": "0", "label": "faq"}', "integer item"),
        ("not json", "not JSON"),
    ],
)
def test_bad_labels_name_file_and_line(tmp_path, row, needle):
    path = tmp_path / "sample.jsonl"
    path.write_text('{"request_id": "e1", "label": "faq"}\n' + row + "\n", "utf-8")
    with pytest.raises(UserError, match=rf"sample\.jsonl:2: .*{re.escape(needle)}"):
        read_labels(path)


def test_hashed_log_and_html_escapes_text(tmp_path):
    recs = crafted()
    for rec in recs:
        if rec["request_id"] == "e9":
            rec["text_sha256"] = "ab" * 32
        if rec["request_id"] != "f4":
            del rec["text"]
    r = shadow_report(logged(tmp_path, recs))
    e9 = next(x for x in r["disagreements"] if x["request_id"] == "e9")
    assert e9["text"] is None and e9["text_sha256"] == "ab" * 32
    out = write_shadow_html(r, tmp_path / "out" / "report.html")
    page = out.read_text("utf-8")
    assert "&lt;script&gt;alert(&#x27;x&#x27;)&lt;/script&gt; where is my order" in page
    assert "<script" not in page and "ab" * 32 in page
    assert "agreement_with_champion=88.9%" in page and "max_flip_share" in page
    assert "http" not in page.replace('lang="en"', "")  # self-contained: no external assets
    assert [p.name for p in out.parent.iterdir()] == ["report.html"]  # no temp file left
    # A log with no text at all (privacy "none") still reports.
    for rec in recs:
        rec.pop("text", None)
        rec.pop("text_sha256", None)
    assert shadow_report(logged(tmp_path, recs))["n_paired"] == 18


def run_cli(argv: list[str]) -> int:
    parser = argparse.ArgumentParser(prog="mangaassist")
    sr.add_parser(parser.add_subparsers(dest="command", required=True))
    args = parser.parse_args(argv)
    return args.func(args)


def test_cli_prints_line_and_writes_files(tmp_path, capsys):
    log = write_log(tmp_path, crafted())
    labels = tmp_path / "sample.jsonl"
    labels.write_text('{"request_id": "e9", "label": "escalation"}\n', "utf-8")
    html, js = tmp_path / "r.html", tmp_path / "r.json"
    argv = ["shadow-report", str(log.parent), "--labels", str(labels)]
    assert run_cli([*argv, "--out", str(html), "--json", str(js)]) == 0
    out = capsys.readouterr().out.splitlines()
    assert re.fullmatch(
        r"\[SHADOW\] agreement_with_champion=88\.9% disagreement_rate=11\.1% "
        r"critical_intent_regression=true( \S+=\S+)*",
        out[0],
    )
    assert out[1] == f"[SHADOW] report={html} json={js}"
    assert html.is_file() and json.loads(js.read_text())["labelled"]["mcnemar"]["b"] == 1
    labels.write_text('{"request_id": "nope", "label": "faq"}\n', "utf-8")
    with pytest.raises(UserError, match=r"sample\.jsonl: none of its 1 labels matches"):
        run_cli([*argv, "--out", str(html)])


def test_no_shadow_lines_says_how_to_turn_it_on(tmp_path):
    log = write_log(tmp_path, [r for r in crafted() if r["role"] == "champion"])
    with pytest.raises(UserError, match=r"mangaassist serve --registry registry/ --shadow VERSION"):
        run_cli(["shadow-report", str(log), "--out", str(tmp_path / "r.html")])
    assert not (tmp_path / "r.html").exists()
    only_shadow = [r for r in crafted() if r["role"] == "shadow"]
    with pytest.raises(UserError, match="none of the log's 19 shadow lines has a champion line"):
        shadow_report(only_shadow)


def test_several_pairs_need_a_choice(tmp_path):
    v2 = [line("n0", "faq", 0.9, version="v2"), line("n0", "faq", 0.9, role="shadow")]
    recs = [*crafted(), *v2]
    records = logged(tmp_path, recs)
    with pytest.raises(UserError, match=r"v3->v4 \(18 paired\), v2->v4 \(1 paired\).*--champion"):
        shadow_report(records)
    r = shadow_report(records, champion="v2")
    assert (r["n_paired"], r["n_unpaired_champion"], r["other_pairs"]) == (1, 0, [["v3", "v4"]])
    assert shadow_report(records, champion="v3", candidate="v4")["n_paired"] == 18
    with pytest.raises(UserError, match="pairs: v3->v4"):
        shadow_report(records, candidate="v9")


def test_settings_file(tmp_path):
    assert load_shadow_settings() == ShadowSettings()  # conf/shadow/default.yaml = the defaults
    assert DEFAULT_CONFIG.is_file()
    cfg = tmp_path / "s.yaml"
    cases = {
        "max_flip_away: 1\n": "max_flip_away",  # a typo'd key
        "max_flips_away: many\n": "max_flips_away",
        "critical_intents: [escalation, refunds]\n": "critical_intents",
        "max_flip_share: 1.5\n": "max_flip_share",
        "- a list\n": "mapping",
    }
    for text, key in cases.items():
        cfg.write_text(text, "utf-8")
        with pytest.raises(UserError, match=key):
            load_shadow_settings(cfg)
    cfg.write_text("max_flips_away: 3\ncritical_intents: [escalation]\n", "utf-8")
    s = load_shadow_settings(cfg)
    assert (s.max_flips_away, s.critical_intents, s.max_flip_share) == (3, ["escalation"], 0.02)
    with pytest.raises(UserError, match="no shadow settings file"):
        load_shadow_settings(tmp_path / "missing.yaml")


def test_doctest():
    result = doctest.testmod(sr)
    assert result.attempted > 0 and result.failed == 0


def test_module_imports_no_torch():
    code = (
        "import sys, mangaassist.serve.shadow_report, mangaassist.serve.shadow_html; "
        "bad = [m for m in ('torch', 'transformers', 'lightning', 'hydra') if m in sys.modules]; "
        "sys.exit(f'imported {bad}' if bad else 0)"
    )
    done = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=False)
    assert done.returncode == 0, done.stderr
