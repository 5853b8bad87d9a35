"""What engineers watch while a model trains: step statistics and epoch reports.

Every figure goes to the loggers (W&B, CSV) and, on rank zero, to one grep-able line:

    [TRAIN] epoch=1 step=250/843 lr_head=1.05e-05 lr_bottom=2.7e-06 loss=1.214 ...
    [VAL] epoch=2 loss=0.3900 acc=91.9 macro_f1=90.8 rare_recall=87.2 ece=0.0430 ...
    [CHECKPOINT] best_epoch=3 monitor=val/macro_f1 mode=max score=90.8 path=...
"""

from __future__ import annotations

import csv
import io
import math
import resource
import time
from pathlib import Path

import lightning as L
import torch
from lightning.pytorch.callbacks import Callback, ModelCheckpoint
from lightning.pytorch.utilities import rank_zero_only
from torch import Tensor

from mangaassist.atomic import write_json, write_text
from mangaassist.model.param_groups import count_blocks, layer_index
from mangaassist.training.lines import figure, figures


def _norm(tensors: list[Tensor]) -> float:
    return (
        math.sqrt(sum(float(t.detach().float().pow(2).sum()) for t in tensors)) if tensors else 0.0
    )


def _peak_memory_mb(device: torch.device) -> float:
    if device.type == "cuda":
        return torch.cuda.max_memory_allocated(device) / 2**20
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024  # Linux reports KiB


class TrainingMonitor(Callback):
    """Per-step loss, LRs, gradient/update/weight norms, throughput and memory.

    Norms are measured every ``log_every_n_steps`` (they walk all parameters); throughput and
    the smoothed loss every step. Gradient norms are taken before clipping.

    Args:
        log_every_n_steps: how often norms are measured and a ``[TRAIN]`` line printed.
        smoothing: EMA factor of the smoothed loss (0.98 ~ the last 50 steps).
    """

    def __init__(self, log_every_n_steps: int = 50, smoothing: float = 0.98) -> None:
        self.every = log_every_n_steps
        self.smoothing = smoothing
        self.smoothed: float | None = None
        self._before: list[Tensor] | None = None
        self._grads: dict[str, float] = {}
        self.step = 0

    def _due(self) -> bool:
        # self.step counts optimiser steps done; the one about to happen is step + 1.
        return self.step == 0 or (self.step + 1) % self.every == 0

    def on_train_batch_start(self, trainer, pl_module, batch, batch_idx) -> None:
        self._t0 = time.perf_counter()
        self._examples = len(batch["labels"])
        self._tokens = int(batch["attention_mask"].sum())

    def on_before_optimizer_step(self, trainer, pl_module, optimizer) -> None:
        if not self._due():
            return
        enc = pl_module.encoder
        n = count_blocks(enc)
        by_layer: dict[int, list[Tensor]] = {}
        for name, p in enc.named_parameters():
            if p.grad is not None:
                by_layer.setdefault(layer_index(name, n), []).append(p.grad)
        head = [p.grad for p in pl_module.head.parameters() if p.grad is not None]
        second = getattr(pl_module, "secondary_head", None)  # None unless secondary.weight > 0
        extra = [p.grad for p in second.parameters() if p.grad is not None] if second else []
        every = [g for gs in by_layer.values() for g in gs] + head + extra
        self._grads = {
            "grad_norm": _norm(every),
            "grad_norm/head": _norm(head),
            "grad_norm/top_layer": _norm(by_layer.get(n, [])),
            "grad_norm/bottom_layer": _norm(by_layer.get(1, [])),
            "grad_norm/embeddings": _norm(by_layer.get(0, [])),
        }
        if second is not None:
            self._grads["grad_norm/secondary_head"] = _norm(extra)
        self._before = [p.detach().clone() for p in pl_module.parameters() if p.requires_grad]

    def on_train_batch_end(self, trainer, pl_module, outputs, batch, batch_idx) -> None:
        dt = time.perf_counter() - self._t0
        self.step += 1
        loss = float(outputs["loss"]) if isinstance(outputs, dict) else float(outputs)
        s = self.smoothing
        self.smoothed = loss if self.smoothed is None else s * self.smoothed + (1 - s) * loss
        groups = trainer.optimizers[0].param_groups
        stats = {
            "train/loss_smoothed": self.smoothed,
            "train/lr_head": groups[-1]["lr"],
            "train/lr_bottom": groups[0]["lr"],
            "train/step_time_s": dt,
            "train/ex_per_sec": self._examples / dt,
            "train/tokens_per_sec": self._tokens / dt,
        }
        if self._before is not None:
            params = [p for p in pl_module.parameters() if p.requires_grad]
            stats["train/update_norm"] = _norm(
                [p - b for p, b in zip(params, self._before, strict=True)]
            )
            stats["train/weight_norm"] = _norm(params)
            stats["train/peak_mem_mb"] = _peak_memory_mb(pl_module.device)
            stats.update({f"train/{k}": v for k, v in self._grads.items()})
            self._before = None
            self._print(trainer, loss, stats)
        pl_module.log_dict(stats, on_step=True, on_epoch=False)

    @rank_zero_only
    def _print(self, trainer: L.Trainer, loss: float, st: dict) -> None:
        print(
            f"[TRAIN] epoch={trainer.current_epoch + 1} step={self.step}/"
            f"{trainer.estimated_stepping_batches} lr_head={st['train/lr_head']:.3g} "
            f"lr_bottom={st['train/lr_bottom']:.3g} loss={loss:.4f} "
            f"loss_smoothed={st['train/loss_smoothed']:.4f} "
            f"grad_norm={st['train/grad_norm']:.3f} update_norm={st['train/update_norm']:.3g} "
            f"ex_per_sec={st['train/ex_per_sec']:.0f} tokens_per_sec="
            f"{st['train/tokens_per_sec']:.0f} peak_mem_mb={st['train/peak_mem_mb']:.0f}",
            flush=True,
        )


