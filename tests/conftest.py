"""Shared fixtures: the real config, composed and shrunk to a tiny CPU run in tmp_path."""

from __future__ import annotations

import json
import os
import random
import socket
from pathlib import Path

import pytest
from hydra import compose, initialize_config_dir
from omegaconf import DictConfig, open_dict

from mangaassist.data.schema import INTENTS

CONF = Path(__file__).resolve().parents[1] / "conf"
os.environ.setdefault("WANDB_MODE", "offline")
os.environ.setdefault("HF_HUB_OFFLINE", "1")

TINY = [
    "experiment=smoke",
    "evaluate=false",
    "trainer.enable_progress_bar=false",
    "trainer.max_epochs=1",
    "trainer.limit_train_batches=3",
    "trainer.limit_val_batches=2",
    "trainer.limit_test_batches=2",
]

# Per intent a few phrasings, so a tiny dataset has learnable structure and varied lengths.
_WORDS = {
    "product_discovery": ["show me horror manga", "any new isekai volumes", "box sets under 50"],
    "product_question": ["is vol 12 of one piece in stock", "is chainsaw man finished"],
    "recommendation": ["something like naruto but darker", "i loved frieren what next"],
    "faq": ["how long does shipping to canada take", "do you accept paypal"],
    "order_tracking": ["where is my order", "when will my package arrive"],
    "return_request": ["vol 3 came ripped can i swap it", "cancel my order pls"],
    "promotion": ["any sales this weekend", "is there a student discount"],
    "checkout_help": ["my card keeps getting declined", "coupon says invalid at checkout"],
    "escalation": ["let me talk to a real person", "this is unacceptable i want a human"],
    "chitchat": ["hi there", "thanks a lot", "are you a bot"],
}


def write_toy_jsonl(path: Path, n_per_class: int = 12, seed: int = 0) -> Path:
    """A small, valid JSONL in the example contract: every intent, conversations of 2."""
    rng = random.Random(seed)
    lines = []
    for label in INTENTS:
        for i in range(n_per_class):
            # A distinct tail per example: normalised duplicates would merge into one group.
            tail = " ".join(
                rng.choice(["pls", "asap", "thx", "lol", "rn", "ok"])
                for _ in range(rng.randint(0, 6))
            )
            text = f"{rng.choice(_WORDS[label])} {tail} {i}"
            lines.append(
                {
                    "id": f"{label}-{i}",
                    "text": text,
                    "label": label,
                    "conversation_id": f"{label}-c{i // 2}",
                }
            )
    path.write_text("\n".join(json.dumps(x) for x in lines) + "\n")
    return path


def compose_cfg(overrides: list[str], output_dir: Path) -> DictConfig:
    """Compose ``conf/train.yaml`` as ``train.py`` would, with outputs in ``output_dir``."""
    with initialize_config_dir(str(CONF), version_base="1.3"):
        cfg = compose("train", overrides=list(overrides))
    with open_dict(cfg):
        cfg.paths.output_dir = str(output_dir)
    return cfg


@pytest.fixture
def toy_file(tmp_path: Path) -> Path:
    return write_toy_jsonl(tmp_path / "toy.jsonl")


@pytest.fixture
def tiny_cfg(tmp_path: Path, toy_file: Path):
    """Factory: a tiny-model config on the toy file (``data=files``), plus extra overrides."""

    def make(*extra: str) -> DictConfig:
        return compose_cfg(
            [*TINY, "data=files", f"data.train={toy_file}", *extra], tmp_path / "run"
        )

    return make


def free_port() -> int:
    """A port nothing listens on now (bound to 127.0.0.1:0, then released)."""
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


@pytest.fixture(scope="session")
def tiny_run(tmp_path_factory) -> Path:
    from mangaassist.training.train import train

    root = tmp_path_factory.mktemp("serve")
    toy = write_toy_jsonl(root / "toy.jsonl", n_per_class=6)
    train(compose_cfg([*TINY, "data=files", f"data.train={toy}"], root / "run"))
    return root / "run"


@pytest.fixture(scope="session")
def tiny_bundle(tiny_run: Path) -> Path:
    from mangaassist.export.bundle import export_run

    return export_run(tiny_run, tiny_run / "export")
