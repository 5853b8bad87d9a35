"""Fabricated run directories: the files a finished run leaves, with chosen figures."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
import yaml


def write_run(
    folder: Path,
    *,
    data: str = "mangaassist",
    model: str = "minilm",
    loss: str = "focal_weighted",
    seed: int = 0,
    metrics: dict | None = None,
    summary: dict | None = None,
    epochs: int = 3,
    runtime: str | None = None,
) -> Path:
    """A run folder with config.yaml, metrics.json, eval/summary.json and history.csv."""
    folder.mkdir(parents=True, exist_ok=True)
    config = {
        "seed": seed,
        "run_name": f"{model}-{loss}-s{seed}",
        "data": {"name": data, "module": {"rare_below": 0.05}},
        "model": {"name": model},
        "loss": {"name": loss},
    }
    (folder / "config.yaml").write_text(yaml.safe_dump(config))
    base = {"best/val/macro_f1": 0.8, "epochs_trained": epochs, "best_epoch": epochs}
    base |= {"train_minutes": 10.0, "test/acc": 0.9}
    (folder / "metrics.json").write_text(json.dumps(base | (metrics or {})))
    if summary is not None:
        (folder / "eval").mkdir(exist_ok=True)
        (folder / "eval" / "summary.json").write_text(json.dumps(summary))
    if runtime is not None:  # the split evaluation that timed latency names the runtime
        (folder / "eval" / "test").mkdir(parents=True, exist_ok=True)
        latency = {"runtime": runtime, "p95_ms": 1.0}
        (folder / "eval" / "test" / "metrics.json").write_text(json.dumps({"latency": latency}))
    rows = ["epoch,val/acc,val/macro_f1,val/loss,train/peak_mem_mb"]
    rows += [
        f"{e},{0.5 + 0.1 * e},{0.4 + 0.1 * e},{1.0 / e},{1000 + e}" for e in range(1, epochs + 1)
    ]
    (folder / "history.csv").write_text("\n".join(rows) + "\n")
    return folder


@pytest.fixture
def make_run(tmp_path: Path):
    """Factory: ``make_run("sweep/0", loss="ce", summary={...})`` under tmp_path."""

    def make(rel: str, **kwargs) -> Path:
        return write_run(tmp_path / rel, **kwargs)

    return make
