"""End-to-end training runs on a tiny random model: files, logs, reproducibility, DDP."""

import csv
import json
import os
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest
import torch
from omegaconf import OmegaConf

from mangaassist.data.schema import INTENTS
from mangaassist.training import load_run, train

ROOT = Path(__file__).resolve().parents[2]


def test_smoke_run_fills_the_run_directory(tiny_cfg, capsys):
    cfg = tiny_cfg("trainer.max_epochs=2", "trainer.log_every_n_steps=2")
    metrics = train(cfg)
    run = Path(cfg.paths.output_dir)
    for name in (
        "config.yaml",
        "labels.json",
        "class_counts.json",
        "metrics.json",
        "history.csv",
        "checkpoints/best.ckpt",
        "tokenizer",
        "backbone/config.json",
        "data/val.jsonl",
        "data/test.jsonl",
        "epochs/val_epoch2.json",
    ):
        assert (run / name).exists(), name
    assert json.loads((run / "metrics.json").read_text()) == pytest.approx(metrics, nan_ok=True)
    for key in (
        "test_lightning/acc",
        "test_lightning/macro_f1",
        "test_lightning/ece",
        "val/macro_f1",
        "train_minutes",
    ):
        assert key in metrics and np.isfinite(metrics[key]), key
    # One meaning per key: test/... is the served fp32 evaluation (eval/summary.json) only.
    assert not [k for k in metrics if k.startswith("test/")]
    assert len((run / "history.csv").read_text().strip().splitlines()) == 3  # header + 2 epochs
    out = capsys.readouterr().out
    for tag in (
        "[TRAIN] epoch=1 step=1/",
        "[VAL] epoch=2",
        "[CHECKPOINT] best_epoch=",
        "[TEST] ",
        "grad_norm=",
        "ex_per_sec=",
    ):
        assert tag in out, tag
    # One unit per key: shares in percent on [VAL] and [TEST] alike, ECE and loss as they are.
    test_line = next(line for line in out.splitlines() if line.startswith("[TEST] "))
    test = dict(kv.split("=", 1) for kv in test_line.split()[1:])
    assert test["pass"] == "lightning" and test["precision"] == str(cfg.trainer.precision)
    assert test["acc"] == f"{100 * metrics['test_lightning/acc']:.1f}"
    assert test["macro_f1"] == f"{100 * metrics['test_lightning/macro_f1']:.1f}"
    assert test["ece"] == f"{metrics['test_lightning/ece']:.4f}"
    val_line = next(line for line in out.splitlines() if line.startswith("[VAL] epoch=2 "))
    val = dict(kv.split("=", 1) for kv in val_line.split()[1:])
    last = list(csv.DictReader((run / "history.csv").open()))[-1]
    assert val["acc"] == f"{100 * float(last['val/acc']):.1f}"
    # The toy file's ten classes are even: no class is rare, and the lines say so (not nan).
    assert test["rare_recall"] == val["rare_recall"] == "none(no_rare_class)"
    assert "nan" not in test_line + val_line
    csv_log = (run / "csv" / "metrics.csv").read_text()
    for key in (
        "train/lr_head",
        "train/lr_bottom",
        "train/grad_norm/embeddings",
        "train/update_norm",
        "train/weight_norm",
        "train/tokens_per_sec",
        "train/peak_mem_mb",
        "val/rare_recall",
        "val/conf_wrong",
        "val_recall/escalation",
    ):
        assert key in csv_log, key


@pytest.mark.parametrize("head", ["linear", "cosine"])
def test_load_run_reproduces_the_trained_model(tiny_cfg, head):
    cfg = tiny_cfg(f"model.head={head}")
    train(cfg)
    run = load_run(cfg.paths.output_dir)
    assert type(run.model.head).__name__ == {"linear": "Linear", "cosine": "CosineHead"}[head]
    assert run.labels == sorted(INTENTS) and run.max_length == 32  # data=files: sorted labels
    logits = run.predict_logits(["where is my order", "hi there"])
    assert logits.shape == (2, 10)
    ckpt = torch.load(Path(cfg.paths.output_dir) / "checkpoints/best.ckpt", weights_only=True)
    head = ckpt["state_dict"]["head.weight"]
    assert torch.equal(run.model.head.weight, head)


def test_same_seed_same_result(tiny_cfg, tmp_path):
    a = train(tiny_cfg("seed=3"))
    b = train(tiny_cfg("seed=3", f"paths.output_dir={tmp_path / 'again'}"))
    assert a["test_lightning/acc"] == b["test_lightning/acc"]
    assert a["val/loss"] == pytest.approx(b["val/loss"])


def test_cpu_bf16_trains_with_clipping(tiny_cfg):
    # fused AdamW in config + bf16-mixed: Lightning refuses to clip around a fused optimizer,
    # so the module must swap in foreach and the run must finish with finite losses.
    cfg = tiny_cfg("trainer=cpu_bf16", "trainer.max_epochs=1", "optim.optimizer.fused=true")
    metrics = train(cfg)
    assert cfg.trainer.precision == "bf16-mixed" and cfg.trainer.gradient_clip_val > 0
    assert np.isfinite(metrics["val/loss"])


