"""What evaluation reads from a run directory, checked up front with errors that name the gap.

A run directory (see :mod:`mangaassist.training.run_dir`) and a registry version share one
layout, so everything here works on both. torch-heavy modules are imported inside the
functions that need them, so a bad path or label fails in a fraction of a second.
"""

from __future__ import annotations

import json
from collections import Counter
from collections.abc import Sequence
from pathlib import Path
from typing import Any

from omegaconf import DictConfig, OmegaConf

from mangaassist.checkpoint import require_model_files
from mangaassist.data.schema import Example, read_examples
from mangaassist.data.sources import OOS
from mangaassist.errors import UserError

DEFAULT_RARE_BELOW = 0.05


def check_run_dir(path: str | Path, extra: Sequence[str] = ()) -> Path:
    """``path`` if it holds every model file (and ``extra``), else a UserError naming the gaps."""
    return require_model_files(path, extra=tuple(extra))


def read_json(path: str | Path, what: str = "JSON", fix: str = "", obj: bool = False) -> Any:
    """Parse a UTF-8 JSON file; a missing, unreadable or malformed one is a UserError naming it.

    The one JSON reader of the stages from evaluation on (comparison, release).

    Args:
        path: the file.
        what: what it holds, for the messages (``"load test"``, ``"metrics"``).
        fix: how to get a good file, appended to every message.
        obj: refuse anything but a JSON object, too.
    """
    path = Path(path)
    tail = f"; {fix}" if fix else ""
    if not path.is_file():
        raise UserError(f"{path}: no such {what} file{tail}")
    try:
        text = path.read_text(encoding="utf-8")
    except (OSError, UnicodeDecodeError) as err:
        raise UserError(f"{path}: cannot read the {what} file as UTF-8 text ({err}){tail}") from err
    try:
        data = json.loads(text)
    except json.JSONDecodeError as err:
        raise UserError(f"{path}: not valid JSON ({err.msg}, line {err.lineno}){tail}") from err
    if obj and not isinstance(data, dict):
        raise UserError(f"{path}: expected a JSON object ({what}){tail}")
    return data


def read_labels(run_dir: Path) -> list[str]:
    """The run's labels in index order."""
    labels = read_json(Path(run_dir) / "labels.json")
    if not isinstance(labels, list) or not labels or not all(isinstance(x, str) for x in labels):
        raise UserError(f"{run_dir}/labels.json: expected a non-empty list of label names")
    return labels


def read_config(run_dir: Path) -> DictConfig:
    """The run's resolved config."""
    try:
        return OmegaConf.load(Path(run_dir) / "config.yaml")  # type: ignore[return-value]
    except Exception as err:  # YAML errors come in several types
        raise UserError(f"{run_dir}/config.yaml: cannot read it ({err})") from err


def rare_below(config: DictConfig | dict | None) -> float:
    """The rare-class share a run used: ``data.rare_below`` or ``data.module.rare_below``."""
    data = (config or {}).get("data") or {}
    value = data.get("rare_below")
    if value is None:
        value = (data.get("module") or {}).get("rare_below")
    return float(DEFAULT_RARE_BELOW if value is None else value)


def run_rare_classes(run_dir: Path, config: DictConfig | dict | None = None) -> list[str]:
    """Rare labels of a run from class_counts.json (empty when the file is absent)."""
    path = Path(run_dir) / "class_counts.json"
    if not path.is_file():
        return []
    from mangaassist.evaluation.metrics import rare_classes

    counts = read_json(path)
    if not isinstance(counts, dict):
        raise UserError(f"{path}: expected {{label: count}}")
    return rare_classes(counts, rare_below(config if config is not None else read_config(run_dir)))


def read_calibration(run_dir: Path):  # -> Calibration | None
    """The run's calibration.json (a :class:`Calibration`), or None before calibration."""
    from mangaassist.evaluation.calibration import CALIBRATION_FILE, Calibration

    path = Path(run_dir) / CALIBRATION_FILE
    return Calibration.load(path) if path.is_file() else None


def _check_known(
    examples: Sequence[Example],
    labels: Sequence[str],
    path: str | Path,
    model: str | Path,
    oos_ok: bool = False,
) -> None:
    """Raise naming every label outside ``labels`` (``oos`` too, unless ``oos_ok``)."""
    known = set(labels) | ({OOS} if oos_ok else set())
    unknown = Counter(ex.label for ex in examples if ex.label not in known)
    if unknown:
        raise UserError(
            f"{path}: labels the model does not know: {dict(unknown.most_common())}; "
            f"{model} was trained on {list(labels)}. Evaluate on a file with those labels"
            + (f" (only '{OOS}' is accepted as out-of-scope)" if oos_ok else "")
        )


def read_labelled(
    path: str | Path, labels: Sequence[str], model: str | Path = "the model"
) -> list[Example]:
    """Examples of a labelled file whose labels the model knows.

    Raises:
        UserError: unreadable or empty file, a malformed line, or labels outside ``labels``
            (all of them listed with counts).
    """
    examples = read_examples(path)
    _check_known(examples, labels, path, model)
    return examples


def split_out_of_scope(
    examples: Sequence[Example], labels: Sequence[str], path: str | Path, model: str | Path
) -> tuple[list[Example], list[Example]]:
    """(in-scope, out-of-scope) examples; ``oos`` is out of scope only when not in ``labels``.

    Out-of-scope queries (CLINC150's ``oos``) are scored apart, by the fallback threshold
    (:mod:`mangaassist.evaluation.out_of_scope`).

    Raises:
        UserError: labels outside ``labels`` other than ``oos`` (all listed with counts).
    """
    _check_known(examples, labels, path, model, oos_ok=True)
    known = set(labels)
    oos = [ex for ex in examples if ex.label == OOS and OOS not in known]
    return [ex for ex in examples if ex.label in known], oos


def read_scoped(
    path: str | Path, labels: Sequence[str], model: str | Path = "the model"
) -> tuple[list[Example], list[Example]]:
    """Read a labelled file and split it with :func:`split_out_of_scope`."""
    return split_out_of_scope(read_examples(path), labels, path, model)


def load_model_run(path: str | Path):  # -> mangaassist.training.run_dir.LoadedRun
    """Load a run (or registry version) for scoring, after checking its files."""
    check_run_dir(path)
    from mangaassist.training.run_dir import load_run  # heavy: torch, transformers, hydra

    return load_run(path)
