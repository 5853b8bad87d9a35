"""The Hydra callback: failed jobs recorded, the table written at the end of a multirun."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest
from hydra import compose, initialize_config_dir
from hydra.core.utils import JobReturn, JobStatus
from omegaconf import OmegaConf

from mangaassist.comparison.callback import WriteTable
from mangaassist.errors import UserError
from tests.conftest import CONF, TINY, write_toy_jsonl

ROOT = Path(__file__).resolve().parents[2]


def test_failed_job_is_recorded_and_the_table_written(make_run, tmp_path, capsys):
    sweep = tmp_path / "sweep"
    make_run("sweep/0", loss="ce", summary={"test/rare_recall": 0.7})
    cb = WriteTable(table="ablation", out="out")
    cb.on_multirun_start(OmegaConf.create({"hydra": {"sweep": {"dir": str(sweep)}}}))
    ret = JobReturn(overrides=["loss=focal"], status=JobStatus.FAILED)
    ret.return_value = UserError("no such file")
    job = OmegaConf.create({"hydra": {"runtime": {"output_dir": str(sweep / "1")}}})
    cb.on_job_end(job, ret)
    assert json.loads((sweep / "1" / "failed.json").read_text()) == {
        "overrides": ["loss=focal"],
        "error": "no such file",
    }
    cb.on_multirun_end(OmegaConf.create({}))
    out = capsys.readouterr().out
    assert "[ABLATION] loss=ce n=1" in out and "reason='no such file'" in out
    assert "no such file" in (sweep / "out" / "ablation.md").read_text()
    assert f"publish it with: mangaassist compare ablation {sweep} --out experiments/" in out
    cb._at_exit()  # already written: nothing twice
    assert capsys.readouterr().out == ""


@pytest.mark.parametrize(
    ("name", "table", "swept"),
    [
        ("ablation_mangaassist", "ablation", "loss"),
        ("ablation_clinc150", "ablation", "loss"),
        ("model_selection", "models", "model"),
        ("benchmarks", "benchmarks", "data"),
    ],
)
def test_experiment_configs_sweep_and_register_the_table(name, table, swept):
    with initialize_config_dir(str(CONF), version_base="1.3"):
        cfg = compose("train", overrides=[f"experiment={name}"], return_hydra_config=True)
    assert str(cfg.hydra.mode) == "RunMode.MULTIRUN"
    assert swept in cfg.hydra.sweeper.params
    tables = {c.table: c for c in cfg.hydra.callbacks.values()}
    assert tables[table]._target_ == "mangaassist.comparison.callback.WriteTable"
    # A rerun must not overwrite the committed table: every table stays in the sweep folder.
    for cb in cfg.hydra.callbacks.values():
        assert cb.get("out") is None, f"{name}: WriteTable out={cb.out} writes outside the sweep"
    assert (ROOT / "conf" / "experiment" / f"{name}.yaml").read_text().count("python train.py") >= 1


@pytest.mark.parametrize("out", ["/abs/experiments/x", "../../experiments/ablation_mangaassist"])
def test_table_cannot_be_written_outside_the_sweep_folder(out):
    with pytest.raises(UserError, match="inside the sweep folder"):
        WriteTable(table="ablation", out=out)


def test_multirun_carries_on_past_a_failed_job(tmp_path):
    """A job that raises a UserError no longer ends the sweep; the table still comes out."""
    toy = write_toy_jsonl(tmp_path / "toy.jsonl", n_per_class=8)
    cmd = [
        sys.executable,
        "train.py",
        "-m",
        *TINY,
        "logger=csv",
        "data=files",
        f"data.train={tmp_path / 'missing.jsonl'},{toy}",
        f"hydra.sweep.dir={tmp_path / 'sweep'}",
        "+hydra.callbacks.t._target_=mangaassist.comparison.callback.WriteTable",
        "+hydra.callbacks.t.table=compare",
    ]
    env = {**os.environ, "WANDB_MODE": "offline", "HF_HUB_OFFLINE": "1"}
    proc = subprocess.run(cmd, cwd=ROOT, capture_output=True, text=True, env=env, timeout=300)
    assert proc.returncode == 1, proc.stderr[-2000:]  # Hydra reports the failed job at the end
    assert "[RUN] dir=" in proc.stdout  # the second job ran after the first failed
    md = (tmp_path / "sweep" / "compare" / "comparison.md").read_text()
    assert "| smoke | files |" in md and "missing.jsonl: no such file" in md
