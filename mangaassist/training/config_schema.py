"""Typed checks of the composed training config, before any data is read or model built.

Hydra composes ``conf/train.yaml`` without types, so ``trainer.max_epochs=-1`` or
``optim.lr=fast`` would only fail deep inside Lightning or PyTorch. :func:`validate_train_config`
checks the keys people set (one pydantic model per config section, unknown keys allowed) and
raises a :class:`~mangaassist.errors.UserError` naming the key, the bad value and what is
allowed, which the entry points print as one ``error:`` line (exit status 2).

Example:
    >>> from omegaconf import OmegaConf
    >>> validate_train_config(OmegaConf.create({"optim": {"lr": "fast"}}))
    Traceback (most recent call last):
    ...
    mangaassist.errors.UserError: optim.lr=fast is not allowed: use a number > 0 (e.g. 1e-4)
"""

from __future__ import annotations

import json
from typing import Annotated, Any, Literal

from omegaconf import DictConfig, OmegaConf
from pydantic import (
    BaseModel,
    ConfigDict,
    Field,
    StrictBool,
    StrictFloat,
    StrictInt,
    ValidationError,
)

from mangaassist.data.truncation import TRUNCATIONS, check_truncation  # plain Python, no torch
from mangaassist.data.vocabulary import check_vocab_extension
from mangaassist.errors import UserError

PRECISIONS = ("32-true", "bf16-mixed", "16-mixed", "bf16-true", "16-true", "64-true")
STUDENT_RULES = ("bottom", "top", "alternate", "spread")  # = mangaassist.model.students.RULES
TEXT_PREPROCESSES = ("none", "romaji")  # = mangaassist.data.transliterate.TEXT_PREPROCESSES


def _f(**bounds: float) -> Any:
    """A float (an int is fine: ``optim.lr=1``) with Field bounds ``gt/ge/lt/le``."""
    return Annotated[StrictFloat | StrictInt, Field(**bounds)]


class _Section(BaseModel):
    model_config = ConfigDict(extra="allow", strict=True)


Count = Annotated[StrictInt, Field(ge=1)]
Fraction = Annotated[StrictFloat, Field(ge=0.0, le=1.0)]
Batches = Annotated[StrictInt, Field(ge=0)] | Fraction | None


class Top(_Section):
    seed: StrictInt = Field(0, description="a whole number")
    threads: Count | None = Field(None, description="a whole number >= 1, or null (all cores)")
    evaluate: StrictBool = Field(True, description="true or false")
    test_after_fit: StrictBool = Field(True, description="true or false")


class Trainer(_Section):
    max_epochs: Count = Field(3, description="a whole number of epochs >= 1")
    min_epochs: Annotated[StrictInt, Field(ge=0)] | None = Field(
        None, description="a whole number >= 0, or null"
    )
    limit_train_batches: Batches = Field(
        None, description="a batch count >= 0 or a fraction of the batches in [0, 1]"
    )
    limit_val_batches: Batches = Field(
        None, description="a batch count >= 0 or a fraction of the batches in [0, 1]"
    )
    limit_test_batches: Batches = Field(
        None, description="a batch count >= 0 or a fraction of the batches in [0, 1]"
    )
    log_every_n_steps: Count = Field(50, description="a whole number of steps >= 1")
    accumulate_grad_batches: Count = Field(1, description="a whole number >= 1")
    precision: Literal[PRECISIONS] = Field(  # type: ignore[valid-type]
        "32-true", description=f"one of {', '.join(PRECISIONS)}"
    )
    accelerator: Literal["auto", "cpu", "gpu", "cuda", "mps", "tpu"] = Field(
        "cpu", description="one of auto, cpu, gpu, cuda, mps, tpu"
    )
    num_nodes: Count = Field(1, description="a whole number >= 1")
    gradient_clip_val: _f(ge=0.0) | None = Field(1.0, description="a number >= 0, or null")
    gradient_clip_algorithm: Literal["norm", "value"] | None = Field(
        "norm", description="norm or value"
    )
    num_sanity_val_steps: Annotated[StrictInt, Field(ge=-1)] = Field(
        0, description="a whole number >= 0 (-1: the whole validation set)"
    )
    enable_progress_bar: StrictBool | None = Field(
        None, description="true, false, or null (on when stdout is a terminal)"
    )


class Optim(_Section):
    lr: _f(gt=0.0) = Field(1e-4, description="a number > 0 (e.g. 1e-4)")
    layer_decay: _f(gt=0.0, le=1.0) = Field(0.9, description="a number in (0, 1] (e.g. 0.9)")
    weight_decay: _f(ge=0.0) = Field(0.01, description="a number >= 0 (e.g. 0.01)")
    warmup_ratio: _f(ge=0.0, lt=1.0) = Field(
        0.1, description="a share of the steps in [0, 1) (e.g. 0.1)"
    )


