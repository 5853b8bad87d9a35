"""Finding run directories: paths, globs, folders above runs, failed jobs, and bad input."""

from __future__ import annotations

import json

import pytest
import yaml

from mangaassist.comparison.runs import find_runs
from mangaassist.errors import UserError


def test_paths_globs_and_folders_above_runs(make_run, tmp_path):
    a = make_run("outputs/mangaassist/a/t1", loss="ce", summary={"test/acc": 0.95})
    make_run("outputs/mangaassist/b/t1", loss="focal")
    runs, failed = find_runs([str(a)])
    assert len(runs) == 1 and not failed
    assert runs[0].metric("test/acc") == 0.95  # eval/summary.json wins over metrics.json
    assert runs[0].get("loss") == "ce" and runs[0].name == "minilm-ce-s0"
    runs, _ = find_runs([str(tmp_path / "outputs" / "mangaassist" / "*" / "*"), str(a)])
    assert len(runs) == 2  # the same run named twice counts once
    runs, _ = find_runs([str(tmp_path / "outputs")])
    assert sorted(r.get("loss") for r in runs) == ["ce", "focal"]
    assert runs[0].history()["val/acc"].tolist() == pytest.approx([0.6, 0.7, 0.8])


def test_failed_jobs_below_a_sweep_folder(make_run, tmp_path):
    make_run("sweep/0_model=minilm", model="minilm")
    job = tmp_path / "sweep" / "1_model=tinybert"
    (job / ".hydra").mkdir(parents=True)
    (job / ".hydra" / "overrides.yaml").write_text("- model=tinybert\n- seed=0\n")
    written = tmp_path / "sweep" / "2_model=distilbert"
    written.mkdir()
    (written / "failed.json").write_text(
        json.dumps({"overrides": ["model=distilbert"], "error": "weights missing"})
    )
    runs, failed = find_runs([str(tmp_path / "sweep")])
    assert [r.model for r in runs] == ["minilm"]
    by_model = {f.choice("model.name"): f for f in failed}
    assert set(by_model) == {"tinybert", "distilbert"}
    assert by_model["distilbert"].error == "weights missing"
    assert "no metrics.json" in by_model["tinybert"].error


def test_bad_input_names_the_path_and_the_fix(tmp_path):
    with pytest.raises(
        UserError, match=r"no run directories matched '.*nothing-\*'.*pass finished"
    ):
        find_runs([str(tmp_path / "nothing-*")])
    with pytest.raises(UserError, match=r"no such folder"):
        find_runs([str(tmp_path / "missing")])
    unfinished = tmp_path / "unfinished"
    unfinished.mkdir()
    (unfinished / "config.yaml").write_text("seed: 0\n")
    with pytest.raises(UserError, match=rf"{unfinished}: no metrics.json.*rerun it"):
        find_runs([str(unfinished)])
    empty = tmp_path / "empty"
    empty.mkdir()
    with pytest.raises(UserError, match=rf"{empty}: no metrics.json there or below; pass"):
        find_runs([str(empty)])
    with pytest.raises(UserError, match="a file, not a run folder"):
        find_runs([str(unfinished / "config.yaml")])
    with pytest.raises(UserError, match="no run directories given"):
        find_runs([])


def test_broken_metrics_file_is_named(make_run):
    run = make_run("r")
    (run / "metrics.json").write_text("{not json")
    with pytest.raises(UserError, match=rf"{run / 'metrics.json'}: not valid JSON"):
        find_runs([str(run)])


def test_tiny_encoders_are_not_mistaken_for_the_real_one(make_run):
    run = make_run("tiny")
    config = yaml.safe_load((run / "config.yaml").read_text())
    config["model"]["init"] = "tiny"
    (run / "config.yaml").write_text(yaml.safe_dump(config))
    assert find_runs([str(run)])[0][0].model == "minilm (tiny)"
