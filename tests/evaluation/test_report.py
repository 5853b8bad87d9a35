"""The evaluation core and the HTML report, driven by synthetic arrays (no model)."""

from __future__ import annotations

import base64
import json
import re

import numpy as np
import pytest

from mangaassist.data.schema import INTENTS
from mangaassist.evaluation.calibration import Calibration
from mangaassist.evaluation.evaluate import evaluate_arrays, headline, log_line, write_evaluation
from mangaassist.evaluation.settings import EvalSettings, RoutingCost

LABELS = list(INTENTS)


@pytest.fixture(scope="module")
def evaluation():
    rng = np.random.default_rng(0)
    n, c = 400, len(LABELS)
    y = rng.integers(0, c, n)
    z = rng.normal(size=(n, c))
    z[np.arange(n), y] += 2.0
    z[y == 0, 2] += 1.5  # product_discovery leaks into recommendation: acceptable
    z[y == 4, 0] += 2.5  # order_tracking leaks into product_discovery: severe
    texts = [f"<script>alert({i})</script> where is my order" for i in range(n)]
    tags = [["romaji"] if i % 5 == 0 else [] for i in range(n)]
    settings = EvalSettings(
        routing_cost=RoutingCost(pairs=(("product_discovery", "recommendation", 0.2),))
    )
    latency = {
        "n": 3,
        "p50_ms": 5.0,
        "p95_ms": 9.0,
        "p99_ms": 11.0,
        "mean_ms": 6.0,
        "max_ms": 11.0,
        "num_threads": 1,
        "warmup": 2,
        "samples_ms": [4.0, 5.0, 11.0],
    }
    cal = Calibration(temperature=1.3, thresholds={"faq": 0.8}, fitted_on="data/val.jsonl")
    return evaluate_arrays(
        z * 2,
        y,
        LABELS,
        texts=texts,
        tags=tags,
        rare=["escalation", "chitchat"],
        calibration=cal,
        settings=settings,
        latency=latency,
    )


def test_metrics_hold_every_section(evaluation):
    m = evaluation.metrics
    assert m["n"] == 400 and 0 < m["acc"] < 1
    assert m["ci"]["acc"]["lo"] <= m["acc"] <= m["ci"]["acc"]["hi"]
    assert len(m["per_class"]) == 10 and m["per_class"][3]["threshold"] == 0.8
    assert [r["tag"] for r in m["per_tag"]] == ["romaji"]
    assert m["calibration"]["temperature"] == 1.3
    assert m["calibration"]["ece_before"] != m["calibration"]["ece_after"]
    assert m["latency"]["within_budget"] is True and "samples_ms" not in m["latency"]
    pairs = {(p["true"], p["pred"]): p["severity"] for p in m["confused_pairs"]}
    assert pairs[("order_tracking", "product_discovery")] == "severe"
    assert pairs[("product_discovery", "recommendation")] == "acceptable"
    assert m["routing"]["severe_errors"] + m["routing"]["acceptable_errors"] == round(
        (1 - m["acc"]) * 400
    )
    fb = m["fallback"]
    assert fb["routed_rate"] + fb["fallback_rate"] + fb["clarify_rate"] == pytest.approx(1)
    fp = m["errors"]["product_discovery"]["false_positives"]
    assert fp and all(e["pred"] == "product_discovery" != e["true"] for e in fp)
    confs = [e["confidence"] for e in fp]
    assert confs == sorted(confs, reverse=True)
    json.dumps(m)  # JSON-ready


def test_headline_and_log_line(evaluation):
    flat = headline(evaluation.metrics, "test")
    assert {
        "test/acc",
        "test/macro_f1",
        "test/rare_recall",
        "test/ece_before",
        "test/ece_after",
        "latency/p95_ms",
    } <= set(flat)
    line = log_line(evaluation.metrics, "EVAL", "test")
    assert line.startswith("[EVAL] set=test n=400 acc=") and "p95_ms=9.00" in line


def test_report_is_self_contained_html(evaluation, tmp_path):
    path = write_evaluation(evaluation, tmp_path / "out", title="test set", context={"model": "m"})
    html = path.read_text()
    for section in (
        "Headline",
        "Per class",
        "Per tag",
        "Confusion",
        "Calibration",
        "Fallback routing",
        "Latency",
        "Worst errors per intent",
    ):
        assert f">{section}" in html, section
    images = re.findall(r'src="data:image/png;base64,([A-Za-z0-9+/=]+)"', html)
    assert len(images) == 6  # counts, normalised, reliability, confidence, risk-coverage, latency
    assert all(base64.b64decode(img).startswith(b"\x89PNG") for img in images)
    assert "http://" not in html and "https://" not in html  # nothing to fetch
    assert "<script>alert" not in html and "&lt;script&gt;" in html  # message text is escaped
    assert "severe" in html and "acceptable" in html
    m = json.loads((tmp_path / "out" / "metrics.json").read_text())
    assert m["context"] == {"model": "m"}
    rows = [
        json.loads(x) for x in (tmp_path / "out" / "predictions.jsonl").read_text().splitlines()
    ]
    assert len(rows) == 400 and {r["action"] for r in rows} <= {"route", "fallback", "clarify"}


