"""Settings: the shipped YAML files load, unknown keys are named, routing costs are symmetric."""

from __future__ import annotations

import pytest

from mangaassist.errors import UserError
from mangaassist.evaluation.settings import (
    EVAL_YAML,
    GATES_YAML,
    eval_settings_from,
    gate_settings_from,
    load_eval_settings,
    load_gate_settings,
)


def test_shipped_yaml_files_load():
    s = load_eval_settings()
    assert s.ece_bins == 15 and s.fallback.global_threshold == 0.6
    assert s.latency.budget_ms == 15.0
    rc = s.routing_cost
    assert rc.severity("product_discovery", "recommendation") == "acceptable"
    assert rc.severity("recommendation", "product_discovery") == "acceptable"
    assert rc.severity("order_tracking", "product_discovery") == "severe"
    assert rc.cost("faq", "faq") == 0.0
    g = load_gate_settings()
    assert g.latency_p95_ms == 15.0 and g.significance.accuracy_test == "mcnemar"
    assert EVAL_YAML.is_file() and GATES_YAML.is_file()


def test_run_config_section_wins_over_conf():
    s = load_eval_settings({"evaluation": {"ece_bins": 10}})
    assert s.ece_bins == 10


def test_unknown_or_bad_keys_are_named():
    with pytest.raises(UserError, match=r"evaluation.fallback: unknown key\(s\) \['treshold'\]"):
        eval_settings_from({"fallback": {"treshold": 0.5}})
    with pytest.raises(UserError, match=r"gates.latency_p95_ms: expected a number"):
        gate_settings_from({"latency_p95_ms": "fast"})
    with pytest.raises(UserError, match="must be"):
        eval_settings_from({"routing_cost": {"pairs": [["a", "b", 3.0]]}})


def test_missing_settings_file_is_a_user_error(tmp_path):
    with pytest.raises(UserError, match="not found"):
        load_gate_settings(tmp_path / "nope.yaml")


def test_missing_default_eval_settings_fail_loudly(tmp_path, monkeypatch):
    import mangaassist.evaluation.settings as es

    monkeypatch.setattr(es, "EVAL_YAML", tmp_path / "nowhere.yaml")
    with pytest.raises(UserError, match=r"nowhere[.]yaml: settings file not found"):
        es.load_eval_settings()
