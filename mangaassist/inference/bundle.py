"""Open an export bundle and check it before it answers anything.

A bundle (written by ``mangaassist export``, see :mod:`mangaassist.export.bundle`) is a folder::

    model.onnx         forward(input_ids, attention_mask) -> raw logits (B, C), and
                       secondary_logits (B, C) when the model has the secondary head
    model.int8.onnx    optional: the dynamically quantised graph (written only if it agreed)
    tokenizer/         the run's tokenizer files, as trained with
    labels.json        label names in logit order
    calibration.json   temperature and fallback thresholds
    README.md          how to call it without this package
    manifest.json      sha256 of every file, tokenizer hash, normalisation, routing rule,
                       text_preprocess (none | romaji; absent in older bundles: none),
                       truncation_strategy (first | head_tail; absent in older bundles:
                       first) and truncation_head_tokens (head_tail's head size),
                       secondary (threshold, mask_primary, output; only with that head)

:func:`open_bundle` refuses, with one line naming the file, a bundle whose files changed since
export, whose tokenizer is not the one the model was trained with, whose manifest names a
path outside the folder, whose ``text_preprocess`` or truncation this runtime does not know,
or whose ``secondary`` entry is malformed. A corrupt
ONNX file is refused when the session is built
(:class:`~mangaassist.inference.predictor.Predictor`).
"""

from __future__ import annotations

import hashlib
import json
from dataclasses import dataclass
from pathlib import Path

from mangaassist.atomic import file_sha256
from mangaassist.data.transliterate import check_text_preprocess
from mangaassist.data.truncation import Truncation, check_truncation
from mangaassist.errors import UserError
from mangaassist.inference.policy import CALIBRATION_FILE, Calibration, SecondaryRule

MANIFEST = "manifest.json"


class BundleError(UserError):
    """A bundle refused at load; ``check`` names which check failed (for deploy lines)."""

    def __init__(self, message: str, check: str) -> None:
        super().__init__(message)
        self.check = check


PRECISIONS = {"fp32": "model.onnx", "int8": "model.int8.onnx"}


def tokenizer_sha256(folder: Path) -> str:
    """Hex sha256 over a tokenizer folder: each file, sorted by relative path, as
    ``path \\0 bytes \\0``. Export and serving compute the same to catch a mismatch at load."""
    folder = Path(folder)
    h = hashlib.sha256()
    for f in sorted((p for p in folder.rglob("*") if p.is_file()), key=lambda p: p.as_posix()):
        h.update(f.relative_to(folder).as_posix().encode() + b"\0")
        h.update(f.read_bytes() + b"\0")
    return h.hexdigest()


def _inside(folder: Path, name: str) -> Path:
    """``folder / name``, refusing absolute names and ``..`` that leave the folder."""
    path = (folder / name).resolve()
    if Path(name).is_absolute() or not path.is_relative_to(folder.resolve()):
        raise BundleError(
            f"{folder / MANIFEST}: file entry {name!r} points outside the bundle; "
            "a bundle only lists its own files: re-export it",
            "manifest",
        )
    return path


def read_manifest(folder: str | Path) -> dict:
    """The bundle's manifest, parsed; a missing or broken one is a UserError naming it."""
    path = Path(folder) / MANIFEST
    if not path.is_file():
        raise UserError(f"{folder}: no {MANIFEST}; export the run with `mangaassist export RUN`")
    try:
        manifest = json.loads(path.read_text())
    except (OSError, ValueError) as err:
        raise UserError(f"{path}: cannot read it as JSON ({err}); re-export the run") from err
    if not isinstance(manifest, dict) or not isinstance(manifest.get("files"), dict):
        raise UserError(f"{path}: no 'files' table; re-export the run with `mangaassist export`")
    return manifest


def verify_bundle(folder: str | Path) -> dict:
    """The bundle's manifest after checking every listed file's sha256 and the tokenizer hash.

    Raises:
        UserError: no manifest, a path outside the folder, a file missing or changed since
            export (all named), or a tokenizer that differs from the one trained with.
    """
    folder = Path(folder)
    manifest = read_manifest(folder)
    bad = [
        name
        for name, entry in manifest["files"].items()
        if not _inside(folder, name).is_file()
        or file_sha256(_inside(folder, name)) != entry.get("sha256")
    ]
    source = manifest.get("source_run", "RUN_DIR")
    if bad:
        raise BundleError(
            f"{folder}: files missing or changed since export: {bad}; "
            f"re-export with `mangaassist export {source}`",
            "manifest",
        )
    trained = manifest.get("tokenizer_sha256")
    if trained is not None and tokenizer_sha256(folder / "tokenizer") != trained:
        raise BundleError(
            f"{folder / 'tokenizer'}: not the tokenizer the model was trained with "
            f"(tokenizer_sha256 {trained[:12]}... in {MANIFEST}); "
            f"re-export with `mangaassist export {source}`",
            "tokenizer",
        )
    return manifest


