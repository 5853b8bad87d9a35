"""Operational gates: P95 and error rate under load, and the shadow test, on crafted JSON.

No model is trained or loaded: the gates run on synthetic :class:`Scores`, the evidence files
are written here in the shapes ``mangaassist loadtest --out`` and ``mangaassist shadow-report
--json`` write, and the CLI test swaps the model scoring for :func:`decide` on those Scores.
"""

from __future__ import annotations

import dataclasses
import json
from pathlib import Path

import numpy as np
import pytest

from mangaassist.cli import main
from mangaassist.errors import UserError
from mangaassist.evaluation.settings import GateSettings, Significance, gate_settings_from
from mangaassist.release import promotion
from mangaassist.release.gates import (
    FAIL,
    PASS,
    SKIP,
    Scores,
    decide,
    format_decision,
    gate_load_error_rate,
    gate_load_p95,
    gate_shadow,
)
from mangaassist.release.model_card import render_model_card
from mangaassist.release.promotion import (
    candidate_versions,
    read_load_test,
    read_shadow_report,
    record_gate,
)
from mangaassist.release.registry import Registry

S = GateSettings(significance=Significance(n_boot=200))


def load_run(p95: float | None = 12.0, error_rate: float = 0.0, rate: float = 200.0) -> dict:
    """One run as ``mangaassist loadtest --out`` writes it (the keys the gates do not read too)."""
    scheduled = 1000
    errors = round(error_rate * scheduled)
    return {
        "url": "http://127.0.0.1:8000/v1/classify",
        "rate": rate,
        "duration_s": 5.0,
        "arrivals": "uniform",
        "scheduled": scheduled,
        "completed": scheduled,
        "ok": scheduled - errors,
        "errors": errors,
        "error_rate": errors / scheduled,
        "status_counts": {"200": scheduled - errors, **({"503": errors} if errors else {})},
        "timeouts": 0,
        "conn_errors": 0,
        "p50_ms": None if p95 is None else p95 / 2,
        "p90_ms": p95,
        "p95_ms": p95,
        "p99_ms": None if p95 is None else p95 * 1.5,
        "max_ms": None if p95 is None else p95 * 2,
        "mean_ms": None if p95 is None else p95 / 2,
        "achieved_rps": rate - 0.5,
        "send_lag_p50_ms": 0.1,
        "send_lag_p99_ms": 0.9,
        "send_late_share": 0.0,
        "started_at": "2025-01-01T00:00:00+00:00",
        "client_lagging": False,
    }


def find_max(*steps: dict) -> dict:
    """A ``--find-max`` file; ``passed`` as find_max_rate sets it (budget 15 ms, zero errors)."""
    steps = [{**s, "passed": s["errors"] == 0 and s["p95_ms"] < 15.0} for s in steps]
    best = [s for s in steps if s["passed"]]
    return {
        "max_sustained_rps": max((s["rate"] for s in best), default=0.0),
        "budget_ms": 15.0,
        "p95_ms": None,
        "stopped": "fail",
        "steps": steps,
    }


def shadow_json(
    agreement: float = 0.96,
    n_paired: int = 500,
    regression: bool = False,
    candidate: str = "v2",
    champion: str = "v1",
) -> dict:
    """A report as :func:`mangaassist.serve.shadow_report.shadow_report` writes (main keys)."""
    flips = 3 if regression else 0
    return {
        "champion_version": champion,
        "candidate_version": candidate,
        "n_paired": n_paired,
        "n_unpaired_champion": 0,
        "agreement_with_champion": agreement,
        "disagreement_rate": 1 - agreement,
        "meets_min_agreement": agreement >= 0.95,
        "critical": {
            "escalation": {
                "champion_n": 40,
                "flips_away": flips,
                "allowed": 0,
                "regression": regression,
            },
            "order_tracking": {
                "champion_n": 80,
                "flips_away": 0,
                "allowed": 1,
                "regression": False,
            },
        },
        "critical_intent_regression": regression,
        "labelled": None,
    }


def write(path: Path, obj) -> Path:
    path.write_text(json.dumps(obj) if not isinstance(obj, str) else obj, encoding="utf-8")
    return path


