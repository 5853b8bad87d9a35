"""Monitor stage: prediction logs -> windows -> drift, live accuracy, alerts -> dashboard.

Reads the JSON-lines prediction logs of ``mangaassist serve`` into DuckDB (see
:mod:`~mangaassist.monitor.logs` for why DuckDB), computes hourly/daily/weekly signals against a
reference (:mod:`~mangaassist.monitor.reference`), judges them with the alert rules of
``conf/monitor/default.yaml`` (:mod:`~mangaassist.monitor.alerts`) and writes ``monitor.json``
and a self-contained ``dashboard.html``. Imports no torch, Lightning, Hydra or transformers.

The names below load on first use, so ``mangaassist --help`` does not import DuckDB.
"""

from __future__ import annotations

import importlib
from typing import Any

_API = {
    "run_monitor": "mangaassist.monitor.monitor",
    "write_report": "mangaassist.monitor.monitor",
    "load_settings": "mangaassist.monitor.settings",
    "MonitorSettings": "mangaassist.monitor.settings",
    "load_logs": "mangaassist.monitor.logs",
    "find_log_files": "mangaassist.monitor.logs",
    "load_reference": "mangaassist.monitor.reference",
    "build_reference": "mangaassist.monitor.reference",
    "kl_divergence": "mangaassist.monitor.drift",
    "chi_square": "mangaassist.monitor.drift",
    "wilson": "mangaassist.monitor.accuracy",
    "read_labels": "mangaassist.monitor.accuracy",
    "judge": "mangaassist.monitor.alerts",
    "parse_condition": "mangaassist.monitor.alerts",
    "read_switches": "mangaassist.monitor.switches",
    "render_dashboard": "mangaassist.monitor.dashboard",
}
__all__ = sorted(_API)


def __getattr__(name: str) -> Any:
    if name in _API:
        return getattr(importlib.import_module(_API[name]), name)
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
