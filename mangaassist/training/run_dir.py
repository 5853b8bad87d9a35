"""The run directory: what a training run leaves behind, and how later stages load it.

Layout (one folder per run)::

    config.yaml           resolved Hydra config
    labels.json           label names in index order
    class_counts.json     {label: training examples}
    backbone/config.json  encoder architecture (reloads without the original weights)
    tokenizer/            the tokenizer, as trained with
    checkpoints/best.ckpt best checkpoint by the configured criterion
    history.csv           one row per epoch; epochs/val_epoch<N>.json per-class detail
    metrics.json          final figures (best validation, test, minutes)
    secondary.json        the secondary-intent threshold chosen on val (runs with that head)
    data/val.jsonl, data/test.jsonl   the exact splits used
"""

from __future__ import annotations

import json
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import torch
from hydra.utils import instantiate
from omegaconf import DictConfig, OmegaConf
from transformers import AutoTokenizer, PreTrainedTokenizerBase

from mangaassist.atomic import write_json, write_text
from mangaassist.checkpoint import CHECKPOINT, load_checkpoint, require_model_files
from mangaassist.data.transliterate import CONFIG_KEY, check_text_preprocess, preprocessor
from mangaassist.data.truncation import CONFIG_KEY as TRUNCATION_KEY
from mangaassist.data.truncation import HEAD_KEY, Truncation, check_truncation
from mangaassist.errors import UserError
from mangaassist.model.module import IntentClassifier
from mangaassist.training.train import secondary_weight_of


def text_preprocess_of(cfg: DictConfig) -> str:
    """A run's ``data.module.text_preprocess``, checked; ``none`` for runs before the option.

    Raises:
        UserError: a value that is not ``none`` or ``romaji`` (naming the key).
    """
    return check_text_preprocess(OmegaConf.select(cfg, CONFIG_KEY, default=None), CONFIG_KEY)


def truncation_of(cfg: DictConfig) -> Truncation:
    """A run's ``data.module.truncation`` (and head size), checked; ``first`` for runs before
    the option.

    Raises:
        UserError: an unknown strategy, or a head size that does not fit ``model.max_length``
            (naming the key and the allowed values).
    """
    return check_truncation(
        OmegaConf.select(cfg, TRUNCATION_KEY, default=None),
        OmegaConf.select(cfg, HEAD_KEY, default=None),
        int(cfg.model.max_length),
    )


def require_run_files(run_dir: Path, checkpoint: str = CHECKPOINT) -> None:
    """Raise a UserError naming every model file ``run_dir`` lacks (``checkpoint`` included)."""
    require_model_files(run_dir, checkpoint)


def save_run_files(
    run_dir: Path,
    cfg: DictConfig,
    labels: list[str],
    class_counts: list[int],
    model: IntentClassifier,
    tokenizer: PreTrainedTokenizerBase,
) -> None:
    """Write everything except checkpoints and metrics (the trainer writes those)."""
    run_dir.mkdir(parents=True, exist_ok=True)
    write_text(run_dir / "config.yaml", OmegaConf.to_yaml(cfg, resolve=True))
    write_json(run_dir / "labels.json", labels)
    write_json(run_dir / "class_counts.json", dict(zip(labels, class_counts, strict=True)))
    model.encoder.config.save_pretrained(run_dir / "backbone")
    tokenizer.save_pretrained(run_dir / "tokenizer")


