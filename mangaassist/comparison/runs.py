"""Find finished run directories and read what the tables need from them (files only).

A *finished run* holds ``config.yaml`` and ``metrics.json`` (its ``eval/summary.json`` joins
in when ``post_train`` ran). An argument may be a run directory, a glob, or a folder with runs
below it (``outputs/banking77``, a multirun sweep folder). Below a folder, a Hydra job that
left no ``metrics.json`` is a :class:`FailedRun` (the table says so); named directly, a
folder without one is an error naming it.

A *kept summary* stands in for a run folder that is gone: a run's ``eval/summary.json`` kept
as ``eval_summary_<name>.json`` (as in ``experiments/banking77/``), joined over its sibling
``metrics_<name>.json`` when that is kept too. Neither file records the data set or the
model, so whoever passes kept summaries names them (``kept={"data": ..., "model": ...}``,
``--data`` / ``--model`` on the command line).
"""

from __future__ import annotations

import glob
import math
import os
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from omegaconf import OmegaConf

from mangaassist.errors import UserError
from mangaassist.evaluation.artifacts import read_json

FAILED_FILE = "failed.json"  # written into a Hydra job's folder by the comparison callback
# Short names for the config keys tables group by.
KEY_ALIASES = {"loss": "loss.name", "model": "model.name", "data": "data.name"}
HOW_RUNS_LOOK = (
    "pass finished run directories (outputs/<data>/<run_name>/<time>/, multirun/<time>/<n>_.../) "
    "or a folder above them; a run writes metrics.json when its training ends"
)


def config_key(by: str) -> str:
    """``loss`` -> ``loss.name`` (short names), any dotted key unchanged."""
    return KEY_ALIASES.get(by, by)


def _read_json(path: Path) -> dict[str, Any]:
    return read_json(path, "metrics", "rerun the run or remove it", obj=True)


@dataclass
class RunRecord:
    """A finished run: config and flat metrics (``eval/summary.json`` over ``metrics.json``)."""

    path: Path
    config: dict[str, Any]
    metrics: dict[str, float]
    latency_runtime: str | None = None  # what the latency figures timed (onnxruntime, torch)
    kept: bool = False  # read from a kept eval_summary_*.json, not a run folder

    def get(self, key: str, default: Any = None) -> Any:
        """A config value by dotted key (short names allowed), or ``default``."""
        value = OmegaConf.select(OmegaConf.create(self.config), config_key(key), default=default)
        return OmegaConf.to_container(value) if OmegaConf.is_config(value) else value

    def metric(self, key: str) -> float | None:
        """A metric, None when absent or not a finite number."""
        v = self.metrics.get(key)
        return float(v) if isinstance(v, int | float) and math.isfinite(v) else None

    @property
    def timed_by(self) -> str | None:
        """The runtime behind the latency figures; ``runtime ?`` if unrecorded, None if untimed."""
        if self.metric("latency/p95_ms") is None:
            return None
        return self.latency_runtime or "runtime ?"

    @property
    def name(self) -> str:
        return str(self.get("run_name") or self.path.name)

    @property
    def model(self) -> str:
        """``model.name``, marked when not pre-trained (``model.init``): ``minilm (tiny)``."""
        init = self.get("model.init")
        name = str(self.get("model.name", "?"))
        return name if init in (None, "pretrained") else f"{name} ({init})"

    def history(self):  # -> pandas.DataFrame | None
        """``history.csv`` (one row per epoch), or None when absent."""
        path = self.path / "history.csv"
        if not path.is_file():
            return None
        import pandas as pd

        try:
            return pd.read_csv(path)
        except (OSError, ValueError) as err:
            raise UserError(f"{path}: cannot read it as CSV ({err})") from err


@dataclass
class FailedRun:
    """A Hydra job below a sweep folder that left no metrics (e.g. missing model weights)."""

    path: Path
    overrides: list[str] = field(default_factory=list)
    error: str = "no metrics.json: the job failed or is still running (see its train.log)"

    def choice(self, key: str) -> str | None:
        """The value this job's overrides gave ``key`` (``model`` or ``model.name``)."""
        short = {v: k for k, v in KEY_ALIASES.items()}.get(key, key)
        for o in self.overrides:
            name, _, value = o.lstrip("+~").partition("=")
            if name in (key, short):
                return value
        return None


def load_run(path: Path) -> RunRecord:
    """Read one finished run directory."""
    config_path = path / "config.yaml"
    try:
        config = OmegaConf.to_container(OmegaConf.load(config_path), resolve=False)
    except Exception as err:  # YAML errors come in several types
        raise UserError(f"{config_path}: cannot read it ({err})") from err
    metrics = _read_json(path / "metrics.json")
    summary = path / "eval" / "summary.json"
    if summary.is_file():
        metrics |= _read_json(summary)
    return RunRecord(path, config, metrics, _latency_runtime(path))  # type: ignore[arg-type]


KEPT_SUMMARY = "eval_summary"  # eval_summary_<name>.json, beside metrics_<name>.json
HOW_KEPT = (
    "a kept eval summary records no data set or model; name them with --data NAME --model NAME "
    "(e.g. --data banking77 --model minilm)"
)


def is_kept_summary(path: Path) -> bool:
    """``eval_summary*.json``: a run's eval/summary.json kept after its folder went."""
    return path.is_file() and path.name.startswith(KEPT_SUMMARY) and path.suffix == ".json"


