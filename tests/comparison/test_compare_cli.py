"""``mangaassist compare``: side by side with plots, the tables, and bad input (exit 2)."""

from __future__ import annotations

import csv
import doctest
import importlib

import pytest

from mangaassist.cli import main
from mangaassist.comparison.benchmarks import benchmark_rows
from mangaassist.comparison.runs import find_runs
from mangaassist.comparison.settings import load_published, load_settings, settings_from
from mangaassist.errors import UserError


@pytest.mark.parametrize("name", ["settings", "tables", "serving_cost"])
def test_doctests(name):
    module = importlib.import_module(f"mangaassist.comparison.{name}")
    result = doctest.testmod(module)
    assert result.attempted > 0 and result.failed == 0


def test_compare_writes_table_csv_and_plots(make_run, tmp_path, capsys):
    a = {"test/acc": 0.91, "latency/p95_ms": 12.0}
    make_run("runs/a", loss="ce", seed=1, summary=a, runtime="onnxruntime")
    make_run("runs/b", loss="focal", seed=0, summary={"test/acc": 0.93, "golden/acc": 0.9})
    make_run("runs/c", loss="ce", seed=2, summary={"test/acc": 0.9, "latency/p95_ms": 30.0})
    out = tmp_path / "cmp"
    assert main(["compare", str(tmp_path / "runs" / "*"), "--out", str(out), "--by", "loss"]) == 0
    printed = capsys.readouterr().out
    assert printed.splitlines()[0].split()[:6] == ["run", "data", "model", "loss", "seed", "epochs"]
    assert "[COMPARE] runs=3" in printed
    md = (out / "comparison.md").read_text()
    assert "| minilm-ce-s1 | mangaassist | minilm | ce | 1 | 3 (best 3) | 80.0 | 91.0 |" in md
    assert "golden acc" in md and "P95 ms" in md and "OOS recall" not in md  # columns in use
    # Latency is only comparable between runs timed on one runtime: each row names it.
    assert "| 12.0 (ORT) |" in md and "| 30.0 (runtime ?) |" in md
    rows = list(csv.DictReader((out / "comparison.csv").open()))
    assert [r["loss"] for r in rows] == ["ce", "ce", "focal"]  # sorted by --by
    assert [r["latency/runtime"] for r in rows] == ["onnxruntime", "", ""]
    for name in ("headline", "curves_val_acc", "curves_val_macro_f1", "curves_val_loss"):
        assert (out / f"{name}.png").stat().st_size > 1000, name
        assert f"({name}.png)" in md


def test_table_subcommands(make_run, tmp_path, capsys):
    make_run("s/0", loss="ce", summary={"test/acc": 0.9, "test/rare_recall": 0.7})
    make_run("s/1", loss="focal_weighted", summary={"test/acc": 0.9, "test/rare_recall": 0.8})
    sweep = str(tmp_path / "s")
    for table in ("ablation", "models", "benchmarks"):
        assert main(["compare", table, sweep, "--out", str(tmp_path / table)]) == 0
        assert (tmp_path / table / f"{table}.md").is_file()
    out = capsys.readouterr().out
    assert "result=yes gain=+10.0" in out and "[DECISION] selected=none" in out
    assert "[BENCHMARK] data=mangaassist model=minilm figure='accuracy' ours=90.0±0.0" in out


def test_bad_input_exits_2_with_the_fix(tmp_path, capsys):
    assert main(["compare", "ablation"]) == 2
    assert "needs run folders after it" in capsys.readouterr().err
    assert main(["compare", str(tmp_path / "none-*"), "--out", str(tmp_path / "o")]) == 2
    err = capsys.readouterr().err
    assert "no run directories matched" in err and "pass finished run directories" in err
    (tmp_path / "bad.yaml").write_text("models: {utilisation: 2.0}\n")
    with pytest.raises(UserError, match=r"bad\.yaml: comparison settings: models\.utilisation"):
        load_settings(tmp_path / "bad.yaml")
    with pytest.raises(UserError, match="typo"):
        settings_from({"models": {"typo": 1}})
    assert not (tmp_path / "o").exists()