def load_of(tmp_path: Path, obj: dict):
    return read_load_test(write(tmp_path / "load.json", obj))


def shadow_of(tmp_path: Path, **kw):
    return read_shadow_report(write(tmp_path / "shadow.json", shadow_json(**kw)))


def good_scores() -> Scores:
    y = np.arange(400) % 4
    return Scores.from_predictions(y, y, 4, rare_idx=(3,), ece=0.02, p95_ms=8.0)


# -- load test --------------------------------------------------------------------------------


@pytest.mark.parametrize(("p95", "status"), [(12.0, PASS), (16.0, FAIL), (15.0, FAIL)])
def test_load_p95(tmp_path, p95, status):
    g = gate_load_p95(load_of(tmp_path, load_run(p95=p95)), S)
    assert g.status == status, g
    assert f"p95={p95:.2f}ms" in g.figures and "rate=200req/s (achieved 199.5)" in g.figures


def test_load_p95_unanswered_fails(tmp_path):
    g = gate_load_p95(load_of(tmp_path, load_run(p95=None, error_rate=1.0)), S)
    assert g.status == FAIL and "unmeasured" in g.figures


def test_load_min_rps(tmp_path):
    load = load_of(tmp_path, load_run(p95=12.0, rate=200.0))
    g = gate_load_p95(load, dataclasses.replace(S, load_min_rps=300.0))
    assert g.status == FAIL and "rate=200req/s (achieved 199.5) < required 300req/s" in g.figures
    assert gate_load_p95(load, dataclasses.replace(S, load_min_rps=200.0)).status == PASS


@pytest.mark.parametrize(("rate", "status"), [(0.004, PASS), (0.006, FAIL), (0.005, FAIL)])
def test_load_error_rate(tmp_path, rate, status):
    g = gate_load_error_rate(load_of(tmp_path, load_run(error_rate=rate)), S)
    assert g.status == status, g
    assert f"error_rate={100 * rate:.2f}% ({round(rate * 1000)} of 1000)" in g.figures
    assert "0.50%" in g.figures


def test_find_max_judges_the_fastest_step_within_the_gates(tmp_path):
    search = find_max(
        load_run(p95=8.0, rate=100.0),
        load_run(p95=12.0, rate=200.0),
        load_run(p95=20.0, rate=300.0),  # over the P95 limit
        load_run(p95=14.0, rate=250.0, error_rate=0.002),  # the refine step: within the gates
    )
    load = load_of(tmp_path, search)
    assert load.find_max and len(load.runs) == 4
    g = gate_load_p95(load, S)
    # The file's max_sustained_rps (200, zero errors required) is not the gates' choice.
    assert g.status == PASS and "p95=14.00ms" in g.figures and "rate=250req/s" in g.figures
    assert "find-max: fastest of 4 steps within the gates" in g.figures
    e = gate_load_error_rate(load, S)
    assert e.status == PASS and "error_rate=0.20% (2 of 1000)" in e.figures
    # The gates' own limits pick the step: a 10 ms budget leaves only the 100 req/s step.
    tight = dataclasses.replace(S, load_p95_ms=10.0)
    assert "rate=100req/s" in gate_load_p95(load, tight).figures
    # ... and a rate floor above it fails, naming both rates.
    floor = dataclasses.replace(S, load_p95_ms=10.0, load_min_rps=150.0)
    assert gate_load_p95(load, floor).status == FAIL


def test_find_max_with_no_step_within_fails_on_the_slowest(tmp_path):
    load = load_of(tmp_path, find_max(load_run(16.0, rate=50.0), load_run(30.0, rate=80.0)))
    g = gate_load_p95(load, S)
    assert g.status == FAIL and "rate=50req/s" in g.figures and "none of 2 steps" in g.figures


def test_load_gates_skip_without_a_load_test_unless_required():
    for gate in (gate_load_p95, gate_load_error_rate):
        g = gate(None, S)
        assert g.status == SKIP and "--load-test" in g.figures
        g = gate(None, dataclasses.replace(S, require_load_test=True))
        assert g.status == FAIL and "require_load_test is true" in g.figures


# -- shadow -----------------------------------------------------------------------------------


