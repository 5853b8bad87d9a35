"""``sweep.py`` takes ``train.py``'s words: overrides of the training config go to ``train=[...]``.

``python sweep.py experiment=smoke n_trials=3`` is read as
``python sweep.py 'train=["experiment=smoke"]' n_trials=3``: an override whose key is not one
of ``conf/sweep.yaml``'s (``n_trials``, ``study_name``, ``seed``, ``sweep``, ``hydra``, ...) is an
override of every trial's ``conf/train.yaml``. They join any ``train=[...]`` given, in
command-line order (later ones win, as in Hydra). ``seed`` is the sampler's: a trial's seed is
``'train=["seed=1"]'``.

Example:
    >>> route(["experiment=smoke", "n_trials=3", "trainer.max_epochs=1"], {"n_trials"})
    ['n_trials=3', 'train=["experiment=smoke", "trainer.max_epochs=1"]']
"""

from __future__ import annotations

import json
from collections.abc import Iterable, Sequence
from pathlib import Path

from omegaconf import OmegaConf

# Hydra's own flags that take the next argument as their value (``--cfg job``, ``-cn NAME``).
_FLAGS_WITH_VALUE = {
    "--cfg",
    "-c",
    "--package",
    "-p",
    "--config-path",
    "-cp",
    "--config-name",
    "-cn",
    "--config-dir",
    "-cd",
    "--experimental-rerun",
}
_INFO_VALUES = {"all", "config", "defaults", "defaults-tree", "plugins", "searchpath"}


def sweep_keys(conf_dir: Path) -> set[str]:
    """Top-level keys of ``conf/sweep.yaml``, plus its groups (``sweep``) and ``hydra``."""
    doc = OmegaConf.load(Path(conf_dir) / "sweep.yaml")
    groups = {next(iter(d)) for d in doc.get("defaults", []) if OmegaConf.is_dict(d)}
    return {str(k) for k in doc if k != "defaults"} | groups | {"hydra"}


def _train_list(arg: str) -> list[str]:
    from hydra.core.override_parser.overrides_parser import OverridesParser

    value = OverridesParser.create().parse_override(arg).value()
    return [str(v) for v in value] if isinstance(value, list) else [str(value)]


def route(argv: Sequence[str], keys: Iterable[str]) -> list[str]:
    """Command-line arguments with the training overrides gathered into one ``train=[...]``.

    Args:
        argv: the arguments after the script name.
        keys: the sweep config's own keys (:func:`sweep_keys`).
    """
    keys = set(keys)
    flags: list[str] = []  # first: argparse takes no option after the overrides
    kept: list[str] = []
    train: list[str] = []
    given_train = False
    args = iter(argv)
    for arg in args:
        if arg.startswith("-"):
            flags.append(arg)
            if "=" not in arg and arg in _FLAGS_WITH_VALUE:
                flags.append(next(args, ""))
            continue
        if flags and flags[-1] in ("--info", "-i") and arg in _INFO_VALUES:
            flags.append(arg)
            continue
        key = arg.split("=", 1)[0].lstrip("+~").split("@")[0]
        if key == "train" and "=" in arg:
            train.extend(_train_list(arg))
            given_train = True
        elif key.split(".")[0] in keys:
            kept.append(arg)
        else:
            train.append(arg)
    if train or given_train:
        kept.append(f"train={json.dumps(train)}")
    return flags + kept
