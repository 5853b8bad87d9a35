"""Checkpoints are loaded weights-only: a run directory cannot run code on load."""

from __future__ import annotations

import argparse
import os
import shutil
from pathlib import Path

import pytest
import torch

from mangaassist.checkpoint import load_checkpoint
from mangaassist.cli import main
from mangaassist.errors import UserError
from mangaassist.evaluation.calibration import write_checkpoint_temperature
from mangaassist.training.run_dir import load_run
from mangaassist.training.soup import soup_runs

MARKER = Path(os.environ.get("TMPDIR", "/tmp")) / "mangaassist-pwned"


class _Payload:
    """What a tampered checkpoint could hold: unpickling it runs a command."""

    def __reduce__(self):
        return (os.system, (f"touch {MARKER}",))


@pytest.fixture
def tampered(tiny_run, tmp_path) -> Path:
    run = tmp_path / "run"
    shutil.copytree(tiny_run, run, ignore=shutil.ignore_patterns("export"))
    ckpt = torch.load(run / "checkpoints/best.ckpt", weights_only=True)
    ckpt["hyper_parameters"]["extra"] = _Payload()
    torch.save(ckpt, run / "checkpoints/best.ckpt")
    MARKER.unlink(missing_ok=True)
    return run


@pytest.mark.parametrize(
    "load",
    [
        lambda run: load_run(run),
        lambda run: write_checkpoint_temperature(run / "checkpoints/best.ckpt", 1.5),
        lambda run: soup_runs([run, run], run.parent / "soup"),
    ],
    ids=["load_run", "write_checkpoint_temperature", "soup"],
)
def test_a_tampered_checkpoint_is_refused_without_running_it(tampered, load):
    with pytest.raises(UserError, match=f"mangaassist convert-run {tampered}"):
        load(tampered)
    assert not MARKER.exists()


def test_convert_run_rewrites_a_trusted_old_checkpoint(tiny_run, tmp_path, capsys):
    run = tmp_path / "old"
    shutil.copytree(tiny_run, run, ignore=shutil.ignore_patterns("export"))
    ckpt = torch.load(run / "checkpoints/best.ckpt", weights_only=True)
    ckpt["hyper_parameters"]["args"] = argparse.Namespace(lr=1e-3)  # an older version's hparams
    torch.save(ckpt, run / "checkpoints/best.ckpt")
    with pytest.raises(UserError, match="convert-run"):
        load_checkpoint(run / "checkpoints/best.ckpt")
    assert main(["convert-run", str(run)]) == 0
    assert "dropped=" in capsys.readouterr().out
    loaded = load_run(run)
    reference = load_run(tiny_run)
    for key, value in reference.model.state_dict().items():
        assert torch.equal(loaded.model.state_dict()[key], value)
