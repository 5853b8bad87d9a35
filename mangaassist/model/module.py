"""The intent classifier: a transformer encoder, a pooling choice, dropout and a head.

``logits = head(dropout(pool(encoder(x))))``; probabilities are ``softmax(logits / T)`` with
the temperature ``T`` a buffer carried in the checkpoint (1.0 until calibration fits it).
Pooling is ``cls`` (first token: the DistilBERT design) or ``mean`` over real tokens (how
all-MiniLM-L6-v2 was pre-trained; 86 vs 62 BANKING77 accuracy after one epoch). The head is
``linear`` (``W x + b``, the default) or ``cosine`` (:class:`CosineHead`, scaled cosine
similarity to one learned vector per class, the geometry all-MiniLM-L6-v2 was pre-trained in;
a tie with ``linear`` on BANKING77 validation, experiments/banking77/).

Secondary intents (``secondary_weight > 0``, off by default): a second, linear multi-label
head over the same pooled (and dropped-out) vector gives ``secondary_logits`` (B, C), one
sigmoid per intent, trained with BCE on the multi-hot of ``secondary_intents``:
``loss = primary + secondary_weight * BCE`` (:func:`~mangaassist.model.losses.with_secondary`).
``forward`` still returns the primary logits alone, so export and serving see the same graph;
with weight 0 there is no second head at all (same parameters, checkpoint and outputs).
"""

from __future__ import annotations

from collections.abc import Callable, Sequence

import lightning as L
import torch
from torch import Tensor, nn

from mangaassist.model.backbone import load_backbone
from mangaassist.model.distill import DistillationLoss
from mangaassist.model.losses import secondary_bce, with_secondary
from mangaassist.model.metrics import ClassificationMetrics
from mangaassist.model.param_groups import layerwise_param_groups

POOLINGS = ("cls", "mean")
HEADS = ("linear", "cosine")
# Lightning's own test pass runs at the trainer's precision (bf16-mixed on the CPU default) and
# differs from the fp32 evaluation as served (eval/summary.json). One meaning per key: that
# evaluation owns ``test/...``; this pass logs ``test_lightning/...``.
LIGHTNING_TEST = "test_lightning"


def pool(hidden: Tensor, mask: Tensor, how: str) -> Tensor:
    """``hidden`` (B, T, H), ``mask`` (B, T) of 0/1 -> (B, H)."""
    if how == "cls":
        return hidden[:, 0]
    m = mask.unsqueeze(-1).to(hidden.dtype)  # (B, T, 1)
    return (hidden * m).sum(1) / m.sum(1).clamp(min=1.0)


class CosineHead(nn.Module):
    """``logits = scale · cos(x, w_c)`` for each class ``c``: (B, H) -> (B, C), no bias.

    Only directions matter, so a message's score depends on which class vector it points at, not
    on its embedding's norm; ``scale`` sets the softmax's sharpness (logits lie in
    ``[-scale, scale]``; sentence-transformers trained all-MiniLM-L6-v2 at 20).

    Example:
        >>> head = CosineHead(384, 77)
        >>> head(torch.randn(2, 384)).abs().max() <= 20.0
        tensor(True)
    """

    def __init__(self, in_features: int, out_features: int, scale: float = 20.0) -> None:
        super().__init__()
        if scale <= 0:
            raise ValueError(f"head_scale must be > 0, got {scale}")
        self.in_features, self.out_features, self.scale = in_features, out_features, scale
        self.weight = nn.Parameter(torch.empty(out_features, in_features))
        nn.init.normal_(self.weight, std=0.02)  # the encoder's own init; the norm cancels anyway

    def forward(self, x: Tensor) -> Tensor:
        w = nn.functional.normalize(self.weight, dim=-1)  # (C, H)
        return self.scale * nn.functional.linear(nn.functional.normalize(x, dim=-1), w)