@dataclass(frozen=True)
class Bundle:
    """A verified bundle: its folder, manifest, labels and calibration."""

    folder: Path
    manifest: dict
    labels: list[str]
    calibration: Calibration
    sha256: str  # of manifest.json, which holds every file's hash: one id for the whole bundle

    @property
    def max_length(self) -> int:
        """Truncation in tokens, as trained."""
        return int(self.manifest["max_length"])

    @property
    def version(self) -> str:
        """The model version the bundle answers as (registry version, else run name + sha)."""
        return str(self.manifest.get("model_version") or f"bundle-{self.sha256[:8]}")

    @property
    def text_preprocess(self) -> str:
        """``none`` or ``romaji``: applied after normalisation, before tokenizing, as in
        training (checked by :func:`open_bundle`; a bundle from before the option: ``none``)."""
        return str(self.manifest.get("text_preprocess") or "none")

    @property
    def truncation(self) -> Truncation:
        """Which tokens of a message over ``max_length`` are kept, as in training: ``first``
        or ``head_tail`` (checked by :func:`open_bundle`; a bundle from before the option:
        ``first``)."""
        return manifest_truncation(self.manifest, self.folder)

    @property
    def secondary(self) -> SecondaryRule | None:
        """The secondary-intent rule (threshold, mask_primary, the graph's second output), or
        None: a model without that head, or a bundle exported before it (checked at load)."""
        entry = self.manifest.get("secondary")
        if entry is None:
            return None
        return SecondaryRule.from_manifest(entry, str(self.folder / MANIFEST))

    @property
    def rare_classes(self) -> list[str]:
        """The training run's rare classes (empty for bundles exported before they were kept)."""
        return [str(c) for c in self.manifest.get("rare_classes", [])]

    def precisions(self) -> list[str]:
        """Precisions present in the bundle (``fp32`` always; ``int8`` when it was accepted)."""
        return [p for p, f in PRECISIONS.items() if f in self.manifest["files"]]

    def model_file(self, precision: str = "auto") -> tuple[Path, str]:
        """(ONNX file, precision): ``auto`` is int8 when present, else fp32."""
        have = self.precisions()
        if precision == "auto":
            precision = "int8" if "int8" in have else "fp32"
        if precision not in PRECISIONS:
            raise UserError(f"precision must be auto, fp32 or int8, got {precision!r}")
        if precision not in have:
            raise UserError(
                f"{self.folder}: no {PRECISIONS[precision]} in the bundle; export it with "
                "`mangaassist export RUN --quantize int8`, or serve precision=fp32"
            )
        return self.folder / PRECISIONS[precision], precision


def manifest_truncation(manifest: dict, folder: Path) -> Truncation:
    """The manifest's ``truncation_strategy`` and ``truncation_head_tokens``, checked (absent:
    ``first``, as every bundle exported before the option truncated).

    Raises:
        UserError: an unknown strategy or a head size that does not fit ``max_length``,
            naming the manifest and the key.
    """
    where = f"{Path(folder) / MANIFEST}: truncation"
    return check_truncation(
        manifest.get("truncation_strategy"),
        manifest.get("truncation_head_tokens"),
        int(manifest["max_length"]),
        where=f"{where}_strategy",
        head_where=f"{where}_head_tokens",
    )


def open_bundle(folder: str | Path) -> Bundle:
    """Verify a bundle (:func:`verify_bundle`) and read its labels and calibration."""
    folder = Path(folder)
    if not folder.is_dir():
        raise UserError(f"{folder}: no such bundle folder; export one with `mangaassist export`")
    manifest = verify_bundle(folder)
    try:
        check_text_preprocess(
            manifest.get("text_preprocess"), f"{folder / MANIFEST}: text_preprocess"
        )
    except UserError as err:  # a bundle from a newer exporter, or an edited manifest
        raise BundleError(f"{err}; re-export the run with this version", "manifest") from None
    try:
        manifest_truncation(manifest, folder)
    except UserError as err:  # likewise
        raise BundleError(f"{err}; re-export the run with this version", "manifest") from None
    if manifest.get("secondary") is not None:
        try:
            SecondaryRule.from_manifest(manifest["secondary"], str(folder / MANIFEST))
        except UserError as err:
            raise BundleError(str(err), "manifest") from None
    try:
        labels = json.loads((folder / "labels.json").read_text())
    except (OSError, ValueError) as err:
        raise UserError(f"{folder / 'labels.json'}: cannot read it ({err})") from err
    calib = Calibration.load(folder / CALIBRATION_FILE)
    return Bundle(folder, manifest, labels, calib, file_sha256(folder / MANIFEST))