def load_kept_summary(path: Path, kept: dict[str, str] | None) -> RunRecord:
    """A :class:`RunRecord` from a kept summary (over its sibling metrics file when present).

    Args:
        path: ``.../eval_summary_<name>.json``.
        kept: ``{"data": name, "model": name}``, which the files do not record.

    Raises:
        UserError: ``kept`` lacks the data set or the model, or a file is not a JSON object.
    """
    kept = kept or {}
    missing = [k for k in ("data", "model") if not kept.get(k)]
    if missing:
        raise UserError(f"{path}: {HOW_KEPT} (missing: {', '.join(missing)})")
    sibling = path.with_name("metrics" + path.name[len(KEPT_SUMMARY) :])
    metrics = _read_json(sibling) if sibling.is_file() else {}
    metrics |= _read_json(path)
    config = {
        "run_name": path.stem[len(KEPT_SUMMARY) :].lstrip("_") or path.stem,
        "data": {"name": kept["data"]},
        "model": {"name": kept["model"]},
    }
    return RunRecord(path, config, metrics, kept=True)


def _latency_runtime(path: Path) -> str | None:
    """The runtime named by the split evaluation that timed latency (``eval/<split>/``).

    Runs evaluated before the runtime was recorded say nothing: None.
    """
    for split in sorted((path / "eval").glob("*/metrics.json")):
        latency = _read_json(split).get("latency")
        if isinstance(latency, dict) and latency.get("runtime"):
            return str(latency["runtime"])
    return None


def _failed(path: Path) -> FailedRun:
    overrides: list[str] = []
    if (path / ".hydra" / "overrides.yaml").is_file():
        overrides = [str(o) for o in OmegaConf.load(path / ".hydra" / "overrides.yaml")]
    if (path / FAILED_FILE).is_file():
        info = _read_json(path / FAILED_FILE)
        return FailedRun(path, list(info.get("overrides", overrides)), str(info.get("error", "")))
    return FailedRun(path, overrides)


def _is_run(path: Path) -> bool:
    return (path / "metrics.json").is_file() and (path / "config.yaml").is_file()


def _is_job(path: Path) -> bool:
    """A Hydra job folder or a run folder that did not finish."""
    return (path / FAILED_FILE).is_file() or (
        not _is_run(path) and ((path / ".hydra").is_dir() or (path / "config.yaml").is_file())
    )


def _scan(root: Path) -> tuple[list[Path], list[Path]]:
    """Run folders and failed job folders at or below ``root``; neither is entered."""
    runs, jobs = [], []
    for folder, subdirs, _ in os.walk(root):
        path = Path(folder)
        if _is_run(path) or _is_job(path):
            (runs if _is_run(path) else jobs).append(path)
            subdirs.clear()
        else:
            subdirs.sort()
    return runs, jobs


def _expand(pattern: str) -> list[Path]:
    if glob.has_magic(pattern):
        paths = sorted(Path(p) for p in glob.glob(pattern, recursive=True))
        if not paths:
            raise UserError(f"no run directories matched '{pattern}'; {HOW_RUNS_LOOK}")
        return paths
    path = Path(pattern)
    if not path.exists():
        raise UserError(f"{path}: no such folder; {HOW_RUNS_LOOK}")
    return [path]


def find_runs(
    patterns: list[str], kept: dict[str, str] | None = None
) -> tuple[list[RunRecord], list[FailedRun]]:
    """Finished runs (and failed Hydra jobs) named by paths, globs or folders above them.

    A path or glob match that is a kept summary (``eval_summary*.json``) is read with
    :func:`load_kept_summary`, its data set and model from ``kept``.

    Raises:
        UserError: nothing matched, a named folder holds no finished run at or below it,
            or a kept summary without ``kept``'s data set and model.
    """
    if not patterns:
        raise UserError(f"no run directories given; {HOW_RUNS_LOOK}")
    runs: dict[Path, RunRecord] = {}
    failed: dict[Path, FailedRun] = {}
    for pattern in patterns:
        for path in _expand(pattern):
            if _is_run(path):
                runs.setdefault(path.resolve(), load_run(path))
                continue
            if is_kept_summary(path):
                runs.setdefault(path.resolve(), load_kept_summary(path, kept))
                continue
            if not path.is_dir():
                if glob.has_magic(pattern):
                    continue  # a glob may match files next to the run folders
                raise UserError(
                    f"{path}: a file, not a run folder; pass the folder that holds it (or a "
                    f"kept {KEPT_SUMMARY}_<name>.json)"
                )
            if (path / "config.yaml").is_file() and not (path / FAILED_FILE).is_file():
                raise UserError(
                    f"{path}: no metrics.json, so the run did not finish (it crashed or is still "
                    "training); rerun it, or leave it out of the comparison"
                )
            below, jobs = _scan(path)
            if not below and not jobs:
                raise UserError(f"{path}: no metrics.json there or below; {HOW_RUNS_LOOK}")
            for p in below:
                runs.setdefault(p.resolve(), load_run(p))
            for p in jobs:
                failed.setdefault(p.resolve(), _failed(p))
    if not runs and not failed:
        raise UserError(f"no finished runs in {patterns}; {HOW_RUNS_LOOK}")
    return list(runs.values()), list(failed.values())