def test_shadow_passes_at_96_percent_without_regression(tmp_path):
    g = gate_shadow(shadow_of(tmp_path), S, candidate_versions=("v2",), champion="v1")
    assert g.status == PASS, g
    assert g.figures == (
        "agreement=96.00% >= 95.00%; critical_intent_regression=none; paired=500 >= 200; "
        "candidate=v2; champion=v1"
    )


def test_shadow_fails_below_the_agreement_floor(tmp_path):
    g = gate_shadow(shadow_of(tmp_path, agreement=0.94), S, ("v2",))
    assert g.status == FAIL and "agreement=94.00% < 95.00%" in g.figures


def test_shadow_fails_on_a_critical_intent_regression(tmp_path):
    g = gate_shadow(shadow_of(tmp_path, agreement=0.99, regression=True), S, ("v2",))
    assert g.status == FAIL
    assert "critical_intent_regression=escalation(3>0 flips away)" in g.figures


def test_shadow_fails_on_too_little_traffic(tmp_path):
    g = gate_shadow(shadow_of(tmp_path, n_paired=150), S, ("v2",))
    assert g.status == FAIL and "paired=150 < 200 (too little shadow traffic)" in g.figures


def test_shadow_fails_when_the_report_is_of_another_version(tmp_path):
    g = gate_shadow(shadow_of(tmp_path, candidate="v3"), S, candidate_versions=("v2",))
    assert g.status == FAIL
    assert "candidate=v3 (version mismatch: the report is of v3, the candidate is v2)" in g.figures
    # An unregistered run directory: nothing to check the version against.
    assert gate_shadow(shadow_of(tmp_path, candidate="v3"), S).status == PASS


def test_shadow_notes_a_report_made_beside_an_older_champion(tmp_path):
    g = gate_shadow(shadow_of(tmp_path), S, ("v2",), champion="v4")
    assert g.status == PASS and "champion=v1 (the champion is now v4)" in g.figures


def test_shadow_skips_without_a_report_unless_required():
    g = gate_shadow(None, S)
    assert g.status == SKIP and "--shadow-report" in g.figures
    g = gate_shadow(None, dataclasses.replace(S, require_shadow=True))
    assert g.status == FAIL and "require_shadow is true" in g.figures


# -- the decision tree and its lines --------------------------------------------------------


def test_decide_treats_operational_gates_as_absolute_floors(tmp_path):
    cand = good_scores()
    load = load_of(tmp_path, load_run(p95=12.0, error_rate=0.004))
    shadow = shadow_of(tmp_path)
    d = decide(cand, None, cand, S, load=load, shadow=shadow, candidate_versions=("v2",))
    assert d.promote and d.path == ["floors=pass", "champion=none"], format_decision(d)
    lines = format_decision(d)
    for name in ("load_p95", "load_error_rate", "shadow"):
        assert any(line.startswith(f"[GATE] name={name} status=pass") for line in lines), name

    slow = load_of(tmp_path, load_run(p95=16.0, error_rate=0.006))
    bad = shadow_of(tmp_path, agreement=0.94)
    d = decide(cand, None, cand, S, load=slow, shadow=bad)
    assert not d.promote
    assert d.path == ["floors=fail(load_p95,load_error_rate,shadow)", "champion=none"]
    assert d.reason == "absolute floor(s) failed: load_p95, load_error_rate, shadow"
    lines = format_decision(d)
    assert (
        lines[-2]
        == "[PATH] floors=fail(load_p95,load_error_rate,shadow) -> champion=none -> reject"
    )
    assert any(
        line.startswith('[GATE] name=load_p95 status=fail figures="p95=16.00ms') for line in lines
    )

    # With a champion the floors still apply, beside the regression tests.
    d = decide(cand, cand, cand, S, champion_name="v1", load=slow)
    assert not d.promote and d.reason.startswith("absolute floor(s) failed: load_p95")
    assert d.path[:2] == ["floors=fail(load_p95,load_error_rate)", "champion=v1"]


