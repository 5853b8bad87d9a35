"""A file-system model registry: numbered versions, a champion pointer, an append-only history.

Layout under the root (``--root``, ``$MANGAASSIST_REGISTRY`` or ``./registry``)::

    versions/v1/          a run directory (loadable by load_run) plus version.json and MODEL_CARD.md
    versions/v2/ ...
    champion.json         {"version": "v2", "previous": ["v1"], "updated_at": ...}
    gate_set.jsonl        the fixed set every gate compares on (``registry gate-set FILE``)
    history.jsonl         one JSON object per register / promote / rollback, appended
    .lock                 flock'd by every writer, so two writers cannot interleave

Crash safety: a version is assembled in a hidden ``versions/.tmp-*`` folder and renamed into
place (``os.rename`` of a directory is atomic), so a listed version is always complete.
``champion.json`` is written to a temp file and swapped in with ``os.replace``: a crash leaves
either the old or the new pointer, never half of one. The pointer carries its own rollback
stack, so the history log is an audit trail and never needed to recover state.

Example:
    >>> import tempfile
    >>> reg = Registry(tempfile.mkdtemp())
    >>> reg.versions(), reg.champion()
    ([], None)
"""

from __future__ import annotations

import contextlib
import datetime as dt
import fcntl
import json
import os
import re
import shutil
import uuid
from collections.abc import Callable, Iterator
from pathlib import Path

from mangaassist.atomic import file_sha256, write_json
from mangaassist.data.schema import Example, write_examples
from mangaassist.errors import UserError
from mangaassist.evaluation.artifacts import check_run_dir
from mangaassist.inference.bundle import tokenizer_sha256

ENV_ROOT = "MANGAASSIST_REGISTRY"
GATE_SET_FILE = "gate_set.jsonl"  # the registry's fixed comparison set, under its root
_VERSION = re.compile(r"^v(\d+)$")
# What a version keeps of a run: small files copied, the checkpoint and splits hard-linked.
_COPY = (
    "config.yaml",
    "labels.json",
    "class_counts.json",
    "calibration.json",
    "secondary.json",  # the secondary-intent threshold, in runs trained with that head
    "metrics.json",
    "history.csv",
)
_TREES = ("backbone", "tokenizer", "eval")
_LINK = (
    "checkpoints/best.ckpt",
    "data/train.jsonl",
    "data/val.jsonl",
    "data/val_seen_in_training.jsonl",
    "data/test.jsonl",
)


def default_root() -> Path:
    """``$MANGAASSIST_REGISTRY`` if set, else ``./registry``."""
    return Path(os.environ.get(ENV_ROOT) or "registry")


def _now() -> str:
    return dt.datetime.now(dt.UTC).isoformat(timespec="seconds")


def _link_or_copy(src: Path, dst: Path) -> None:
    dst.parent.mkdir(parents=True, exist_ok=True)
    try:
        os.link(src, dst)  # no copy of a large checkpoint; the run's file is never edited in place
    except OSError:  # another file system, or links not allowed
        shutil.copy2(src, dst)


