"""The best trial as an experiment config: ``python train.py experiment=<study>_best``.

The file holds every override the trial was trained with (the sweep's base overrides and the
sampled values): group options become ``override /group: option`` defaults, an
``experiment=...`` base becomes an included ``/experiment/...``, plain keys become values.
"""

from __future__ import annotations

import re
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import optuna
from hydra.core.override_parser.overrides_parser import OverridesParser
from omegaconf import OmegaConf

from mangaassist.errors import UserError
from mangaassist.sweeps.objective import compose_train


def experiment_name(study_name: str) -> str:
    """``<study_name>_best`` with anything Hydra would not take as an option name replaced."""
    return re.sub(r"[^A-Za-z0-9_.-]", "_", study_name) + "_best"


def experiment_yaml(overrides: Sequence[str], groups: set[str], header: Sequence[str]) -> str:
    """Turn overrides into a ``# @package _global_`` experiment file.

    Args:
        overrides: the trial's ``key=value`` / ``group=option`` strings, in order.
        groups: the config groups of ``conf/train.yaml`` (``hydra.runtime.choices`` keys).
        header: comment lines to put under the package line.
    """
    defaults: list[Any] = []
    body = OmegaConf.create({})
    skipped = []
    for ov in OverridesParser.create().parse_overrides(list(overrides)):
        key, value = ov.key_or_group, ov.value()
        target = f"{key}@{ov.package}" if ov.package else key
        if ov.is_delete() or key.startswith("hydra"):
            skipped.append(ov.input_line)
        elif key == "experiment":
            defaults.append(f"/experiment/{value}")
        elif key in groups or "/" in key:
            defaults.append({(f"/{target}" if ov.is_add() else f"override /{target}"): value})
        else:
            OmegaConf.update(body, key, value, force_add=True)
    lines = ["# @package _global_", *(f"# {h}" for h in header)]
    lines += [f"# not carried over: {s}" for s in skipped]
    doc: dict[str, Any] = {"defaults": defaults} if defaults else {}
    doc |= OmegaConf.to_container(body)
    return "\n".join(lines) + "\n" + OmegaConf.to_yaml(doc)


def write_best_experiment(
    study: optuna.Study,
    trial: optuna.trial.FrozenTrial,
    conf_dir: Path,
    out_dir: Path,
    metric: str,
) -> Path:
    """Write ``<out_dir>/experiment/<study>_best.yaml`` and check that it composes.

    ``out_dir`` is a config search path of its own, so the file trains as is with
    ``python train.py hydra.searchpath=[file://<out_dir>] experiment=<study>_best``.

    Returns:
        The file's path.
    """
    overrides = list(trial.user_attrs.get("overrides", []))
    cfg = compose_train(conf_dir, overrides, out_dir / "check", with_hydra=True)
    groups = set(cfg.hydra.runtime.choices)
    name = experiment_name(study.study_name)
    header = [
        f"Best of Optuna study {study.study_name}: trial {trial.number}, "
        f"{metric}={trial.value:.4f} ({study.direction.name.lower()}).",
        f"Trained in {trial.user_attrs.get('run_dir', '?')}; sampled: {', '.join(trial.params)};",
        "the other keys are the sweep's base overrides (train=[...]): edit them for a full run.",
        f"python train.py experiment={name}   # once copied to conf/experiment/",
    ]
    path = out_dir / "experiment" / f"{name}.yaml"
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(experiment_yaml(overrides, groups, header))
    try:  # the file must give back the trial's config
        compose_train(
            conf_dir, [f"hydra.searchpath=[file://{out_dir.resolve()}]", f"experiment={name}"]
        )
    except UserError as err:
        print(f"[SWEEP] warning: {path} does not compose, edit it by hand: {err}", flush=True)
    return path