class Optimizer(_Section):
    eps: _f(gt=0.0) = Field(1e-8, description="a number > 0 (e.g. 1e-8)")
    betas: Annotated[list[_f(ge=0.0, lt=1.0)], Field(min_length=2, max_length=2)] = Field(
        [0.9, 0.999], description="two numbers in [0, 1), e.g. [0.9,0.999]"
    )


class Model(_Section):
    init: Literal["pretrained", "config", "tiny"] = Field(
        "pretrained", description="pretrained, config or tiny"
    )
    pooling: Literal["mean", "cls"] = Field("mean", description="mean or cls")
    head: Literal["linear", "cosine"] = Field("linear", description="linear or cosine")
    head_scale: _f(gt=0.0) = Field(20.0, description="a number > 0 (e.g. 20)")
    dropout: _f(ge=0.0, lt=1.0) = Field(0.1, description="a probability in [0, 1)")
    max_length: Annotated[StrictInt, Field(ge=2, le=512)] = Field(
        128, description="a token count from 2 to 512 (the encoders' position limit)"
    )
    allow_download: StrictBool = Field(False, description="true or false")
    # Layer-reduced students (mangaassist/model/students.py; its RULES, kept here so this
    # check runs before transformers is imported).
    keep_layers: list[Annotated[StrictInt, Field(ge=0)]] | Literal[STUDENT_RULES] | None = Field(  # type: ignore[valid-type]
        None,
        description="a list of layer indices such as [0,2,4], one of "
        f"{', '.join(STUDENT_RULES)}, or null (all layers)",
    )
    num_layers: Count | None = Field(None, description="a whole number of layers >= 1, or null")


class Loss(_Section):
    class_weights: StrictBool = Field(False, description="true or false")
    sampler: Literal["balanced"] | None = Field(None, description="null or balanced")


class Criterion(_Section):
    gamma: _f(ge=0.0) = Field(2.0, description="a number >= 0 (focal gamma; 0 is plain CE)")
    label_smoothing: _f(ge=0.0, lt=1.0) = Field(0.0, description="a number in [0, 1)")


class Data(_Section):
    train: str | None = Field(None, description="a path to a .jsonl or .csv file")
    val: str | None = Field(None, description="a path to a .jsonl or .csv file, or null")
    test: str | None = Field(None, description="a path to a .jsonl or .csv file, or null")
    labels: list[str] | None = Field(None, description="a list of label names, or null")
    text_column: Annotated[str, Field(min_length=1)] = Field(
        "text", description="the name of the column holding the message"
    )
    label_column: Annotated[str, Field(min_length=1)] = Field(
        "label", description="the name of the column holding the intent"
    )


class DataModule(_Section):
    batch_size: Count = Field(32, description="a whole number >= 1")
    eval_batch_size: Count = Field(128, description="a whole number >= 1")
    val_fraction: _f(gt=0.0, lt=1.0) = Field(0.1, description="a share in (0, 1)")
    test_fraction: _f(gt=0.0, lt=1.0) = Field(0.1, description="a share in (0, 1)")
    rare_below: _f(gt=0.0, lt=1.0) | None = Field(
        None, description="a share of train in (0, 1), or null (half an even share)"
    )
    num_workers: Annotated[StrictInt, Field(ge=0)] = Field(0, description="a whole number >= 0")
    refit: StrictBool = Field(False, description="true or false")
    text_preprocess: Literal[TEXT_PREPROCESSES] | None = Field(  # type: ignore[valid-type]
        "none", description=f"one of {', '.join(TEXT_PREPROCESSES)}"
    )
    truncation: Literal[TRUNCATIONS] | None = Field(  # type: ignore[valid-type]
        "first", description=f"one of {', '.join(TRUNCATIONS)}"
    )
    truncation_head_tokens: Annotated[StrictInt, Field(ge=0)] | None = Field(
        64, description="a whole number of tokens >= 0 (at most model.max_length - 2), or null"
    )


class Distill(_Section):
    teacher: str | None = Field(None, description="a run directory, or null (no distillation)")
    temperature: _f(gt=0.0) = Field(2.0, description="a number > 0 (e.g. 2)")
    alpha: _f(ge=0.0, le=1.0) = Field(0.5, description="a weight in [0, 1] (e.g. 0.5)")
    cache: str | None = Field(None, description="a file path, or null (in the run directory)")
    batch_size: Count = Field(64, description="a whole number >= 1")


