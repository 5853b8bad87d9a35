"""A tiny trained run exported to a bundle (fp32 + int8 when accepted), shared by serve tests."""

from __future__ import annotations

import socket
from pathlib import Path

import pytest

from tests.conftest import TINY, compose_cfg, write_toy_jsonl


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