@dataclass
class LoadedRun:
    """A trained model ready to score text, with what it needs around it."""

    path: Path
    model: IntentClassifier
    tokenizer: PreTrainedTokenizerBase
    labels: list[str]
    config: DictConfig

    @property
    def max_length(self) -> int:
        return int(self.config.model.max_length)

    @property
    def text_preprocess(self) -> str:
        """``none`` or ``romaji``: what the run's tokenizer saw after normalisation."""
        return text_preprocess_of(self.config)

    @property
    def preprocess(self) -> Callable[[str], str]:
        """The run's text function before tokenising (normalise, + romaji when on)."""
        return preprocessor(self.text_preprocess)

    @property
    def truncation(self) -> Truncation:
        """What a message over ``max_length`` tokens kept in training (``first``/``head_tail``)."""
        return truncation_of(self.config)

    def token_ids(self, texts: Sequence[str]) -> list[list[int]]:
        """Each message's ids as the run's DataModule encoded it: preprocess, tokenize, truncate."""
        preprocess = self.preprocess
        seen = [preprocess(t) for t in texts]
        return self.truncation.encode(self.tokenizer, seen, self.max_length)

    @property
    def has_secondary(self) -> bool:
        """Whether the model has the secondary-intent head (trained with secondary.weight > 0)."""
        return self.model.secondary_head is not None

    @torch.no_grad()
    def predict_logits(self, texts: list[str], batch_size: int = 64) -> np.ndarray:
        """Raw logits (N, C) before temperature, in the order of ``texts``."""
        return self.predict_heads(texts, batch_size, secondary=False)[0]

    @torch.no_grad()
    def predict_heads(
        self, texts: list[str], batch_size: int = 64, secondary: bool = True
    ) -> tuple[np.ndarray, np.ndarray | None]:
        """Primary logits (N, C) before temperature and, in the same pass, the secondary
        head's logits (N, C) (None without that head, or with ``secondary=False``).
        """
        second = secondary and self.has_secondary
        out, out2 = [], []
        for start in range(0, len(texts), batch_size):
            # The run's preprocessing and truncation, as its DataModule encoded; padded on the
            # right to this batch's longest, as its batches were.
            rows = self.token_ids(texts[start : start + batch_size])
            width = max(map(len, rows))
            ids = torch.full((len(rows), width), self.tokenizer.pad_token_id, dtype=torch.long)
            mask = torch.zeros_like(ids)  # (B, T), 1 on real tokens
            for i, row in enumerate(rows):
                ids[i, : len(row)] = torch.tensor(row)
                mask[i, : len(row)] = 1
            if second:
                z, z2 = self.model.forward_with_secondary(ids, mask)
                out2.append(z2.float().numpy())
            else:
                z = self.model(ids, mask)
            out.append(z.float().numpy())
        empty = np.zeros((0, len(self.labels)), dtype=np.float32)
        primary = np.concatenate(out) if out else empty
        return primary, (np.concatenate(out2) if out2 else empty) if second else None


def load_run(run_dir: str | Path, checkpoint: str = CHECKPOINT) -> LoadedRun:
    """Rebuild the model of a run directory on CPU, in eval mode, from its own files only.

    Raises:
        UserError: the folder lacks a file the model needs (it names which).
    """
    run_dir = Path(run_dir)
    require_run_files(run_dir, checkpoint)
    cfg = OmegaConf.load(run_dir / "config.yaml")
    labels = json.loads((run_dir / "labels.json").read_text())
    model_cfg = OmegaConf.to_container(cfg.model, resolve=True)
    model_cfg.update(init="config", name_or_path=str(run_dir / "backbone"))
    model: IntentClassifier = instantiate(
        model_cfg,
        num_labels=len(labels),
        secondary_weight=secondary_weight_of(cfg),  # 0 (no head) for runs before the option
        _convert_="all",
    )
    # weights_only: a run directory may come from a shared registry; never unpickle code.
    state = load_checkpoint(run_dir / checkpoint)["state_dict"]
    # The training criterion's class weights are in the checkpoint but not needed to predict.
    result = model.load_state_dict(state, strict=False)
    if result.missing_keys:
        raise UserError(
            f"{run_dir / checkpoint} lacks weights {result.missing_keys[:5]}; "
            "it was not written by this run's model"
        )
    model.eval()
    tokenizer = AutoTokenizer.from_pretrained(run_dir / "tokenizer")
    return LoadedRun(run_dir, model, tokenizer, labels, cfg)
