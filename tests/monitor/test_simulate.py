"""The traffic simulator: each scenario's effect, seeding, the labelled sample, --url replay."""

from __future__ import annotations

import json
import re
import subprocess
import sys
from collections import Counter
from datetime import datetime, timedelta
from pathlib import Path

import pytest

from mangaassist.cli import main
from mangaassist.data.generator.corpus import LABEL_MIX
from mangaassist.errors import UserError
from mangaassist.inference import Predictor, open_bundle
from mangaassist.monitor.scenarios import get_scenario, lexicon_words, load_scenarios
from mangaassist.monitor.simulate import day_messages, simulate
from mangaassist.serve.predlog import read_prediction_logs

RATE = 150  # messages per simulated hour: ~3,600 a day, enough for shares within ~1 point
ENTITY = re.compile(r"&(?:#\d+|[a-z]+);")


def day(name: str, d: int, rate: float = RATE, seed: int = 0):
    traffic, sc = get_scenario(name)
    return day_messages(traffic, sc, d, rate, seed, label_share=0.02)


def share(msgs, pred) -> float:
    return sum(map(pred, msgs)) / len(msgs)


def test_stationary_mix_matches_the_taxonomy_and_stays_put():
    a, b = day("stationary", 0), day("stationary", 5)
    for msgs in (a, b):
        assert not any(m.drift for m in msgs)
        mix = Counter(m.label for m in msgs)
        for intent, pct in LABEL_MIX.items():  # within ~3 binomial sd of the target
            assert abs(mix[intent] / len(msgs) - pct / 100) < 0.015, intent
    assert 0.8 < len(a) / len(b) < 1.2
    assert abs(share(a, lambda m: "jp" in m.tags) - 0.117) < 0.02
    hours = Counter(m.ts.hour for m in a)  # the daily rhythm: evening peak, night trough
    assert hours[20] > 3 * hours[4]


def test_sale_event_triples_promotion_and_checkout_for_one_day():
    def promo(msgs):
        return [m for m in msgs if m.label in ("promotion", "checkout_help")]

    before, sale, after = (day("sale_event", d) for d in (2, 3, 4))
    assert all(m.drift for m in sale) and not any(m.drift for m in before + after)
    assert 2.5 < len(promo(sale)) / len(promo(before)) < 3.5  # the volume triples
    # ... and the share goes 9.1% -> 23% (x2.5: the sale's extra traffic grows the total too)
    ratio = (len(promo(sale)) / len(sale)) / (len(promo(before)) / len(before))
    assert 2.2 < ratio < 3.0
    assert 0.8 < len(promo(after)) / len(promo(before)) < 1.25


def test_jp_surge_triples_the_japanese_english_share():
    before, after = day("jp_surge", 2), day("jp_surge", 3)
    jp_before, jp_after = (share(x, lambda m: "jp" in m.tags) for x in (before, after))
    assert 2.5 < jp_after / jp_before < 3.5
    # The text really changes: kana/kanji appear about three times as often.
    kana = re.compile(r"[\u3040-\u30ff\u4e00-\u9fff]")
    ratio = share(after, lambda m: bool(kana.search(m.text))) / share(
        before, lambda m: bool(kana.search(m.text))
    )
    assert ratio > 2.0


def test_new_hit_title_and_slang_appear_only_after_the_start_and_are_new():
    _, sc = get_scenario("new_hit_title")
    hit = sc.new_title
    words = re.compile("|".join(map(re.escape, ["quillborne", "qb requiem", *hit.slang])), re.I)
    before, after = day("new_hit_title", 2, 100), day("new_hit_title", 3, 100)
    assert not any(words.search(m.text) for m in before)
    assert share(after, lambda m: bool(words.search(m.text))) > 0.2
    assert share(after, lambda m: "slang" in m.tags) > 0.1
    known = lexicon_words()
    assert not {w.casefold() for w in ["quillborne", "requiem", *hit.slang]} & known


def test_a_new_title_the_lexicon_knows_is_refused(tmp_path):
    text = Path(load_scenarios.__globals__["SCENARIOS_FILE"]).read_text()
    bad = tmp_path / "s.yaml"
    bad.write_text(text.replace('"Quillborne Requiem"', '"Chainsaw Man"'))
    with pytest.raises(UserError, match=r"new_title.*'Chainsaw Man'.*chainsaw"):
        load_scenarios(bad)


def test_broken_preprocessing_sends_html_entities_and_caps_after_the_start():
    before, after = day("broken_preprocessing", 2, 100), day("broken_preprocessing", 3, 100)

    def caps(m):
        return m.text.isupper() and len(m.text) > 3

    assert not any(ENTITY.search(m.text) for m in before)
    assert share(after, lambda m: bool(ENTITY.search(m.text))) > 0.2
    assert any("&amp;#39;" in m.text or "&amp;lt;" in m.text for m in after)  # escaped twice
    assert share(before, caps) < 0.05 and share(after, caps) > 0.2


def test_label_shift_slow_raises_one_intent_week_by_week():
    shares = [share(day("label_shift_slow", d), lambda m: m.label == "escalation")
              for d in (6, 7, 14, 21)]  # fmt: skip
    assert abs(shares[0] - 0.03) < 0.01  # the week before the start: the taxonomy's 3%
    assert shares == sorted(shares) and shares[3] > 2 * shares[0]


