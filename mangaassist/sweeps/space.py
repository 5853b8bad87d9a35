"""Search spaces from ``conf/sweep/*.yaml``: sample a trial's values, turn them into overrides.

A space maps an Optuna parameter name to the ``conf/train.yaml`` key it sets and its range::

    params:
      lr: {key: optim.lr, low: 1.0e-5, high: 1.0e-4, log: true}   # float (the default type)
      epochs: {key: trainer.max_epochs, type: int, low: 2, high: 6}
      loss: {key: loss, choices: [ce, focal_weighted]}             # a value or a group option
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

import optuna
from omegaconf import DictConfig, OmegaConf

from mangaassist.errors import UserError

_TYPES = ("float", "int", "categorical")
_FIELDS = {"key", "type", "low", "high", "log", "step", "choices"}


def parse_space(params: DictConfig | Mapping[str, Any] | None) -> dict[str, dict[str, Any]]:
    """Check a ``params`` block and return it as plain dicts with an explicit ``type``.

    Args:
        params: ``sweep.params`` of the sweep config.

    Returns:
        ``{name: {"key": ..., "type": ..., ...}}`` in file order.

    Raises:
        UserError: an entry without ``key``, with an unknown field or type, or a bad range.
    """
    if isinstance(params, DictConfig):
        params = OmegaConf.to_container(params, resolve=True)
    if not params:
        raise UserError("sweep.params is empty: list at least one parameter (see conf/sweep/)")
    space: dict[str, dict[str, Any]] = {}
    for name, spec in params.items():
        where = f"sweep.params.{name}"
        if not isinstance(spec, Mapping) or not spec.get("key"):
            raise UserError(f"{where}: needs a 'key' (the conf/train.yaml key it sets)")
        unknown = set(spec) - _FIELDS
        if unknown:
            raise UserError(f"{where}: unknown field(s) {sorted(unknown)}; use {sorted(_FIELDS)}")
        kind = spec.get("type") or ("categorical" if "choices" in spec else "float")
        if kind not in _TYPES:
            raise UserError(f"{where}: type={kind!r}; use one of {list(_TYPES)}")
        if kind == "categorical":
            if not spec.get("choices"):
                raise UserError(f"{where}: a categorical parameter needs a non-empty 'choices'")
        elif "low" not in spec or "high" not in spec or not spec["low"] <= spec["high"]:
            got = (spec.get("low"), spec.get("high"))
            raise UserError(f"{where}: needs 'low' <= 'high' (got low, high = {got})")
        elif spec.get("log") and spec["low"] <= 0:
            raise UserError(f"{where}: a log range needs low > 0 (got {spec['low']})")
        space[str(name)] = {**spec, "type": kind}
    keys = [s["key"] for s in space.values()]
    if len(set(keys)) != len(keys):
        raise UserError(f"sweep.params: two parameters set the same key ({keys})")
    return space


def suggest(trial: optuna.Trial, space: Mapping[str, Mapping[str, Any]]) -> dict[str, Any]:
    """Sample (or, for an enqueued retry, replay) one value per parameter."""
    values: dict[str, Any] = {}
    for name, s in space.items():
        if s["type"] == "categorical":
            values[name] = trial.suggest_categorical(name, list(s["choices"]))
        elif s["type"] == "int":
            step = int(s.get("step") or 1)
            values[name] = trial.suggest_int(
                name, int(s["low"]), int(s["high"]), step=step, log=bool(s.get("log"))
            )
        else:
            values[name] = trial.suggest_float(
                name, float(s["low"]), float(s["high"]), step=s.get("step"), log=bool(s.get("log"))
            )
    return values


def format_value(value: Any) -> str:
    """A Python value as Hydra's override grammar reads it back (``1e-05``, ``true``, ``null``)."""
    if isinstance(value, bool):
        return "true" if value else "false"
    if value is None:
        return "null"
    return str(value)


def to_overrides(space: Mapping[str, Mapping[str, Any]], values: Mapping[str, Any]) -> list[str]:
    """``key=value`` overrides for ``conf/train.yaml`` from sampled values."""
    return [f"{space[name]['key']}={format_value(v)}" for name, v in values.items()]


def low_corner(space: Mapping[str, Mapping[str, Any]]) -> dict[str, Any]:
    """One valid point of the space (each lower bound or first choice), to check it composes."""
    return {
        name: s["choices"][0] if s["type"] == "categorical" else s["low"]
        for name, s in space.items()
    }
