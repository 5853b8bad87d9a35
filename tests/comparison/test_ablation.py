"""The ablation table: mean ± std over seeds, the published table, the 5-point check."""

from __future__ import annotations

import csv

import pytest

from mangaassist.comparison.ablation import ablation_table, group_runs, rare_gain_check
from mangaassist.comparison.runs import find_runs
from mangaassist.comparison.settings import AblationSettings, load_published

# test rare-class accuracy per seed: ce 78/79/80 (mean 79), focal_weighted 85/86/87 (mean 86).
RARE = {"ce": (0.78, 0.79, 0.80), "focal_weighted": (0.85, 0.86, 0.87)}


def summary(acc: float, rare: float) -> dict:
    return {
        "test/acc": acc,
        "test/macro_f1": acc - 0.02,
        "test/rare_recall": rare,
        "test/ece_before": 0.10,
        "test/ece_after": 0.02,
        "golden/acc": 0.88,
    }


@pytest.fixture
def sweep(make_run, tmp_path):
    for loss, rares in RARE.items():
        for seed, rare in enumerate(rares):
            acc = 0.91 + 0.01 * seed
            make_run(f"sweep/{loss}-{seed}", loss=loss, seed=seed, summary=summary(acc, rare))
    return tmp_path / "sweep"


def test_groups_mean_and_std(sweep):
    runs, _ = find_runs([str(sweep)])
    groups = {g.value: g for g in group_runs(runs, "loss")}
    ce = groups["ce"].stats
    assert ce["rare_acc"].mean == pytest.approx(0.79) and ce["rare_acc"].n == 3
    assert ce["acc"].mean == pytest.approx(0.92) and ce["acc"].std == pytest.approx(0.01)
    assert ce["minutes"].mean == pytest.approx(10.0)


def test_five_point_check_yes_and_no(sweep):
    groups = group_runs(find_runs([str(sweep)])[0], "loss.name")
    text, gain = rare_gain_check(groups, AblationSettings())
    assert gain == pytest.approx(7.0)
    assert text.endswith("by >= 5 points: yes (+7.0)")
    text, _ = rare_gain_check(groups, AblationSettings(min_rare_gain_points=8))
    assert text.endswith(": no (+7.0)")
    text, gain = rare_gain_check(groups, AblationSettings(baseline="oversampling"))
    assert gain is None and "n/a (no oversampling runs" in text


def test_table_lines_markdown_and_csv(sweep, tmp_path):
    runs, failed = find_runs([str(sweep)])
    out = tmp_path / "out"
    published = load_published()["ablation"]
    lines = ablation_table(runs, failed, out, AblationSettings(), published)
    assert lines[0] == (
        "[ABLATION] loss=ce n=3 acc=92.0±1.0 macro_f1=90.0±1.0 rare_acc=79.0±1.0 "
        "ece_after=0.020±0.000 ece_before=0.100±0.000 golden_acc=88.0±0.0 minutes=10.0±0.0"
    )
    assert lines[1].startswith("[ABLATION] loss=focal_weighted n=3 ")
    assert "result=yes gain=+7.0" in lines[2]
    md = (out / "ablation.md").read_text()
    assert "| ce | 3 | 92.0±1.0 |" in md and "| standard_ce | 91.2 | 78.4 |" in md
    assert "focal_weighted beats ce on rare-class accuracy by >= 5 points: yes (+7.0)" in md
    rows = list(csv.DictReader((out / "ablation.csv").open()))
    assert rows[0]["loss.name"] == "ce" and float(rows[0]["rare_acc_mean"]) == pytest.approx(79)


def test_published_table_only_beside_its_data(make_run, tmp_path):
    make_run("c/0", data="clinc150_imbalanced", loss="ce", summary=summary(0.9, 0.8))
    runs, failed = find_runs([str(tmp_path / "c")])
    ablation_table(runs, failed, tmp_path / "out", AblationSettings(), load_published()["ablation"])
    md = (tmp_path / "out" / "ablation.md").read_text()
    assert "standard_ce" not in md and "not shown" in md