class Registry:
    """Versions, champion and history under one root folder."""

    def __init__(self, root: str | Path | None = None) -> None:
        self.root = Path(root) if root is not None else default_root()

    # -- reading -----------------------------------------------------------------------------
    @property
    def _versions_dir(self) -> Path:
        return self.root / "versions"

    def versions(self) -> list[str]:
        """Complete versions, oldest first (hidden temp folders are never listed)."""
        if not self._versions_dir.is_dir():
            return []
        found = [
            (int(m.group(1)), p.name)
            for p in self._versions_dir.iterdir()
            if (m := _VERSION.match(p.name)) and (p / "version.json").is_file()
        ]
        return [name for _, name in sorted(found)]

    def path(self, version: str) -> Path:
        """Folder of a version; UserError naming the known ones when it does not exist."""
        if version not in self.versions():
            known = ", ".join(self.versions()) or "none yet"
            raise UserError(f"no version '{version}' in registry {self.root} (known: {known})")
        return self._versions_dir / version

    def info(self, version: str) -> dict:
        """The version's version.json (source run, hashes, headline metrics)."""
        return json.loads((self.path(version) / "version.json").read_text())

    def _state(self) -> dict:
        path = self.root / "champion.json"
        if not path.is_file():
            return {"version": None, "previous": []}
        try:
            return json.loads(path.read_text())
        except ValueError as err:
            raise UserError(
                f"{path}: corrupt champion pointer ({err}); restore it from history.jsonl"
            ) from err

    def champion(self) -> str | None:
        """The champion version, or None before the first promotion."""
        return self._state().get("version")

    def history(self) -> list[dict]:
        """Every event, oldest first."""
        path = self.root / "history.jsonl"
        if not path.is_file():
            return []
        return [json.loads(line) for line in path.read_text().splitlines() if line.strip()]

    # -- writing -----------------------------------------------------------------------------
    @contextlib.contextmanager
    def _locked(self) -> Iterator[None]:
        self._versions_dir.mkdir(parents=True, exist_ok=True)
        with (self.root / ".lock").open("a") as f:
            fcntl.flock(f, fcntl.LOCK_EX)
            try:
                yield
            finally:
                fcntl.flock(f, fcntl.LOCK_UN)

    def _append_history(self, event: dict) -> None:
        with (self.root / "history.jsonl").open("a", encoding="utf-8") as f:
            f.write(json.dumps({"time": _now(), **event}) + "\n")
            f.flush()
            os.fsync(f.fileno())

    def _write_state(self, state: dict) -> None:
        path = self.root / "champion.json"
        write_json(path, {**state, "updated_at": _now()})  # old pointer or new one, never half

    def register(
        self, run_dir: str | Path, extra_files: Callable[[str, Path], dict[str, str]] | None = None
    ) -> str:
        """Copy a run into the next version, atomically; returns its name (``v3``).

        Args:
            run_dir: a finished run directory (model files required; eval/ and calibration.json
                are kept when present).
            extra_files: called with (version name, assembled folder) before the rename; returns
                {relative path: text} to add (the model card).

        Raises:
            UserError: the run lacks model files; nothing is written then.
        """
        run_dir = check_run_dir(run_dir)
        with self._locked():
            numbers = [int(v[1:]) for v in self.versions()]
            version = f"v{max(numbers, default=0) + 1}"
            tmp = self._versions_dir / f".tmp-{version}-{uuid.uuid4().hex[:8]}"
            try:
                tmp.mkdir()
                for name in _COPY:
                    if (run_dir / name).is_file():
                        shutil.copy2(run_dir / name, tmp / name)
                for name in _TREES:
                    if (run_dir / name).is_dir():
                        shutil.copytree(run_dir / name, tmp / name)
                for name in _LINK:
                    if (run_dir / name).is_file():
                        _link_or_copy(run_dir / name, tmp / name)
                info = self._version_info(version, run_dir, tmp)
                (tmp / "version.json").write_text(json.dumps(info, indent=1))
                for rel, text in (extra_files(version, tmp) if extra_files else {}).items():
                    (tmp / rel).parent.mkdir(parents=True, exist_ok=True)
                    (tmp / rel).write_text(text, encoding="utf-8")
                os.rename(tmp, self._versions_dir / version)  # atomic: complete or absent
            finally:
                if tmp.exists():
                    shutil.rmtree(tmp, ignore_errors=True)
            self._append_history({"event": "register", "version": version, "source": str(run_dir)})
        return version

    @staticmethod
    def _version_info(version: str, run_dir: Path, folder: Path) -> dict:
        metrics = {}
        eval_test = folder / "eval" / "test" / "metrics.json"
        if eval_test.is_file():
            m = json.loads(eval_test.read_text())
            metrics = {
                "test/acc": m.get("acc"),
                "test/macro_f1": m.get("macro_f1"),
                "test/rare_recall": m.get("rare_recall"),
                "test/ece_after": (m.get("calibration") or {}).get("ece_after"),
                "latency/p95_ms": (m.get("latency") or {}).get("p95_ms"),
            }
        data = {name: file_sha256(folder / name) for name in _LINK[1:] if (folder / name).is_file()}
        return {
            "version": version,
            "created_at": _now(),
            "source": str(run_dir.resolve()),
            "tokenizer_sha256": tokenizer_sha256(folder / "tokenizer"),
            "checkpoint_sha256": file_sha256(folder / "checkpoints" / "best.ckpt"),
            "data_sha256": data,
            "metrics": metrics,
        }

    def promote(self, version: str, reason: str = "") -> None:
        """Make ``version`` the champion; the old one goes on the rollback stack."""
        with self._locked():
            self.path(version)
            state = self._state()
            current = state.get("version")
            if current == version:
                raise UserError(f"{version} is already the champion")
            previous = [*state.get("previous", []), *([current] if current else [])]
            self._write_state({"version": version, "previous": previous})
            self._append_history(
                {"event": "promote", "version": version, "from": current, "reason": reason}
            )

    def rollback(self) -> str:
        """Restore the champion before the current one; returns it."""
        with self._locked():
            state = self._state()
            previous = list(state.get("previous", []))
            if not previous:
                raise UserError(
                    f"nothing to roll back to in {self.root}: "
                    f"champion={state.get('version')} has no predecessor"
                )
            target = previous.pop()
            self._write_state({"version": target, "previous": previous})
            self._append_history(
                {"event": "rollback", "version": target, "from": state.get("version")}
            )
        return target

    def set_gate_set(self, examples: list[Example], source: str, replace: bool = False) -> dict:
        """Make ``examples`` the registry's fixed gate set (``<root>/gate_set.jsonl``), once.

        Every later ``mangaassist gate`` without ``--data`` compares candidate and champion on
        it, so it is fixed: a different set already configured is refused unless ``replace``
        (decisions made on the old set stop being comparable with new ones). Written
        atomically under the registry lock, and recorded in ``history.jsonl``.

        Args:
            examples: the labelled messages (already read and validated).
            source: where they came from, for the history.
            replace: allow replacing a different gate set.

        Returns:
            ``{"n", "sha256", "changed"}``; ``changed`` False when the same set was there.

        Raises:
            UserError: no examples, or a different gate set is configured and not ``replace``.
        """
        if not examples:
            raise UserError(f"{source}: no examples; a gate set needs labelled messages")
        path = self.root / GATE_SET_FILE
        with self._locked():
            old = file_sha256(path) if path.is_file() else None
            tmp = self.root / f".{GATE_SET_FILE}.new-{os.getpid()}"
            try:
                write_examples(examples, tmp)
                sha = file_sha256(tmp)
                if old == sha:
                    return {"n": len(examples), "sha256": sha, "changed": False}
                if old is not None and not replace:
                    raise UserError(
                        f"{path}: this registry already has a gate set (sha256 {old[:12]}), and "
                        "gates compare every candidate on that one set; replacing it makes "
                        "decisions taken on it incomparable with later ones. Pass --replace "
                        "to replace it anyway"
                    )
                os.replace(tmp, path)
            finally:
                tmp.unlink(missing_ok=True)
            self._append_history(
                {
                    "event": "gate_set",
                    "n": len(examples),
                    "sha256": sha,
                    "source": source,
                    "replaced": old,
                }
            )
        return {"n": len(examples), "sha256": sha, "changed": True}
