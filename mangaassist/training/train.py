"""``train(cfg)``: one training run from a composed config to a finished run directory.

Tests and ``sweep.py`` call this function directly; ``train.py`` is a thin Hydra wrapper.
"""

from __future__ import annotations

import os
import sys
import time
from collections.abc import Sequence
from pathlib import Path
from typing import TYPE_CHECKING

from mangaassist.atomic import write_json
from mangaassist.errors import UserError
from mangaassist.training.lines import figures

if TYPE_CHECKING:  # torch, transformers and Lightning load when train() runs, not on import
    import lightning as L
    from omegaconf import DictConfig

    from mangaassist.data.datamodule import IntentDataModule
    from mangaassist.model.module import IntentClassifier

os.environ.setdefault("WANDB_MODE", "offline")  # no network here; `wandb sync` later
os.environ.setdefault("TOKENIZERS_PARALLELISM", "false")


def secondary_weight_of(cfg: DictConfig) -> float:
    """``secondary.weight`` of a composed or saved config; 0.0 (no head) when it has none."""
    return float((cfg.get("secondary") or {}).get("weight") or 0.0)


def _extend_vocabulary(cfg: DictConfig, dm: IntentDataModule) -> dict[int, list[int]]:
    """``vocab_extension.size > 0``: the training split's most frequent Japanese words and
    characters join the DataModule's tokenizer (:mod:`mangaassist.data.vocabulary`).

    Returns:
        New token id -> the word-piece ids its embedding starts from ({} when off).
    """
    ext = cfg.get("vocab_extension") or {}
    size, min_count = int(ext.get("size") or 0), int(ext.get("min_count", 5))
    if not size:
        return {}
    from mangaassist.data.normalize import normalize_text
    from mangaassist.data.vocabulary import japanese_tokens, romaji_pieces_text
    from mangaassist.model.backbone import add_tokens

    texts = [normalize_text(e.text) for e in dm.splits["train"]]  # as the DataModule feeds them
    vocab = dm.tokenizer.get_vocab()
    tokens = japanese_tokens(texts, vocab, size, min_count)
    added = add_tokens(dm.tokenizer, tokens, romaji_pieces_text)
    shown = " ".join(tokens[:12])
    print(
        f"[VOCAB] added={len(added)} of size={size} min_count={min_count} "
        f'vocab={len(vocab)}->{len(dm.tokenizer)} first="{shown}"',
        flush=True,
    )
    return added


def build(
    cfg: DictConfig, extra_callbacks: Sequence[L.Callback] = ()
) -> tuple[IntentDataModule, IntentClassifier, L.Trainer]:
    """Instantiate the DataModule, the model and the Trainer from a composed config.

    ``extra_callbacks`` join the configured ones (``sweep.py`` adds its pruning callback).
    With ``distill.teacher`` set, the teacher's logits over the training split are attached
    to the DataModule (:mod:`mangaassist.training.teacher`) and the configured loss is
    wrapped in a :class:`~mangaassist.model.distill.DistillationLoss`. With
    ``secondary.weight > 0`` the model gets the secondary-intent head and the DataModule's
    batches carry its multi-hot targets.
    ``data.module.rare_below: null`` and ``trainer.enable_progress_bar: null`` are resolved
    here and written back into ``cfg``, so the saved ``config.yaml`` holds what was used.
    """
    from hydra.utils import instantiate
    from omegaconf import open_dict

    from mangaassist.model.backbone import load_tokenizer
    from mangaassist.model.losses import class_weights
    from mangaassist.model.metrics import rare_class_indices
    from mangaassist.training.callbacks import EpochReport

    m = cfg.model
    tokenizer = load_tokenizer(m.name_or_path, m.init, m.allow_download)
    # Objects go in through partials: instantiate() would turn a dataclass kwarg into a config.
    make_dm = instantiate(cfg.data.module, _partial_=True)
    secondary_weight = secondary_weight_of(cfg)
    dm: IntentDataModule = make_dm(
        source=instantiate(cfg.data.source),
        tokenizer=tokenizer,
        name=cfg.data.name,
        secondary=secondary_weight > 0,
    )
    with open_dict(cfg):
        cfg.data.module.rare_below = dm.rare_below  # evaluation reads it from config.yaml
        if cfg.trainer.get("enable_progress_bar") is None:  # bars only on a terminal
            cfg.trainer.enable_progress_bar = sys.stdout.isatty()
    added = _extend_vocabulary(cfg, dm)  # before anything encodes a split
    weight = class_weights(dm.class_counts) if cfg.loss.class_weights else None
    criterion = instantiate(cfg.loss.criterion, weight=weight)
    distill = cfg.get("distill")
    if distill is not None and distill.get("teacher"):
        # The teacher runs once here (or its cache is read); batches then carry its logits.
        from mangaassist.model.distill import DistillationLoss
        from mangaassist.training.teacher import attach_teacher

        attach_teacher(
            dm,
            distill.teacher,
            distill.get("cache"),
            cfg.paths.output_dir,
            distill.get("batch_size", 64),
        )
        criterion = DistillationLoss(criterion, distill.temperature, distill.alpha)
    make_model = instantiate(cfg.model, _partial_=True, _convert_="all")
    model: IntentClassifier = make_model(
        num_labels=len(dm.labels),
        criterion=criterion,
        optimizer=instantiate(cfg.optim.optimizer),
        scheduler=instantiate(cfg.optim.scheduler),
        rare=rare_class_indices(dm.class_counts, dm.rare_below),
        secondary_weight=secondary_weight,
    )
    if secondary_weight > 0:
        model.init_secondary_prior(dm.secondary_rates())
    if added:
        from mangaassist.model.backbone import init_added_embeddings

        init_added_embeddings(model.encoder, added)
    # A callback set to null on the command line (callbacks.early_stopping=null) is off.
    callbacks = [instantiate(c) for c in (cfg.get("callbacks") or {}).values() if c is not None]
    callbacks += list(extra_callbacks)
    for cb in callbacks:
        if isinstance(cb, EpochReport):
            cb.labels = dm.labels
    loggers = [instantiate(lg) for lg in (cfg.get("logger") or {}).values()]
    trainer: L.Trainer = instantiate(cfg.trainer, callbacks=callbacks, logger=loggers or False)
    return dm, model, trainer


