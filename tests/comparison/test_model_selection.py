"""Model selection: hand-computed costs, the decision rule, not-available rows, weights size."""

from __future__ import annotations

import json

import pytest
import torch

from mangaassist.comparison.model_selection import decide, model_rows, models_table
from mangaassist.comparison.runs import find_runs
from mangaassist.comparison.serving_cost import serving_cost, weights_info
from mangaassist.comparison.settings import ModelSettings, settings_from
from mangaassist.errors import UserError

# 500 req/s; 4 workers x 1000 / P50 x 0.7; at least 2 instances; $0.17/h x 730 h.
S = ModelSettings(
    candidates=["minilm", "tinybert", "distilbert", "roberta_base"],
    price_per_hour=0.17,
    hours_per_month=730,
    target_rps=500,
    workers_per_instance=4,
    capacity_latency="p50_ms",
    utilisation=0.7,
    min_instances=2,
    f1_tolerance_points=1.0,
    p95_budget_ms=15.0,
)


def bench(acc: float, f1: float, p50: float, p95: float) -> dict:
    return {"test/acc": acc, "test/macro_f1": f1, "latency/p50_ms": p50, "latency/p95_ms": p95}


def best_val(f1: float) -> dict:
    """metrics.json's best-epoch validation figure, the one models are ranked on."""
    return {"val/macro_f1": f1}


def test_serving_cost_by_hand():
    # minilm: 4 * 1000 / 10 * 0.7 = 280 req/s -> ceil(500 / 280) = 2 -> 2 * 0.17 * 730 = 248.2
    c = serving_cost(10.0, S)
    assert (c.capacity_rps, c.instances, c.monthly_usd) == pytest.approx((280, 2, 248.2))
    # distilbert: 4 * 1000 / 25 * 0.7 = 112 req/s -> ceil(4.46) = 5 -> 620.5
    c = serving_cost(25.0, S)
    assert (c.capacity_rps, c.instances, c.monthly_usd) == pytest.approx((112, 5, 620.5))
    # A fast model still pays for the minimum of two instances.
    assert serving_cost(1.0, S).instances == 2


@pytest.fixture
def sweep(make_run, tmp_path):
    # Test figures are the other way round from validation: they must not move the choice.
    make_run(
        "sweep/0",
        model="minilm",
        metrics=best_val(0.900),
        summary=bench(0.90, 0.950, 10.0, 14.0),
        runtime="torch",
    )
    make_run(
        "sweep/1",
        model="distilbert",
        metrics=best_val(0.908),
        summary=bench(0.92, 0.850, 25.0, 30.0),
    )
    job = tmp_path / "sweep" / "2"
    job.mkdir()
    (job / "failed.json").write_text(
        json.dumps(
            {"overrides": ["model=tinybert"], "error": "model weights for 'x' are gone. More"}
        )
    )
    return find_runs([str(tmp_path / "sweep")])


def test_cheapest_within_tolerance_and_budget_is_selected(sweep):
    rows = {r.model: r for r in model_rows(*sweep, S)}
    assert rows["minilm"].monthly_usd == pytest.approx(248.2) and rows["minilm"].instances == 2
    assert rows["distilbert"].monthly_usd == pytest.approx(620.5)
    # (620.5 - 248.2) USD / (90.8 - 90.0) points = 465.375 USD per point per month
    assert rows["distilbert"].usd_per_point == pytest.approx(465.375)
    assert rows["minilm"].usd_per_point is None  # the reference
    assert rows["minilm"].peak_rss_mb == 1003  # max of history.csv train/peak_mem_mb
    assert rows["tinybert"].unavailable == "model weights for 'x' are gone. More"
    assert "no finished run" in rows["roberta_base"].unavailable
    selected, reason = decide(list(rows.values()), S)
    assert selected == "minilm"
    assert "within 1 point of the best val/macro_f1 (distilbert 90.8)" in reason


def test_ranking_is_on_validation_not_test(make_run, tmp_path):
    # minilm is 2 points behind on validation but 10 ahead on test: it is not "as good".
    make_run("s/0", model="minilm", metrics=best_val(0.88), summary=bench(0.95, 0.95, 10, 14))
    make_run("s/1", model="distilbert", metrics=best_val(0.90), summary=bench(0.8, 0.85, 5, 9))
    rows = {r.model: r for r in model_rows(*find_runs([str(tmp_path / "s")]), S)}
    assert rows["minilm"].quality == pytest.approx(0.88)  # validation, not the test 0.95
    assert rows["minilm"].macro_f1 == pytest.approx(0.95)  # test, shown beside
    selected, reason = decide(list(rows.values()), S)
    assert selected == "distilbert" and "best val/macro_f1 (distilbert 90.0)" in reason


@pytest.mark.parametrize("key", ["test/macro_f1", "golden/acc"])
def test_a_held_out_ranking_key_is_refused(key):
    with pytest.raises(UserError, match="rank on validation"):
        settings_from({"models": {"quality_metric": key}})
    assert settings_from(None).models.quality_metric == "val/macro_f1"


def test_no_model_meets_the_rule(sweep):
    tight = ModelSettings(**{**vars(S), "f1_tolerance_points": 0.5})  # minilm is 0.8 behind
    selected, reason = decide(model_rows(*sweep, tight), tight)
    assert selected == "none" and "distilbert 30.0 ms" in reason


def test_table_files_and_lines(sweep, tmp_path):
    lines = models_table(*sweep, tmp_path / "out", S)
    assert lines[0].startswith(
        "[MODEL_BENCH] model=minilm n=1 quality=90.0 acc=90.0 macro_f1=95.0 "
    )
    assert "p95_ms=14.00" in lines[0] and "instances=2 monthly_usd=248.20" in lines[0]
    assert lines[1] == (
        "[MODEL_BENCH] model=tinybert status=not_available "
        "reason=\"model weights for 'x' are gone\""
    )
    assert lines[-1].startswith('[DECISION] selected=minilm reason="cheapest model within')
    md = (tmp_path / "out" / "models.md").read_text()
    assert "| tinybert | 0 | not available |" in md and "| roberta_base | 0 | not available |" in md
    assert (
        "| 14.0 | torch |" in md
        and "| 30.0 (over) | runtime ? |" in md
        and "| 465 |" in md
        and "**Decision:** selected=minilm" in md
    )
    # The ranking column is validation, shown first; test figures beside it, named as such.
    assert "| model | runs | val/macro_f1 % (ranks) | test acc % | test macro F1 % |" in md
    assert "| minilm | 1 | 90.0 | 90.0 | 95.0 |" in md
    assert "test figures are shown beside, never used to choose" in md
    assert (tmp_path / "out" / "models.csv").read_text().startswith("model,n,acc,")


def test_weights_info_from_checkpoint(make_run):
    run = make_run("r")
    (run / "checkpoints").mkdir()
    state = {"encoder.w": torch.zeros(10, 10), "head.b": torch.zeros(10)}
    state |= {"criterion.weight": torch.ones(10), "encoder.position_ids": torch.arange(5)}
    torch.save({"state_dict": state, "optimizer_states": []}, run / "checkpoints" / "best.ckpt")
    assert weights_info(run) == (110, pytest.approx(440 / 1e6))
    assert weights_info(run / "nothing") == (None, None)