def test_benchmark_rows_beside_published(make_run, tmp_path):
    oos = {"test/acc": 0.95, "test/in_scope_acc": 0.95, "test/oos_recall": 0.5}
    make_run("b/0", data="clinc150_full", summary=oos)
    make_run("b/1", data="clinc150_full", seed=1, summary={**oos, "test/oos_recall": 0.6})
    make_run("b/2", data="banking77", summary={"test/acc": 0.93})
    rows = benchmark_rows(find_runs([str(tmp_path / "b")])[0], load_published()["benchmarks"])
    by = {(r["data"], r["figure"]): r for r in rows}
    assert by[("banking77", "accuracy")]["published"] == 93.7
    assert by[("banking77", "accuracy")]["ours_mean"] == pytest.approx(93.0)
    recall = by[("clinc150_full", "OOS recall (threshold)")]
    assert recall["ours_mean"] == pytest.approx(55.0) and recall["n"] == 2
    assert recall["published"] == 52.3 and "Larson" in recall["source"]
    assert by[("clinc150_full", "in-scope accuracy, accepted")]["n"] == 0  # not in these runs
    assert rows[0]["data"] == "banking77"  # published order first


def test_missing_default_settings_fail_loudly(tmp_path, monkeypatch):
    """Outside a checkout (no conf/), silent built-in defaults would rank by other rules."""
    import mangaassist.comparison.settings as cs

    monkeypatch.setattr(cs, "DEFAULT_YAML", tmp_path / "nowhere.yaml")
    monkeypatch.setattr(cs, "PUBLISHED_YAML", tmp_path / "gone.yaml")
    with pytest.raises(UserError, match=r"nowhere[.]yaml: settings file not found"):
        load_settings()
    with pytest.raises(UserError, match=r"gone[.]yaml: settings file not found"):
        load_published()


def test_benchmarks_from_kept_summaries_keep_the_rows_nothing_rebuilds(make_run, tmp_path, capsys):
    """Run folders gone: kept eval_summary_*.json rebuild their rows, the rest carry over."""
    import json

    # An earlier table with banking77 (3 runs) and clinc150_full, built from run folders.
    make_run("old/0", data="banking77", summary={"test/acc": 0.93})
    oos = {"test/in_scope_acc": 0.96, "test/oos_recall": 0.7, "test/in_scope_acc_accepted": 0.9}
    make_run("old/1", data="clinc150_full", summary=oos)
    old = tmp_path / "old_table"
    assert main(["compare", "benchmarks", str(tmp_path / "old"), "--out", str(old)]) == 0
    assert "| run folders |" in (old / "benchmarks.md").read_text()
    # The banking77 folders are gone; seven seeds' summaries (and metrics) are kept.
    kept = tmp_path / "kept"
    kept.mkdir()
    accs = [0.9312, 0.9396, 0.9386, 0.9364, 0.9347, 0.9334, 0.9341]
    for seed, acc in enumerate(accs):
        (kept / f"eval_summary_bs16_s{seed}.json").write_text(json.dumps({"test/acc": acc}))
        (kept / f"metrics_bs16_s{seed}.json").write_text(json.dumps({"epochs_trained": 6}))
    glob = str(kept / "eval_summary_bs16_s*.json")
    # The files do not say their data set or model: refused until named.
    assert main(["compare", "benchmarks", glob, "--out", str(tmp_path / "x")]) == 2
    assert "--data NAME --model NAME" in capsys.readouterr().err
    runs, _ = find_runs([glob], {"data": "banking77", "model": "minilm"})
    assert len(runs) == 7 and all(r.kept and r.metric("epochs_trained") == 6 for r in runs)
    new = tmp_path / "new_table"
    argv = ["compare", "benchmarks", glob, "--data", "banking77", "--model", "minilm"]
    assert main([*argv, "--keep", str(old / "benchmarks.csv"), "--out", str(new)]) == 0
    rows = list(csv.DictReader((new / "benchmarks.csv").open()))
    by = {(r["data"], r["figure"]): r for r in rows}
    bank = by[("banking77", "accuracy")]
    assert bank["n"] == "7" and bank["built_from"] == "kept summaries"
    assert float(bank["ours_mean"]) == pytest.approx(100 * sum(accs) / 7)
    clinc = by[("clinc150_full", "OOS recall (threshold)")]
    assert clinc["built_from"] == "earlier build" and float(clinc["ours_mean"]) == 70.0
    assert clinc["published"] == "52.3" and "Larson" in clinc["source"]
    assert [r["data"] for r in rows][:2] == ["banking77", "banking77"]  # published order
    md = (new / "benchmarks.md").read_text()
    assert "| banking77 | minilm | accuracy | 93.5±0.3 | 7 | kept summaries | 93.7 |" in md
    assert "| clinc150_full | minilm | OOS recall (threshold) | 70.0 | 1 | earlier build |" in md
    assert "from=kept_summaries" in capsys.readouterr().out
    # --keep belongs to the benchmarks table only.
    assert main(["compare", "ablation", glob, "--data", "b", "--model", "m", "--keep", "x"]) == 2