def test_report_without_latency_tags_or_texts(tmp_path):
    rng = np.random.default_rng(1)
    y = rng.integers(0, 3, 60)
    ev = evaluate_arrays(rng.normal(size=(60, 3)), y, ["a", "b", "c"])
    html = write_evaluation(ev, tmp_path).read_text()
    assert ev.metrics["latency"] is None and ev.metrics["per_tag"] == []
    assert ">Latency" not in html and ">Per tag" not in html


def test_logits_must_match_labels():
    with pytest.raises(ValueError, match="do not match"):
        evaluate_arrays(np.zeros((4, 3)), np.zeros(4, int), ["a", "b"])


def _banners(html: str) -> list[str]:
    return re.findall(r'<div class="banner" role="alert">(.*?)</div>', html, re.S)


def _fallback_paragraph(html: str) -> str:
    return html.split(">Fallback routing</h2>")[1].split("</p>")[0]


def test_a_good_model_has_no_banner_and_states_its_routed_share(evaluation, tmp_path):
    html = write_evaluation(evaluation, tmp_path / "out").read_text()
    assert _banners(html) == []
    text = _fallback_paragraph(html)
    assert "Routed " in text and "Nothing was routed" not in text and "–%" not in text


def test_nothing_routed_says_so_and_why(tmp_path):
    """Near-uniform probabilities under a 0.6 threshold: every message goes to fallback."""
    rng = np.random.default_rng(2)
    y = rng.integers(0, 10, 100)
    ev = evaluate_arrays(0.01 * rng.normal(size=(100, 10)), y, LABELS)
    assert ev.metrics["fallback"]["routed_rate"] == 0
    text = _fallback_paragraph(write_evaluation(ev, tmp_path).read_text())
    assert "Nothing was routed: all 100 messages went to fallback" in text
    assert "below its intent&#39;s threshold" in text and "global threshold is 0.60" in text
    top = ev.probs_after.max()
    assert f"the highest is {top:.2f}" in text
    assert "accuracy –%" not in text and "Routed 0.0%" not in text


def test_chance_accuracy_gets_a_banner(tmp_path):
    rng = np.random.default_rng(3)
    y = rng.integers(0, 10, 200)
    ev = evaluate_arrays(rng.normal(size=(200, 10)), y, LABELS)  # logits ignore the truth
    banners = _banners(write_evaluation(ev, tmp_path).read_text())
    assert len(banners) == 1 and "Model at chance" in banners[0]
    assert "chance, 10.0% for 10 classes" in banners[0]
    # The banner comes first, before the headline figures.
    html = (tmp_path / "report.html").read_text()
    assert html.index('class="banner"') < html.index(">Headline")


def test_temperature_at_its_search_bound_gets_a_banner(evaluation, tmp_path):
    rng = np.random.default_rng(4)
    y = rng.integers(0, 10, 200)
    z = rng.normal(size=(200, 10))
    z[np.arange(200), y] += 3.0  # a good model: only the temperature is wrong
    settings = EvalSettings()
    lo, hi = settings.temperature_bounds
    ev = evaluate_arrays(z, y, LABELS, calibration=Calibration(temperature=hi), settings=settings)
    banners = _banners(write_evaluation(ev, tmp_path).read_text())
    assert len(banners) == 1 and "Temperature at its search bound" in banners[0]
    assert f"[{lo:g}, {hi:g}]" in banners[0]


def test_confidence_histogram_ticks_read_as_counts():
    """A log count axis spanning under a decade labels its ticks 1, 2, 5, not 6x10^0."""
    from mangaassist.evaluation.plots import confidence_figure

    rng = np.random.default_rng(5)
    conf = rng.uniform(0.3, 0.9, 40)
    fig = confidence_figure(conf, rng.random(40) < 0.5)
    fig.canvas.draw()
    ax = fig.axes[0]
    lo, hi = ax.get_ylim()
    shown = [
        t.get_text()
        for t in ax.yaxis.get_majorticklabels() + ax.yaxis.get_minorticklabels()
        if t.get_text() and lo <= t.get_position()[1] <= hi
    ]
    assert shown and all(re.fullmatch(r"[\d,]+(\.\d+)?", s) for s in shown), shown
    assert "1" in shown or "2" in shown
