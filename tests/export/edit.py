"""A copy of an exported bundle with its manifest edited: how old or broken bundles are made."""

from __future__ import annotations

import json
import shutil
from collections.abc import Callable
from pathlib import Path


def with_manifest(bundle_dir: Path, tmp_path: Path, change: Callable[[dict], object]) -> Path:
    """Copy ``bundle_dir`` to ``tmp_path/bundle`` and apply ``change`` to its manifest in place."""
    copy = tmp_path / "bundle"
    shutil.copytree(bundle_dir, copy)
    manifest = json.loads((copy / "manifest.json").read_text())
    change(manifest)
    (copy / "manifest.json").write_text(json.dumps(manifest))
    return copy
