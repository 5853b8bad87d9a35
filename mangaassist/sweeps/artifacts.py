"""What a sweep leaves next to its study: trials table, parameter importances, plots.

All of it is rebuilt from the database at the end of every ``sweep.py`` run, so it always
covers the whole study, including trials run by other processes or machines.
"""

from __future__ import annotations

import csv
import json
import math
import warnings
from collections.abc import Callable
from pathlib import Path
from typing import Any

import optuna
from optuna.exceptions import ExperimentalWarning
from optuna.trial import TrialState

# Columns after the parameters, taken from the metrics train() returned (user_attrs).
_METRICS = ("best_epoch", "epochs_trained", "val/acc", "val/rare_recall")


def _fmt(value: Any) -> str:
    if isinstance(value, float):
        return "" if math.isnan(value) else f"{value:.4g}"
    return "" if value is None else str(value)


def trial_rows(study: optuna.Study) -> list[dict[str, Any]]:
    """One row per trial (by number): state, value, parameters, main metrics, minutes."""
    names = sorted({p for t in study.get_trials(deepcopy=False) for p in t.params})
    rows = []
    for t in study.get_trials(deepcopy=False):
        metrics = t.user_attrs.get("metrics", {})
        row: dict[str, Any] = {"number": t.number, "state": t.state.name, "value": t.value}
        row |= {n: t.params.get(n) for n in names}
        row |= {m: metrics.get(m) for m in _METRICS}
        row["minutes"] = round(t.duration.total_seconds() / 60, 2) if t.duration else None
        row["retry_of"] = t.system_attrs.get("failed_trial")
        row["run_dir"] = t.user_attrs.get("run_dir")
        rows.append(row)
    return rows


def write_table(study: optuna.Study, out_dir: Path) -> tuple[Path, Path]:
    """``trials.csv`` (by trial number) and ``trials.md`` (best first) in ``out_dir``."""
    rows = trial_rows(study)
    csv_path, md_path = out_dir / "trials.csv", out_dir / "trials.md"
    columns = list(rows[0]) if rows else ["number", "state", "value"]
    with csv_path.open("w", newline="") as f:
        writer = csv.DictWriter(f, fieldnames=columns)
        writer.writeheader()
        writer.writerows(rows)
    sign = -1 if study.direction == optuna.study.StudyDirection.MAXIMIZE else 1

    def rank(r: dict[str, Any]) -> tuple[bool, float]:
        return (r["value"] is None, sign * r["value"] if r["value"] is not None else 0.0)

    lines = [
        f"# Study {study.study_name} ({study.direction.name.lower()})",
        "",
        "| " + " | ".join(columns) + " |",
        "|" + "---|" * len(columns),
    ]
    lines += ["| " + " | ".join(_fmt(r[c]) for c in columns) + " |" for r in sorted(rows, key=rank)]
    md_path.write_text("\n".join(lines) + "\n")
    return csv_path, md_path


def write_importances(study: optuna.Study, out_dir: Path) -> dict[str, float]:
    """``importances.json``: each parameter's share of the objective's variance (sums to 1).

    Needs at least two COMPLETE trials; with fewer the file says why and ``{}`` is returned.
    """
    path = out_dir / "importances.json"
    if len(study.get_trials(deepcopy=False, states=(TrialState.COMPLETE,))) < 2:
        path.write_text(json.dumps({"note": "needs at least 2 complete trials"}, indent=1))
        return {}
    try:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore", UserWarning)  # "importances will be equal" on ties
            importances = optuna.importance.get_param_importances(study)
    except (ValueError, RuntimeError) as err:  # e.g. every trial has the same parameters
        path.write_text(json.dumps({"note": f"not computed: {err}"}, indent=1))
        return {}
    importances = {k: round(float(v), 4) for k, v in importances.items()}
    path.write_text(json.dumps(importances, indent=1))
    return importances


def write_plots(study: optuna.Study, out_dir: Path) -> list[Path]:
    """PNG plots from ``optuna.visualization.matplotlib`` in ``out_dir/plots``.

    A plot that cannot be drawn yet (too few trials) is skipped with a ``[SWEEP]`` line.
    """
    import matplotlib

    matplotlib.use("Agg")  # files only; no display on training machines
    import matplotlib.pyplot as plt
    from optuna.visualization import matplotlib as vis

    n_complete = len(study.get_trials(deepcopy=False, states=(TrialState.COMPLETE,)))
    plots: dict[str, Callable[[optuna.Study], Any]] = {
        "optimization_history": vis.plot_optimization_history,
        "intermediate_values": vis.plot_intermediate_values,  # the curves pruning looked at
        "parallel_coordinate": vis.plot_parallel_coordinate,
    }
    if n_complete >= 2:
        plots["param_importances"] = vis.plot_param_importances
    (out_dir / "plots").mkdir(parents=True, exist_ok=True)
    written = []
    for name, plot in plots.items():
        path = out_dir / "plots" / f"{name}.png"
        try:
            with warnings.catch_warnings():
                warnings.simplefilter("ignore", ExperimentalWarning)
                warnings.simplefilter("ignore", UserWarning)  # "importances will be equal"
                ax = plot(study)
            fig = (ax.flat[0] if hasattr(ax, "flat") else ax).figure
            fig.savefig(path, dpi=120, bbox_inches="tight")
            written.append(path)
        except Exception as err:  # a summary plot must never fail the sweep
            print(f"[SWEEP] plot {name} skipped: {type(err).__name__}: {err}", flush=True)
        finally:
            plt.close("all")
    return written
