"""Every option of every config group composes, and instantiates (tiny models stand in)."""

from pathlib import Path

import pytest
import torch
from hydra.utils import instantiate

from mangaassist.model.losses import FocalLoss
from mangaassist.training.train import build
from tests.conftest import CONF, compose_cfg


def options(group: str) -> list[str]:
    return sorted(p.stem for p in (CONF / group).glob("*.yaml"))


@pytest.mark.parametrize("model", options("model"))
def test_every_model_composes_and_builds_as_tiny(model, tmp_path):
    cfg = compose_cfg([f"model={model}", "model.init=tiny"], tmp_path)
    assert cfg.model.name == model
    net = instantiate(cfg.model, num_labels=10, _convert_="all")
    ids = torch.randint(5, 500, (2, 6))
    assert net(ids, torch.ones_like(ids)).shape == (2, 10)
    # MiniLM and its layer-reduced students (minilm_l4/l3/l2) pool by mean, as pre-trained.
    expected_pooling = "mean" if model.startswith("minilm") else "cls"
    assert net.hparams.pooling == expected_pooling


@pytest.mark.parametrize("loss", options("loss"))
def test_every_loss_composes(loss, tmp_path):
    cfg = compose_cfg([f"loss={loss}"], tmp_path)
    crit = instantiate(
        cfg.loss.criterion, weight=torch.ones(3) / 3 if cfg.loss.class_weights else None
    )
    assert isinstance(crit, FocalLoss if loss.startswith("focal") else torch.nn.CrossEntropyLoss)
    assert cfg.loss.class_weights == (loss in ("weighted_ce", "focal_weighted"))
    assert cfg.loss.sampler == ("balanced" if loss == "oversampling" else None)
    if loss.startswith("focal"):
        assert crit.gamma == 2.0


@pytest.mark.parametrize("data", ["banking77", "clinc150", "clinc150_imbalanced"])
def test_public_datasets_build(data, tmp_path):
    cfg = compose_cfg(["experiment=smoke", f"data={data}"], tmp_path)
    dm, model, _ = build(cfg)
    n_labels = {"banking77": 77}.get(data, 150)
    assert len(dm.labels) == n_labels == model.head.out_features
    assert dm.splits["val"] and dm.splits["test"]
    if data == "banking77":  # validation carved from train, test file untouched
        assert len(dm.splits["train"]) + len(dm.splits["val"]) == 10003
        assert len(dm.splits["test"]) == 3080


@pytest.mark.parametrize("trainer", options("trainer"))
def test_every_trainer_config_composes(trainer, tmp_path):
    cfg = compose_cfg([f"trainer={trainer}"], tmp_path)
    assert cfg.trainer.gradient_clip_val == 1.0
    assert cfg.trainer.use_distributed_sampler is False
    if trainer == "gpu":
        assert cfg.trainer.precision == "bf16-mixed"
    if trainer == "ddp":
        assert cfg.trainer.strategy == "ddp"


@pytest.mark.parametrize("group", ["logger", "callbacks", "optim", "experiment"])
def test_other_groups_compose(group, tmp_path):
    for option in options(group):
        cfg = compose_cfg([f"{group}={option}"], tmp_path)
        assert cfg.optim.lr > 0


def test_defaults_are_the_documented_ones(tmp_path):
    cfg = compose_cfg([], tmp_path)
    assert (cfg.data.name, cfg.model.name, cfg.loss.name) == (
        "mangaassist",
        "minilm",
        "focal_weighted",
    )
    assert (cfg.optim.lr, cfg.optim.layer_decay) == (1e-4, 0.9)
    assert (cfg.optim.warmup_ratio, cfg.trainer.gradient_clip_val, cfg.trainer.max_epochs) == (
        0.1,
        1.0,
        3,
    )
    assert cfg.data.module.batch_size == 32 and cfg.model.max_length == 128
    assert cfg.callbacks.checkpoint.monitor == "val/macro_f1"
    assert cfg.callbacks.early_stopping.monitor == "val/loss"
    assert Path(cfg.paths.output_dir) == tmp_path


def test_averaging_is_off_unless_chosen(tmp_path):
    assert compose_cfg([], tmp_path).callbacks.get("weight_averaging") is None
    cfg = compose_cfg(["averaging=ema", "callbacks.weight_averaging.decay=0.99"], tmp_path)
    cb = instantiate(cfg.callbacks.weight_averaging)
    assert type(cb).__name__ == "EMAWeights" and cb.decay == 0.99


def test_data_configs_share_a_base_that_is_no_dataset():
    """The shared DataModule settings live in conf/data/_base.yaml, not in one dataset's file."""
    import yaml

    base = yaml.safe_load((CONF / "data" / "_base.yaml").read_text())
    assert base["name"] == "???" and base["source"] == "???"  # must be named by each config
    for stem in options("data"):
        if stem == "_base":
            continue
        raw = yaml.safe_load((CONF / "data" / f"{stem}.yaml").read_text())
        parent = raw["defaults"][0]
        assert parent == "_base" or (CONF / "data" / f"{parent}.yaml").is_file(), stem
        while parent != "_base":  # a variant (clinc150_imbalanced) inherits a dataset
            parent = yaml.safe_load((CONF / "data" / f"{parent}.yaml").read_text())["defaults"][0]
        assert "banking77" not in raw["defaults"] or stem == "banking77", stem