def test_required_evidence_turns_a_skip_into_a_rejection():
    cand = good_scores()
    s = dataclasses.replace(S, require_load_test=True, require_shadow=True)
    d = decide(cand, None, cand, s)
    assert not d.promote and d.path[0] == "floors=fail(load_p95,load_error_rate,shadow)"
    lines = format_decision(d)
    assert any(
        line.startswith("[GATE] name=shadow status=fail") and "require_shadow" in line
        for line in lines
    )


# -- settings -------------------------------------------------------------------------------


def test_settings_defaults_and_validation():
    s = gate_settings_from(None)
    assert (s.load_p95_ms, s.load_min_rps, s.load_max_error_rate) == (15.0, 0.0, 0.005)
    assert (s.shadow_min_agreement, s.shadow_min_messages) == (0.95, 200)
    assert not s.require_load_test and not s.require_shadow
    for bad, match in (
        ({"load_max_error_rate": 5}, r"gates.load_max_error_rate: 5.0 must be a fraction"),
        ({"shadow_min_agreement": -0.1}, "gates.shadow_min_agreement"),
        ({"require_shadow": "false"}, r"gates.require_shadow: expected true or false"),
        ({"shadow_min_messages": 10.5}, "gates.shadow_min_messages: 10.5 must be a whole"),
        ({"load_min_rps": -1}, "gates.load_min_rps"),
        ({"load_p95_ms": 0}, "gates.load_p95_ms"),
        ({"load_p95": 10}, r"unknown key\(s\) \['load_p95'\]"),
    ):
        with pytest.raises(UserError, match=match):
            gate_settings_from(bad)


# -- bad files ------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("content", "match"),
    [
        (None, "load.json: no such load test file"),
        ("{not json", r"load.json: not valid JSON"),
        ("[1, 2]", "load.json: expected a JSON object"),
        ({"rate": 100, "error_rate": 0.0}, "load.json: missing key 'p95_ms'"),
        ({**load_run(), "error_rate": "0.1%"}, "load.json: key 'error_rate' must be a fraction"),
        ({**load_run(), "rate": 0}, "load.json: key 'rate' must be"),
        ({"max_sustained_rps": 100, "steps": []}, "load.json: key 'steps' must be a non-empty"),
        ({"max_sustained_rps": 0}, "load.json: missing key 'steps'"),
        (
            {"steps": [load_run(), {"p95_ms": 3.0, "error_rate": 0.0}]},
            r"load.json: steps\[1\]: missing key 'rate'",
        ),
    ],
)
def test_bad_load_test_file_names_the_file_and_key(tmp_path, content, match):
    path = tmp_path / "load.json"
    if content is not None:
        write(path, content)
    with pytest.raises(UserError, match=match):
        read_load_test(path)


@pytest.mark.parametrize(
    ("change", "match"),
    [
        ({"n_paired": None}, "shadow.json: missing key 'n_paired'"),
        ({"agreement_with_champion": None}, "missing key 'agreement_with_champion'"),
        ({"critical_intent_regression": "no"}, "key 'critical_intent_regression' must be true"),
        ({"agreement_with_champion": 96.1}, "key 'agreement_with_champion' must be a fraction"),
        ({"candidate_version": 2}, "key 'candidate_version' must be a version name"),
    ],
)
def test_bad_shadow_report_names_the_file_and_key(tmp_path, change, match):
    report = {**shadow_json(), **change}
    report = {k: v for k, v in report.items() if v is not None or k == "labelled"}
    with pytest.raises(UserError, match=match):
        read_shadow_report(write(tmp_path / "shadow.json", report))
    with pytest.raises(UserError, match=r"nope\.json: no such shadow report file"):
        read_shadow_report(tmp_path / "nope.json")
    with pytest.raises(UserError, match=r"shadow\.json: not valid JSON"):
        read_shadow_report(write(tmp_path / "shadow.json", ""))


# -- registry, model card and the command -----------------------------------------------------


def fake_run(root: Path) -> Path:
    """The files a run directory needs to be resolved and registered (placeholders)."""
    files = {
        "config.yaml": "model:\n  name: tiny\nseed: 0\n",
        "labels.json": json.dumps(["a", "b"]),
        "backbone/config.json": "{}",
        "tokenizer/tokenizer.json": '{"vocab": 1}',
        "checkpoints/best.ckpt": "weights",
        "data/test.jsonl": '{"text": "y", "label": "b"}\n',
    }
    for rel, text in files.items():
        (root / rel).parent.mkdir(parents=True, exist_ok=True)
        (root / rel).write_text(text)
    return root


