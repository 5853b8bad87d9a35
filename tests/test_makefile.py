"""make setup: the Python version checked first, the torch source a documented setting."""

from __future__ import annotations

import shutil
import subprocess
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]
pytestmark = pytest.mark.skipif(shutil.which("make") is None, reason="make is not installed")


def _make(*args: str) -> subprocess.CompletedProcess:
    return subprocess.run(["make", *args], cwd=ROOT, capture_output=True, text=True, timeout=60)


def test_torch_index_is_passed_only_when_set(tmp_path):
    venv = f"VENV={tmp_path / 'v'}"
    default = [ln for ln in _make("-n", "setup", venv).stdout.splitlines() if "torch==" in ln]
    assert default[-1].split("pip ", 1)[1].strip() == "install -q torch==2.13.0"
    url = "https://download.pytorch.org/whl/cpu"
    cpu = [ln for ln in _make("-n", "setup", venv, f"TORCH_INDEX={url}").stdout.splitlines()]
    assert f"torch==2.13.0 --index-url {url}" in "\n".join(cpu)


def test_an_old_python_stops_setup_with_a_message(tmp_path):
    old = tmp_path / "python3.10"
    old.write_text('#!/bin/sh\n[ "$1" = "-V" ] && { echo "Python 3.10.12"; exit 0; }\nexit 1\n')
    old.chmod(0o755)
    proc = _make("setup", f"VENV={tmp_path / 'v'}", f"PYTHON={old}")
    assert proc.returncode != 0
    assert "needs Python >= 3.11" in proc.stderr and "Python 3.10.12" in proc.stderr
    assert not (tmp_path / "v").exists()  # stopped before creating anything