def train(cfg: DictConfig, callbacks: Sequence[L.Callback] = ()) -> dict[str, float]:
    """Check the config, train, pick the best checkpoint, score the test split, fill the run dir.

    Args:
        cfg: the composed ``conf/train.yaml``.
        callbacks: added to the configured callbacks (e.g. an Optuna pruning callback).

    Returns:
        Flat metrics: best validation figures (``val/...``), Lightning's test pass at the
        trainer's precision (``test_lightning/...``; ``test/...`` is the fp32 evaluation as
        served, which ``post_train`` writes to ``eval/summary.json``) and ``train_minutes``.
        ``sweep.py`` optimises one of them.

    Raises:
        UserError: a config value out of range (checked before any work), bad data.
    """
    from mangaassist.training.config_schema import validate_train_config

    validate_train_config(cfg)  # before torch is even imported: a bad value answers at once
    import lightning as L
    import torch
    from hydra.errors import InstantiationException

    from mangaassist.model.module import LIGHTNING_TEST
    from mangaassist.training.callbacks import EpochReport
    from mangaassist.training.run_dir import save_run_files

    run_dir = Path(cfg.paths.output_dir)
    L.seed_everything(cfg.seed, workers=True)
    if cfg.get("threads"):
        torch.set_num_threads(int(cfg.threads))
    try:
        dm, model, trainer = build(cfg, callbacks)
    except InstantiationException as err:  # Hydra wraps what the target raised
        if isinstance(err.__cause__, UserError):
            raise err.__cause__ from None
        raise
    rare = [dm.labels[i] for i in model.hparams.rare or []]
    print(
        f"[DATA] name={dm.name} train={len(dm.splits['train'])} val={len(dm.splits['val'])} "
        f"test={len(dm.splits['test'])} classes={len(dm.labels)} rare={rare} "
        f"rare_below={dm.rare_below:.4g}",
        flush=True,
    )
    if trainer.is_global_zero:
        save_run_files(run_dir, cfg, dm.labels, dm.class_counts, model, dm.tokenizer)
        dm.save_splits(run_dir / "data")

    start = time.perf_counter()
    trainer.fit(model, datamodule=dm)
    minutes = (time.perf_counter() - start) / 60

    ckpt = trainer.checkpoint_callback
    metrics: dict[str, float] = {
        "train_minutes": round(minutes, 3),
        "epochs_trained": trainer.current_epoch,
    }
    if ckpt is not None and ckpt.best_model_score is not None:
        metrics[f"best/{ckpt.monitor}"] = float(ckpt.best_model_score)
    report = next((c for c in trainer.callbacks if isinstance(c, EpochReport)), None)
    best = report.best_row(ckpt.monitor, ckpt.mode) if report and ckpt else None
    if best:  # rank zero only: the report keeps rows where it writes them
        metrics |= {k: v for k, v in best.items() if k.startswith("val/")}
        metrics["best_epoch"] = best["epoch"]
    if cfg.get("test_after_fit", True):
        ckpt_path = "best" if ckpt is not None and ckpt.best_model_path else None
        for key, value in trainer.test(model, datamodule=dm, ckpt_path=ckpt_path, verbose=False)[
            0
        ].items():
            metrics[key] = float(value)
        # Say which pass this is: the served figures come later, on the [EVAL] set=test line.
        print(
            f"[TEST] pass=lightning precision={trainer.precision} "
            f"{figures(metrics, LIGHTNING_TEST)}",
            flush=True,
        )
    if trainer.is_global_zero:
        write_json(run_dir / "metrics.json", metrics, sort_keys=True)
        print(f"[RUN] dir={run_dir} train_minutes={minutes:.2f}", flush=True)
    return metrics