def test_candidate_versions(tmp_path):
    reg = Registry(tmp_path / "reg")
    run, other = fake_run(tmp_path / "run"), fake_run(tmp_path / "other")
    assert candidate_versions(run, reg) == ()  # never registered: not checked
    reg.register(other)
    reg.register(run)
    assert candidate_versions(run, reg) == ("v2",)  # registered from this run
    assert candidate_versions(reg.path("v1"), reg) == ("v1",)


def test_model_card_shows_the_operational_gates(tmp_path):
    reg = Registry(tmp_path / "reg")
    version = reg.register(fake_run(tmp_path / "run"))
    folder = reg.path(version)
    assert "No gate decision recorded" in render_model_card(version, folder)

    cand = good_scores()
    load = load_of(tmp_path, load_run(p95=12.0, error_rate=0.004))
    d = decide(cand, None, cand, S, load=load, shadow=shadow_of(tmp_path, candidate=version))
    (folder / "MODEL_CARD.md").write_text(render_model_card(version, folder))
    record = record_gate(version, reg, d, {"load_test": "load.json", "shadow_report": None})
    assert record == folder / "eval" / "gate.json"
    card = (folder / "MODEL_CARD.md").read_text()  # re-rendered in place
    assert "## Promotion gates" in card and "promote=yes" in card
    assert "Operational evidence: load test `load.json`." in card
    assert "| load_p95 | pass | p95=12.00ms < 15ms rate=200req/s (achieved 199.5) |" in card
    assert "| load_error_rate | pass | error_rate=0.40% (4 of 1000) < 0.50%" in card
    assert "| shadow | pass | agreement=96.00% >= 95.00%; critical_intent_regression=none" in card
    assert "| latency_p95 | pass | p95=8.00ms < 15ms |" in card


def test_gate_command_reads_the_evidence_and_cards_it(tmp_path, monkeypatch, capsys):
    """``mangaassist gate RUN --load-test --shadow-report --promote``, model scoring stubbed."""
    root = tmp_path / "reg"
    monkeypatch.setenv("MANGAASSIST_REGISTRY", str(root))
    run = fake_run(tmp_path / "run")
    load = write(tmp_path / "load.json", load_run(p95=12.0))
    shadow = write(tmp_path / "shadow.json", shadow_json())
    real = promotion.gate_candidate

    def scored(candidate, registry, eval_settings, gate_settings, data=None, log=print, **kw):
        # What gate_candidate does past its scoring: read the evidence, then decide.
        assert kw == {"load_test": load, "shadow_report": shadow}
        cand = good_scores()
        return decide(
            cand,
            None,
            cand,
            gate_settings,
            load=read_load_test(kw["load_test"]),
            shadow=read_shadow_report(kw["shadow_report"]),
        )

    monkeypatch.setattr(promotion, "gate_candidate", scored)
    args = ["gate", str(run), "--load-test", str(load), "--shadow-report", str(shadow)]
    assert main([*args, "--promote"]) == 0
    out = capsys.readouterr().out
    assert '[GATE] name=load_p95 status=pass figures="p95=12.00ms' in out
    assert "[GATE] name=shadow status=pass" in out and "event=promote version=v1" in out
    card = (root / "versions" / "v1" / "MODEL_CARD.md").read_text()
    assert "| load_p95 | pass |" in card and "| shadow | pass |" in card
    assert f"shadow report `{shadow}`" in card

    # A bad evidence file: one error line naming it, exit 2, before any model is scored.
    monkeypatch.setattr(promotion, "gate_candidate", real)
    write(load, {"rate": 100, "error_rate": 0.0})
    assert main(["gate", str(run), "--load-test", str(load)]) == 2
    err = capsys.readouterr().err
    assert err.startswith("error:") and f"{load}: missing key 'p95_ms'" in err
    assert main(["gate", str(run), "--shadow-report", str(tmp_path / "nope.json")]) == 2
    assert "nope.json: no such shadow report file" in capsys.readouterr().err
