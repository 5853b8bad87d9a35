"""The ``mangaassist`` command itself: a parser that starts fast, --version, friendly messages."""

import subprocess
import sys
from pathlib import Path

import pytest

from mangaassist import __version__
from mangaassist.cli import main

ROOT = Path(__file__).resolve().parents[1]


def test_building_the_parser_imports_no_heavy_library():
    code = (
        "import mangaassist.cli, sys; mangaassist.cli.build_parser(); "
        "print([m for m in ('torch', 'transformers', 'lightning') if m in sys.modules])"
    )
    res = subprocess.run(
        [sys.executable, "-c", code], cwd=ROOT, capture_output=True, text=True, timeout=60
    )
    assert res.returncode == 0, res.stderr[-2000:]
    assert res.stdout.strip() == "[]"


def test_version(capsys):
    with pytest.raises(SystemExit) as exit_:
        main(["--version"])
    assert exit_.value.code == 0
    assert capsys.readouterr().out.strip() == f"mangaassist {__version__}" == "mangaassist 0.1.0"


def test_empty_registry_says_how_to_add_a_version(tmp_path, capsys):
    assert main(["registry", "--root", str(tmp_path / "reg"), "list"]) == 0
    out = capsys.readouterr().out.strip()
    assert out == (
        f"no model versions yet in the registry at {tmp_path / 'reg'}/; "
        "add one with: mangaassist registry register RUN_DIR"
    )