class EpochReport(Callback):
    """``[VAL]`` lines, per-class figures to the loggers, and the run's history files.

    Writes ``history.csv`` (one row per epoch) and ``epochs/val_epoch<N>.json`` (per-class
    precision/recall/F1 and the confusion matrix) into the run directory.

    Args:
        run_dir: the run directory.
        labels: class names in index order (set by ``train`` once the data is loaded).
    """

    def __init__(self, run_dir: str, labels: list[str] | None = None) -> None:
        self.run_dir = Path(run_dir)
        self.labels = labels or []
        self.rows: list[dict] = []
        self._epoch_start = time.perf_counter()

    def on_train_epoch_start(self, trainer, pl_module) -> None:
        self._epoch_start = time.perf_counter()

    def on_validation_end(self, trainer: L.Trainer, pl_module: L.LightningModule) -> None:
        if trainer.sanity_checking:
            return
        m = trainer.callback_metrics
        epoch = trainer.current_epoch + 1
        row = {
            "epoch": epoch,
            "step": trainer.global_step,
            "epoch_minutes": round((time.perf_counter() - self._epoch_start) / 60, 3),
        }
        row.update(
            {k: round(float(v), 6) for k, v in m.items() if k.startswith(("val/", "train/"))}
        )
        per_class = getattr(pl_module, "epoch_metrics", {})
        for key in ("precision", "recall", "f1"):
            values = per_class.get(f"val/{key}")
            if values is not None and trainer.logger is not None:
                trainer.logger.log_metrics(
                    {
                        f"val_{key}/{lab}": float(v)
                        for lab, v in zip(self.labels, values, strict=False)
                    },
                    step=trainer.global_step,
                )
        self._write(epoch, row, per_class)

    @rank_zero_only
    def _write(self, epoch: int, row: dict, per_class: dict) -> None:
        print(f"[VAL] epoch={epoch} {figures(row, 'val')}", flush=True)
        self.rows.append(row)
        self.run_dir.mkdir(parents=True, exist_ok=True)
        keys = sorted({k for r in self.rows for k in r}, key=lambda k: (k != "epoch", k))
        buf = io.StringIO(newline="")
        writer = csv.DictWriter(buf, fieldnames=keys)
        writer.writeheader()
        writer.writerows(self.rows)
        write_text(self.run_dir / "history.csv", buf.getvalue())
        detail = {"epoch": epoch, "labels": self.labels}
        for key in ("precision", "recall", "f1", "confusion"):
            if f"val/{key}" in per_class:
                detail[key] = per_class[f"val/{key}"].tolist()
        (self.run_dir / "epochs").mkdir(exist_ok=True)
        write_json(self.run_dir / "epochs" / f"val_epoch{epoch}.json", detail, indent=None)

    def best_row(self, monitor: str, mode: str = "max") -> dict | None:
        """The history row of the best epoch by ``monitor`` (None before any validation)."""
        rows = [r for r in self.rows if r.get(monitor) is not None]
        return (max if mode == "max" else min)(rows, key=lambda r: r[monitor]) if rows else None

    def on_fit_end(self, trainer: L.Trainer, pl_module: L.LightningModule) -> None:
        ckpt = trainer.checkpoint_callback
        if isinstance(ckpt, ModelCheckpoint) and ckpt.best_model_score is not None:
            best = self.best_row(ckpt.monitor, ckpt.mode)
            _print_checkpoint(best["epoch"] if best else None, ckpt)


@rank_zero_only
def _print_checkpoint(best_epoch: int | None, ckpt: ModelCheckpoint) -> None:
    print(
        f"[CHECKPOINT] best_epoch={best_epoch} monitor={ckpt.monitor} mode={ckpt.mode} "
        f"score={figure(ckpt.monitor.split('/')[-1], float(ckpt.best_model_score))} "
        f"path={ckpt.best_model_path}",
        flush=True,
    )
