"""Atomic file writes: a reader sees the old file or the new one, never half of either.

Plus :func:`file_sha256`, the one hash of a file's bytes, that a reader checks a written
file (a cached corpus, a bundle's files, a checkpoint) against.

Every writer goes through :func:`replacing`: the content goes to a temporary file in the
same folder (so the rename never crosses a filesystem), is flushed to disk, and is swapped
in with ``os.replace``. A killed process leaves at most a hidden ``.NAME.tmp-PID`` file,
never a truncated ``NAME`` that a later run would take for a complete one.

Standard library only, so every stage can import it.

Example:
    >>> import tempfile
    >>> from pathlib import Path
    >>> folder = Path(tempfile.mkdtemp())
    >>> write_json(folder / "metrics.json", {"acc": 0.9})
    >>> (folder / "metrics.json").read_text()
    '{\\n "acc": 0.9\\n}'
    >>> sorted(p.name for p in folder.iterdir())
    ['metrics.json']
"""

from __future__ import annotations

import contextlib
import hashlib
import json
import os
from collections.abc import Iterator
from pathlib import Path
from typing import Any


@contextlib.contextmanager
def replacing(path: str | Path) -> Iterator[Path]:
    """Yield a temporary path beside ``path``; on a clean exit it replaces ``path``.

    Write the whole content to the yielded path (e.g. ``torch.save(obj, tmp)``). On an
    exception the temporary file is removed and ``path`` is left as it was.

    Args:
        path: the file to write; its folder is created if needed.
    """
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_name(f".{path.name}.tmp-{os.getpid()}")
    try:
        yield tmp
        # fsync first: without it a power loss can leave the renamed file empty.
        with open(tmp, "rb") as f:
            os.fsync(f.fileno())
        os.replace(tmp, path)
    finally:
        tmp.unlink(missing_ok=True)


def write_bytes(path: str | Path, data: bytes) -> None:
    """Write ``data`` to ``path`` atomically."""
    with replacing(path) as tmp:
        tmp.write_bytes(data)


def write_text(path: str | Path, text: str, encoding: str = "utf-8") -> None:
    """Write ``text`` to ``path`` atomically (UTF-8 unless told)."""
    write_bytes(path, text.encode(encoding))


def write_json(path: str | Path, obj: Any, *, indent: int | None = 1, **kwargs: Any) -> None:
    """Write ``obj`` as JSON to ``path`` atomically; ``kwargs`` go to :func:`json.dumps`."""
    write_text(path, json.dumps(obj, indent=indent, **kwargs))


def file_sha256(path: str | Path) -> str:
    """Hex sha256 of one file's bytes, read in 1 MiB chunks."""
    digest = hashlib.sha256()
    with Path(path).open("rb") as f:
        for chunk in iter(lambda: f.read(1 << 20), b""):
            digest.update(chunk)
    return digest.hexdigest()