def test_bad_scenario_config_names_the_file_and_key(tmp_path):
    bad = tmp_path / "s.yaml"
    bad.write_text("scenarios:\n  x:\n    start_dya: 3\n")
    with pytest.raises(UserError, match=r"s\.yaml.*start_dya.*scenario keys are"):
        load_scenarios(bad)
    bad.write_text("scenarios:\n  x:\n    intent_multipliers: {promo: 3}\n")
    with pytest.raises(UserError, match=r"scenarios\.x\.intent_multipliers.*'promo'"):
        load_scenarios(bad)
    with pytest.raises(UserError, match="use one of: stationary"):
        get_scenario("no_such")


def _files(out: Path) -> dict[str, bytes]:
    return {str(p.relative_to(out)): p.read_bytes() for p in sorted(out.rglob("*")) if p.is_file()}


def test_seeded_runs_write_the_same_files_and_a_readable_log(tiny_bundle, tmp_path):
    args = ["--bundle", str(tiny_bundle), "--scenario", "sale_event", "--days", "2"]
    args += ["--rate-per-hour", "30", "--label-share", "0.2", "--label-delay-hours", "6"]
    assert main(["simulate", *args, "--out", str(tmp_path / "a"), "--seed", "3"]) == 0
    simulate(tmp_path / "b", "sale_event", bundle=tiny_bundle, days=2, rate_per_hour=30,
             seed=3, label_share=0.2, label_delay_hours=6)  # fmt: skip
    simulate(tmp_path / "c", "sale_event", bundle=tiny_bundle, days=2, rate_per_hour=30, seed=4)
    a, b = _files(tmp_path / "a"), _files(tmp_path / "b")
    assert a == b and a != _files(tmp_path / "c")
    assert {"logs/predictions-20260302.jsonl", "logs/predictions-20260303.jsonl"} <= set(a)

    got = read_prediction_logs(tmp_path / "a" / "logs")
    assert got.torn_lines == got.bad_lines == 0
    truth = {r["request_id"]: r for r in map(json.loads, (tmp_path / "a/truth.jsonl").open())}
    assert len(got.records) == len(truth) > 1000
    want = ["ts", "request_id", "item", "model_version", "latency_ms", "queue_ms", "batch",
            "intent", "confidence", "top_k", "fallback", "fallback_reason", "route", "tokens",
            "text", "status", "role"]  # fmt: skip
    for path in got.files:  # each file holds its simulated day, in time order
        recs = [json.loads(line) for line in path.open()]
        assert all(list(r) == want and r["role"] == "champion" for r in recs)
        assert {r["ts"][:10].replace("-", "") for r in recs} == {path.stem.split("-")[1]}
        assert [r["ts"] for r in recs] == sorted(r["ts"] for r in recs)

    labels = [json.loads(line) for line in (tmp_path / "a/labels.jsonl").open()]
    assert 0.15 < len(labels) / len(truth) < 0.25
    for lab in labels:  # the generator's truth, six hours later
        assert lab["label"] == truth[lab["request_id"]]["label"]
        delay = datetime.fromisoformat(lab["ts_labelled"]) - datetime.fromisoformat(lab["ts"])
        assert delay == timedelta(hours=6)
    info = json.loads((tmp_path / "a/scenario.json").read_text())
    assert info["drift_start"] == "2026-03-05T00:00:00+00:00" and info["expected_signals"]
    assert info["counts"]["messages"] == len(truth)
    with pytest.raises(UserError, match="already holds prediction logs"):
        simulate(tmp_path / "a", "stationary", bundle=tiny_bundle, days=1)


def test_url_replay_is_bounded_and_gives_the_offline_answers(tiny_bundle, tmp_path):
    from tests.serve.test_app import running

    with running(tiny_bundle, tmp_path / "srv") as (url, _):
        info = simulate(tmp_path / "out", "jp_surge", url=url, days=1, rate_per_hour=200,
                        max_requests=25, max_seconds=30)  # fmt: skip
    assert info["mode"] == "url" and info["counts"]["messages"] == 25
    assert info["stopped_early_at"] is not None
    recs = read_prediction_logs(tmp_path / "out" / "logs").records
    assert len(recs) == 25 and recs[0]["request_id"].startswith("sim0-d000-")
    offline = Predictor.from_bundle(open_bundle(tiny_bundle)).classify([r["text"] for r in recs])
    assert [r["intent"] for r in recs] == [a["intent"] for a in offline]
    assert all(r["ts"].startswith("2026-03-02") for r in recs)  # simulated, not wall-clock time


def test_simulate_and_active_learn_import_no_torch(tiny_bundle, tmp_path):
    code = (
        "import sys\n"
        "from mangaassist.monitor.simulate import simulate\n"
        "from mangaassist.monitor.active_learning import active_learn\n"
        "import mangaassist.monitor.al_cli\n"
        f"simulate({str(tmp_path / 's')!r}, 'stationary', bundle={str(tiny_bundle)!r}, days=1,"
        " rate_per_hour=10)\n"
        f"active_learn([{str(tmp_path / 's' / 'logs')!r}], {str(tmp_path / 'x.jsonl')!r},"
        f" budget=5, bundle={str(tiny_bundle)!r})\n"
        "heavy = [m for m in ('torch', 'transformers', 'lightning', 'hydra') if m in sys.modules]\n"
        "assert not heavy, heavy\n"
    )
    done = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True)
    assert done.returncode == 0, done.stderr[-2000:]
