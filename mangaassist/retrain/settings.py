"""Retrain settings: ``conf/retrain/default.yaml`` as a typed, checked dataclass.

The ``cost`` section is the monitor's :class:`~mangaassist.monitor.settings.RetrainCosts`:
the alert's estimate and the retrain's realised cost use the same prices.

Example:
    >>> s = load_retrain_settings()
    >>> s.register, s.cost.labels_needed
    ('pass', 500)
"""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path

from mangaassist.errors import UserError
from mangaassist.monitor.settings import RETRAIN_CONFIG, RetrainCosts, check_costs, load_typed

REGISTER = ("pass", "always")


@dataclass
class RetrainSettings:
    """One field per top-level key of ``conf/retrain/default.yaml``."""

    cost: RetrainCosts = field(default_factory=RetrainCosts)
    out_root: str = "outputs/retrain"
    gates: str | None = None
    register: str = "pass"


def load_retrain_settings(path: str | Path | None = None) -> RetrainSettings:
    """The packaged ``conf/retrain/default.yaml`` with ``path``'s keys merged over it, checked.

    Raises:
        UserError: a missing file, an unknown key or a bad value; names the file and key.
    """
    file = Path(path) if path is not None else RETRAIN_CONFIG
    if not file.is_file():
        raise UserError(f"{file}: no retrain settings file")
    s: RetrainSettings = load_typed(RetrainSettings, [RETRAIN_CONFIG, file], file, "retrain")
    if s.register not in REGISTER:
        raise UserError(f"{file}: register={s.register!r}; use one of {REGISTER}")
    check_costs(s.cost, file)  # the same checks on the prices as the monitor makes
    return s
