"""Weight averaging: validate, checkpoint and test an exponential moving average of the weights.

Lightning's ``EMAWeightAveraging`` keeps the average, swaps it in for validation and writes it
as the checkpoint's ``state_dict`` (the raw weights go to ``current_model_state``), so every
later stage (test, calibration, export) reads the averaged model from ``best.ckpt``.

    python train.py averaging=ema callbacks.weight_averaging.decay=0.998
"""

from __future__ import annotations

from typing import Any

import lightning as L
from lightning.pytorch.callbacks import EMAWeightAveraging
from lightning.pytorch.trainer.states import TrainerFn


class EMAWeights(EMAWeightAveraging):
    """EMA of the weights, updated every optimiser step from ``update_starting_at_step`` on.

    ``decay`` sets the horizon: about ``1 / (1 - decay)`` steps (0.996 ~ 250 steps, one epoch of
    BANKING77 at batch 32). There is no bias correction: the average starts as a copy of the
    weights at its first update, so start it after the first steps or keep the horizon short.

    Differs from Lightning's class in one place: restoring a checkpoint to *test* it leaves the
    averaged ``state_dict`` in place. Lightning's ``on_load_checkpoint`` runs on
    ``trainer.test(ckpt_path=...)`` too, and would load ``current_model_state`` (the raw,
    non-averaged weights) over it, so the test figures would not describe the saved model.
    """

    def __init__(self, decay: float = 0.996, update_starting_at_step: int | None = None) -> None:
        if not 0.0 < decay < 1.0:
            raise ValueError(
                f"EMA decay must be in (0, 1), got {decay}; 0.99-0.999 is usual "
                "(the horizon is about 1 / (1 - decay) optimiser steps)"
            )
        super().__init__(decay=decay, update_starting_at_step=update_starting_at_step)
        self.decay = decay

    def on_load_checkpoint(
        self, trainer: L.Trainer, pl_module: L.LightningModule, checkpoint: dict[str, Any]
    ) -> None:
        if trainer.state.fn == TrainerFn.FITTING:  # resuming: restore both weight sets
            super().on_load_checkpoint(trainer, pl_module, checkpoint)