def test_lr_schedule_warms_up_then_decays(tiny_cfg):
    cfg = tiny_cfg(
        "trainer.max_epochs=2",
        "trainer.limit_train_batches=5",
        "optim.warmup_ratio=0.3",
        "trainer.log_every_n_steps=1",
    )
    train(cfg)
    rows = [
        r
        for r in csv.DictReader((Path(cfg.paths.output_dir) / "csv/metrics.csv").open())
        if r.get("train/lr_head")
    ]
    lrs = [float(r["train/lr_head"]) for r in rows]
    peak = int(np.argmax(lrs))
    assert 0 < peak < len(lrs) - 1  # rises during warmup (3 of 10 steps), then falls
    assert lrs[-1] < lrs[peak]
    assert all(
        float(r["train/lr_bottom"]) < float(r["train/lr_head"])
        for r in rows
        if float(r["train/lr_head"]) > 0
    )


def _run_cli(args: list[str], tmp_path: Path, timeout: int = 240) -> subprocess.CompletedProcess:
    env = {**os.environ, "WANDB_MODE": "offline", "HF_HUB_OFFLINE": "1", "PYTHONWARNINGS": "ignore"}
    return subprocess.run(
        [sys.executable, "train.py", *args],
        cwd=ROOT,
        env=env,
        text=True,
        capture_output=True,
        timeout=timeout,
    )


def test_train_log_holds_the_grep_able_lines_once_and_no_progress_bar(tmp_path):
    run = tmp_path / "run"
    res = _run_cli(
        [
            "experiment=smoke",  # the small MangaAssist corpus: generate, audit, clean, split
            "data.source.n=1000",
            f"data.source.cache_dir={tmp_path / 'cache'}",
            "trainer.max_epochs=1",
            "trainer.log_every_n_steps=2",
            f"hydra.run.dir={run}",
        ],
        tmp_path,
    )
    assert res.returncode == 0, res.stderr[-3000:]
    console = [line for line in res.stdout.splitlines() if line.startswith("[")]
    log = (run / "train.log").read_text()
    logged = [line.split(" - ", 1)[1] for line in log.splitlines() if "[mangaassist.lines]" in line]
    for tag in ("[DATA_AUDIT]", "[DECISION]", "[DATA]", "[TRAIN]", "[VAL]", "[TEST]", "[EVAL]"):
        assert any(line.startswith(tag) for line in logged), tag
    assert logged == console  # each console line once in the log, in order
    # stdout is a pipe here: no progress bar (Lightning's or tqdm's) in the output
    assert "it/s" not in res.stdout + res.stderr and "━" not in res.stdout


def test_multirun_makes_one_directory_per_run(tmp_path, toy_file):
    res = _run_cli(
        [
            "-m",
            "experiment=smoke",
            "evaluate=false",
            "data=files",
            f"data.train={toy_file}",
            "loss=ce,focal_weighted",
            "seed=0,1",
            "trainer.max_epochs=1",
            "trainer.limit_train_batches=2",
            f"hydra.sweep.dir={tmp_path / 'multi'}",
        ],
        tmp_path,
    )
    assert res.returncode == 0, res.stderr[-3000:]
    runs = sorted(p.parent for p in (tmp_path / "multi").glob("*/metrics.json"))
    assert len(runs) == 4
    for run in runs:  # each directory holds the run its name says
        cfg = OmegaConf.load(run / "config.yaml")
        assert f"loss={cfg.loss.name}" in run.name and f"seed={cfg.seed}" in run.name


def test_ddp_two_cpu_processes(tmp_path, toy_file):
    res = _run_cli(
        [
            "experiment=smoke",
            "evaluate=false",
            "trainer=ddp",
            "trainer.accelerator=cpu",
            "trainer.devices=2",
            "trainer.precision=32-true",
            "data=files",
            f"data.train={toy_file}",
            "trainer.limit_train_batches=2",
            f"hydra.run.dir={tmp_path / 'ddp'}",
        ],
        tmp_path,
    )
    assert res.returncode == 0, res.stderr[-3000:]
    metrics = json.loads((tmp_path / "ddp" / "metrics.json").read_text())
    assert "test_lightning/acc" in metrics and "val/macro_f1" in metrics
    log = res.stderr + res.stdout
    assert "distributed_backend=gloo" in log and "Starting with 2 processes" in log


def test_refit_trains_on_train_plus_val_and_fits_no_temperature(tiny_cfg, capsys):
    # The last step of tuning on a carved val split: train on everything, keep the last epoch.
    cfg = tiny_cfg(
        "data.module.refit=true",
        "callbacks.checkpoint.monitor=null",
        "callbacks.early_stopping=null",
        "trainer.max_epochs=1",
    )
    metrics = train(cfg)
    run = Path(cfg.paths.output_dir)
    out = capsys.readouterr().out
    seen = len((run / "data" / "val_seen_in_training.jsonl").read_text().splitlines())
    train_n = int(out.split("[DATA] refit=true train=")[1].split()[0])
    carved = int(out.split("[SPLIT] train=")[1].split()[0])
    assert train_n == carved + seen
    # No data/val.jsonl: the evaluation stage must not fit a temperature on training data.
    assert not (run / "data" / "val.jsonl").exists()
    assert (run / "checkpoints" / "best.ckpt").is_file()
    assert np.isfinite(metrics["test_lightning/acc"])
