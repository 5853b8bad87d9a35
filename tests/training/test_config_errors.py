"""A bad config value stops train.py before any work: one ``error:`` line, exit status 2."""

import os
import subprocess
import sys
from pathlib import Path

import pytest

from mangaassist.errors import UserError
from mangaassist.training.config_schema import validate_train_config
from tests.conftest import compose_cfg

ROOT = Path(__file__).resolve().parents[2]


@pytest.mark.parametrize(
    ("overrides", "message"),
    [
        (
            ["trainer.max_epochs=-1"],
            "error: trainer.max_epochs=-1 is not allowed: use a whole number of epochs >= 1",
        ),
        (["optim.lr=fast"], "error: optim.lr=fast is not allowed: use a number > 0 (e.g. 1e-4)"),
        (
            ["data=files"],
            "error: data=files needs data.train=PATH, a JSON lines or CSV file with text and "
            "label columns (data.val and data.test are optional: they are carved from train)",
        ),
    ],
)
def test_train_py_answers_a_bad_value_with_one_line(tmp_path, overrides, message):
    env = {**os.environ, "WANDB_MODE": "offline", "HF_HUB_OFFLINE": "1"}
    res = subprocess.run(
        [sys.executable, "train.py", "experiment=smoke", *overrides, f"hydra.run.dir={tmp_path}"],
        cwd=ROOT,
        env=env,
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert res.returncode == 2, res.stderr[-2000:]
    assert res.stderr.strip().splitlines() == [message]
    assert "[DATA" not in res.stdout  # nothing was generated, audited or loaded first
    assert not (tmp_path / "config.yaml").exists()
    assert message in (tmp_path / "train.log").read_text()  # the log says why it stopped


@pytest.mark.parametrize(
    ("override", "key", "allowed"),
    [
        ("trainer.precision=bf17", "trainer.precision=bf17", "one of 32-true, bf16-mixed"),
        ("trainer.limit_train_batches=1.5", "trainer.limit_train_batches=1.5", "a fraction"),
        ("trainer.max_epochs=2.5", "trainer.max_epochs=2.5", "a whole number"),
        ("optim.layer_decay=1.5", "optim.layer_decay=1.5", "(0, 1]"),
        ("optim.weight_decay=-0.1", "optim.weight_decay=-0.1", ">= 0"),
        ("optim.warmup_ratio=1.0", "optim.warmup_ratio=1.0", "[0, 1)"),
        ("optim.optimizer.betas=[0.9,1.2]", "optim.optimizer.betas=[0.9, 1.2]", "two numbers"),
        ("model.max_length=1000", "model.max_length=1000", "from 2 to 512"),
        ("model.pooling=max", "model.pooling=max", "mean or cls"),
        ("data.module.batch_size=0", "data.module.batch_size=0", ">= 1"),
        ("loss.criterion.gamma=-1", "loss.criterion.gamma=-1", ">= 0"),
        ("loss.criterion.label_smoothing=1", "loss.criterion.label_smoothing=1", "[0, 1)"),
        ("threads=0", "threads=0", ">= 1, or null"),
        ("evaluate=yes", "evaluate=yes", "true or false"),
        ("callbacks.early_stopping.patience=-1", "callbacks.early_stopping.patience=-1", ">= 0"),
    ],
)
def test_each_key_users_set_is_checked(tmp_path, override, key, allowed):
    cfg = compose_cfg(["experiment=smoke", override], tmp_path)
    with pytest.raises(UserError, match=r"^(.*) is not allowed: use (.*)$") as err:
        validate_train_config(cfg)
    assert str(err.value).startswith(f"{key} is not allowed: use ") and allowed in str(err.value)


@pytest.mark.parametrize(
    "overrides",
    [
        [],
        ["experiment=smoke"],
        ["experiment=banking77"],
        ["experiment=ablation_mangaassist"],
        ["averaging=ema", "loss=ce", "trainer=gpu"],
        ["data=files", "data.train=a.csv", "data.text_column=utterance", "data.labels=[a,b]"],
    ],
)
def test_the_shipped_configs_pass(tmp_path, overrides):
    validate_train_config(compose_cfg(overrides, tmp_path))