class IntentClassifier(L.LightningModule):
    """LightningModule for intent classification.

    Args:
        family, name_or_path, init, allow_download: the encoder, as
            :func:`~mangaassist.model.backbone.load_backbone` takes them.
        keep_layers, num_layers: a layer-reduced student of that encoder (None: all layers);
            see :mod:`mangaassist.model.students`.
        num_labels: C.
        name: the model's config name (``minilm``, ``distilbert``, ...), kept in the checkpoint.
        max_length: truncation in tokens, kept so serving truncates as training did.
        pooling: ``cls`` or ``mean``.
        dropout: before the head.
        head: ``linear`` (``W x + b``) or ``cosine`` (:class:`CosineHead`).
        head_scale: the cosine head's ``scale``; unused by ``linear``.
        lr: ``eta_base``, the head's learning rate.
        layer_decay: ``xi``; layer ``l`` trains at ``lr * xi ** (L - l)``.
        weight_decay: AdamW decay on weight matrices.
        warmup_ratio: share of all optimiser steps spent warming up linearly from 0.
        criterion: the training loss ``(logits, target) -> scalar`` (built with class weights),
            or a :class:`~mangaassist.model.distill.DistillationLoss` around it, which reads
            the teacher's logits from each training batch (``batch["teacher_logits"]``).
        optimizer: ``params -> Optimizer`` (a ``_partial_`` AdamW from config).
        scheduler: ``(optimizer, num_warmup_steps, num_training_steps) -> LRScheduler``.
        rare: indices of the rare classes, for ``rare_recall``.
        secondary_weight: weight of the secondary-intent BCE; > 0 adds the second head
            (``secondary_head``, trained at ``lr`` in its own param groups) and needs
            ``secondary_targets`` (B, C) in every batch; 0 (default): no second head.
    """

    def __init__(
        self,
        family: str,
        num_labels: int,
        name_or_path: str | None = None,
        init: str = "pretrained",
        allow_download: bool = False,
        name: str = "",
        max_length: int = 128,
        pooling: str = "mean",
        dropout: float = 0.1,
        head: str = "linear",
        head_scale: float = 20.0,
        lr: float = 2e-5,
        layer_decay: float = 0.8,
        weight_decay: float = 0.01,
        warmup_ratio: float = 0.1,
        criterion: nn.Module | None = None,
        optimizer: Callable | None = None,
        scheduler: Callable | None = None,
        rare: list[int] | None = None,
        keep_layers: list[int] | str | None = None,
        num_layers: int | None = None,
        secondary_weight: float = 0.0,
    ) -> None:
        super().__init__()
        if pooling not in POOLINGS:
            raise ValueError(f"pooling must be one of {POOLINGS}, got '{pooling}'")
        if head not in HEADS:
            raise ValueError(f"model.head must be one of {HEADS}, got '{head}'")
        if secondary_weight < 0:
            raise ValueError(f"secondary.weight must be >= 0, got {secondary_weight}")
        self.save_hyperparameters(ignore=["criterion", "optimizer", "scheduler"])
        self.encoder = load_backbone(
            family, name_or_path, init, allow_download, keep_layers, num_layers
        )
        self.encoder.train()  # from_pretrained returns eval mode: dropout would stay off
        hidden = (
            self.encoder.config.hidden_size
            if hasattr(self.encoder.config, "hidden_size")
            else self.encoder.config.dim
        )
        self.dropout = nn.Dropout(dropout)
        self.head = (
            CosineHead(hidden, num_labels, head_scale)
            if head == "cosine"
            else nn.Linear(hidden, num_labels)
        )
        # Multi-label secondary intents: one logit per intent (C), created only when trained,
        # after the primary head so the primary initialisation is the same either way.
        self.secondary_head = nn.Linear(hidden, num_labels) if secondary_weight > 0 else None
        self.register_buffer("temperature", torch.tensor(1.0))
        self.criterion = criterion if criterion is not None else nn.CrossEntropyLoss()
        self.eval_loss = nn.CrossEntropyLoss()  # val/test loss is plain NLL whatever we train with
        self._optimizer = optimizer
        self._scheduler = scheduler
        self.val_metrics = ClassificationMetrics(num_labels, rare)
        self.test_metrics = ClassificationMetrics(num_labels, rare)

    def features(self, input_ids: Tensor, attention_mask: Tensor) -> Tensor:
        """``input_ids``, ``attention_mask`` (B, T) -> the heads' input (B, H): pooled, dropout."""
        hidden = self.encoder(input_ids=input_ids, attention_mask=attention_mask).last_hidden_state
        return self.dropout(pool(hidden, attention_mask, self.hparams.pooling))

    def forward(self, input_ids: Tensor, attention_mask: Tensor) -> Tensor:
        """``input_ids``, ``attention_mask`` (B, T) -> logits (B, C), before temperature."""
        return self.head(self.features(input_ids, attention_mask))

    def init_secondary_prior(self, rates: Sequence[float], floor: float = 1e-4) -> None:
        """Start the secondary head at the training split's base rates: bias_c = logit(rate_c).

        A zero bias starts every intent at probability 0.5 while about 2 in 100 (message,
        intent) pairs are positive; at fine-tuning learning rates (AdamW moves a bias about
        ``lr`` per step) most of the budget went into walking the bias down to the base rate,
        and the head ended near it (val F1 0.19 after one epoch). As RetinaNet's prior
        initialisation does, begin there and spend the steps on telling messages apart.

        Args:
            rates: (C,) share of training messages with each intent as a secondary one.
            floor: rates are clipped to ``[floor, 1 - floor]`` (an intent never secondary).

        Raises:
            RuntimeError: the model has no secondary head.
        """
        if self.secondary_head is None:
            raise RuntimeError("this model has no secondary head (trained with secondary.weight=0)")
        p = torch.tensor(list(rates), dtype=torch.float32).clamp(floor, 1 - floor)  # (C,)
        if p.shape != self.secondary_head.bias.shape:
            raise ValueError(f"{p.numel()} rates for {self.secondary_head.out_features} intents")
        with torch.no_grad():
            self.secondary_head.bias.copy_(torch.log(p) - torch.log1p(-p))

    def forward_with_secondary(
        self, input_ids: Tensor, attention_mask: Tensor
    ) -> tuple[Tensor, Tensor]:
        """(B, T) ids and mask -> (primary logits (B, C), secondary logits (B, C)), one pass.

        Raises:
            RuntimeError: the model has no secondary head (trained with secondary.weight 0).
        """
        if self.secondary_head is None:
            raise RuntimeError("this model has no secondary head (trained with secondary.weight=0)")
        z = self.features(input_ids, attention_mask)  # (B, H)
        return self.head(z), self.secondary_head(z)

    def _secondary_targets(self, batch: dict) -> Tensor:
        if "secondary_targets" not in batch:
            raise RuntimeError(
                "the secondary head needs secondary_targets (B, C) in each batch: build "
                "IntentDataModule with secondary=True (train() does when secondary.weight > 0)"
            )
        return batch["secondary_targets"]

    @torch.no_grad()
    def predict_proba(self, input_ids: Tensor, attention_mask: Tensor) -> Tensor:
        """Calibrated probabilities ``softmax(logits / T)``, (B, C)."""
        return (self(input_ids, attention_mask) / self.temperature).softmax(-1)

    def training_step(self, batch: dict, batch_idx: int) -> Tensor:
        secondary = None
        if self.secondary_head is None:
            logits = self(batch["input_ids"], batch["attention_mask"])
        else:
            logits, secondary = self.forward_with_secondary(
                batch["input_ids"], batch["attention_mask"]
            )
        n = len(batch["labels"])
        if isinstance(self.criterion, DistillationLoss):
            if "teacher_logits" not in batch:
                raise RuntimeError(
                    "distillation needs the teacher's logits in each training batch: "
                    "call IntentDataModule.set_teacher_logits before fitting"
                )
            soft, hard = self.criterion.parts(logits, batch["labels"], batch["teacher_logits"])
            loss = self.criterion.mix(soft, hard)
            self.log("train/kd_loss", soft, batch_size=n)  # T^2 * KL, before alpha
            self.log("train/hard_loss", hard, batch_size=n)
        else:
            loss = self.criterion(logits, batch["labels"])
        if secondary is not None:
            target = self._secondary_targets(batch)
            self.log("train/primary_loss", loss, batch_size=n)
            self.log("train/secondary_loss", secondary_bce(secondary, target), batch_size=n)
            loss = with_secondary(loss, secondary, target, self.hparams.secondary_weight)
        self.log("train/loss", loss, prog_bar=True, batch_size=n)
        return loss

    def _eval_step(self, batch: dict, stage: str, metrics: ClassificationMetrics) -> None:
        if self.secondary_head is None:
            logits = self(batch["input_ids"], batch["attention_mask"])
        else:
            logits, secondary = self.forward_with_secondary(
                batch["input_ids"], batch["attention_mask"]
            )
            bce = secondary_bce(secondary, self._secondary_targets(batch))
            self.log(f"{stage}/secondary_loss", bce, sync_dist=True, batch_size=len(logits))
        loss = self.eval_loss(logits.float(), batch["labels"])
        self.log(f"{stage}/loss", loss, prog_bar=True, sync_dist=True, batch_size=len(logits))
        metrics.update(logits / self.temperature, batch["labels"])

    def validation_step(self, batch: dict, batch_idx: int) -> None:
        self._eval_step(batch, "val", self.val_metrics)

    def test_step(self, batch: dict, batch_idx: int) -> None:
        self._eval_step(batch, LIGHTNING_TEST, self.test_metrics)

    def _log_epoch(self, stage: str, metrics: ClassificationMetrics) -> None:
        out = metrics.compute()
        for key in ("acc", "macro_f1", "rare_recall", "ece", "conf_correct", "conf_wrong"):
            self.log(f"{stage}/{key}", out[key].float())
        # Per-class tensors and the confusion matrix are not scalars: callbacks read them here.
        self.epoch_metrics = {f"{stage}/{k}": v.detach().cpu() for k, v in out.items()}
        metrics.reset()

    def on_validation_epoch_end(self) -> None:
        self._log_epoch("val", self.val_metrics)

    def on_test_epoch_end(self) -> None:
        self._log_epoch(LIGHTNING_TEST, self.test_metrics)

    def configure_optimizers(self) -> dict:
        h = self.hparams
        extra = {} if self.secondary_head is None else {"secondary": self.secondary_head}
        groups = layerwise_param_groups(
            self.encoder, self.head, h.lr, h.layer_decay, h.weight_decay, extra_heads=extra
        )
        make = self._optimizer or torch.optim.AdamW
        overrides = {}
        if "mixed" in str(self.trainer.precision) and getattr(make, "keywords", {}).get("fused"):
            # Lightning will not clip gradients around an optimizer that unscales them itself
            # (fused AdamW); the multi-tensor (foreach) kernel is the next fastest.
            overrides = {"fused": False, "foreach": True}
        optimizer = make(groups, **overrides)
        total = int(self.trainer.estimated_stepping_batches)
        warmup = int(h.warmup_ratio * total)
        if self._scheduler is None:
            return {"optimizer": optimizer}
        scheduler = self._scheduler(optimizer, num_warmup_steps=warmup, num_training_steps=total)
        return {
            "optimizer": optimizer,
            "lr_scheduler": {"scheduler": scheduler, "interval": "step"},
        }
