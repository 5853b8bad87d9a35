"""Evaluation stage: metrics, calibration fitting, fallback costs, latency and reports.

The public API, imported lazily (PEP 562) so that ``mangaassist`` commands which never score
a model do not pay for importing torch:

- :func:`post_train` ``(run_dir, cfg) -> dict``: after training, calibrate on val and
  evaluate test and the golden set (module ``after_training``).
- :func:`evaluate_arrays`, :func:`evaluate_run`, :func:`write_evaluation`: one labelled set
  -> metrics.json, predictions.jsonl, report.html.
- :func:`calibrate`, :func:`fit_temperature`, :func:`expected_calibration_error`,
  :class:`Calibration`: temperature scaling and calibration.json.
- :class:`FallbackPolicy`, :func:`choose_thresholds`: low-confidence and ambiguity routing.
- :func:`measure_latency`: batch-1 latency of the PyTorch model;
  ``latency.latency_as_served`` times the configured serving runtime (ONNX Runtime by default).
- :func:`select_checkpoint`: the checkpoint criterion.

Gates, the registry, model cards and promotion are the next stage, :mod:`mangaassist.release`;
the serving policy (temperature, fallback rule, routes) is :mod:`mangaassist.inference`.
- :func:`rare_classes`, :func:`classification_metrics`.

Commands: ``mangaassist evaluate | post-train`` (see :mod:`.cli`).
"""

from __future__ import annotations

import importlib

_EXPORTS = {
    "post_train": "after_training",
    "evaluate_arrays": "evaluate",
    "evaluate_run": "evaluate",
    "write_evaluation": "evaluate",
    "Evaluation": "evaluate",
    "calibrate": "calibration",
    "fit_temperature": "calibration",
    "expected_calibration_error": "calibration",
    "Calibration": "calibration",
    "FallbackPolicy": "fallback",
    "choose_thresholds": "fallback",
    "measure_latency": "latency",
    "select_checkpoint": "selection",
    "rare_classes": "metrics",
    "classification_metrics": "metrics",
}
__all__ = sorted(_EXPORTS)


def __getattr__(name: str) -> object:
    if name not in _EXPORTS:
        raise AttributeError(f"module 'mangaassist.evaluation' has no attribute '{name}'")
    return getattr(importlib.import_module(f"{__name__}.{_EXPORTS[name]}"), name)