class Secondary(_Section):
    weight: _f(ge=0.0) = Field(0.0, description="a number >= 0 (0: no secondary head; e.g. 0.5)")
    threshold: _f(gt=0.0, lt=1.0) | None = Field(
        None, description="a probability in (0, 1), or null (chosen on validation)"
    )
    mask_primary: StrictBool = Field(True, description="true or false")


class VocabExtension(_Section):
    size: Annotated[StrictInt, Field(ge=0)] = Field(
        0, description="a whole number >= 0 (0: no tokens added; e.g. 1000)"
    )
    min_count: Count = Field(5, description="a whole number >= 1")


class EarlyStopping(_Section):
    patience: Annotated[StrictInt, Field(ge=0)] = Field(2, description="a whole number >= 0")
    mode: Literal["min", "max"] = Field("min", description="min or max")


class Checkpoint(_Section):
    mode: Literal["min", "max"] = Field("max", description="min or max")


class WeightAveraging(_Section):
    decay: _f(gt=0.0, lt=1.0) = Field(0.996, description="a number in (0, 1) (e.g. 0.996)")


# Config path -> its schema, in the order a user reads the config.
SECTIONS: dict[str, type[_Section]] = {
    "": Top,
    "trainer": Trainer,
    "optim": Optim,
    "optim.optimizer": Optimizer,
    "model": Model,
    "loss": Loss,
    "loss.criterion": Criterion,
    "data": Data,
    "data.module": DataModule,
    "distill": Distill,
    "secondary": Secondary,
    "vocab_extension": VocabExtension,
    "callbacks.early_stopping": EarlyStopping,
    "callbacks.checkpoint": Checkpoint,
    "callbacks.weight_averaging": WeightAveraging,
}

# What to say for a required key left at ``???``.
REQUIRED_HINTS = {
    "data.train": "data=files needs data.train=PATH, a JSON lines or CSV file with text and "
    "label columns (data.val and data.test are optional: they are carved from train)",
}


def _show(value: Any) -> str:
    return value if isinstance(value, str) else json.dumps(value)


def _plain(value: Any) -> Any:
    return OmegaConf.to_container(value, resolve=True) if OmegaConf.is_config(value) else value


def _missing(node: DictConfig, prefix: str = "") -> list[str]:
    """Keys left at ``???`` (interpolations are not resolved: ``${data.train}`` is not one)."""
    found = []
    for key in node:
        if OmegaConf.is_missing(node, key):
            found.append(f"{prefix}{key}")
        elif not OmegaConf.is_interpolation(node, key) and isinstance(node[key], DictConfig):
            found += _missing(node[key], f"{prefix}{key}.")
    return found


def validate_train_config(cfg: DictConfig) -> None:
    """Check the keys users set in a composed ``conf/train.yaml``.

    Raises:
        UserError: a required key without a value (``???``), or a value of the wrong type or
            out of range; the message names the key, the value and what is allowed.
    """
    missing = [k for k in _missing(cfg) if not k.startswith("hydra.")]
    if missing:
        key = missing[0]
        raise UserError(REQUIRED_HINTS.get(key, f"{key} has no value (???); set it: {key}=VALUE"))
    for path, schema in SECTIONS.items():
        node = OmegaConf.select(cfg, path) if path else cfg
        if not isinstance(node, DictConfig):
            continue  # a section this config does not have (or set to null)
        values = {k: _plain(node[k]) for k in schema.model_fields if k in node}
        try:
            schema.model_validate(values)
        except ValidationError as err:
            field = str(err.errors()[0]["loc"][0])
            key = f"{path}.{field}" if path else field
            allowed = schema.model_fields[field].description
            raise UserError(f"{key}={_show(values[field])} is not allowed: use {allowed}") from None
    _check_head_tokens(cfg)
    _check_vocab_extension(cfg)


def _check_vocab_extension(cfg: DictConfig) -> None:
    """``vocab_extension`` (its types checked above): no tokens to add when romaji removes
    the script."""
    size = OmegaConf.select(cfg, "vocab_extension.size", default=0)
    preprocess = OmegaConf.select(cfg, "data.module.text_preprocess", default=None) or "none"
    check_vocab_extension(size, preprocess)


def _check_head_tokens(cfg: DictConfig) -> None:
    """``head_tail``'s head fits the budget: 0 to ``model.max_length - 2`` word pieces."""
    module = OmegaConf.select(cfg, "data.module")
    max_length = OmegaConf.select(cfg, "model.max_length", default=None)
    if isinstance(module, DictConfig) and isinstance(max_length, int):
        check_truncation(module.get("truncation"), module.get("truncation_head_tokens"), max_length)
