"""Evaluation stage: metrics, calibration, fallback, latency, reports, gates and the registry.

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
- :func:`decide`, :class:`Scores`: promotion gates; :func:`select_checkpoint`.
- :class:`Registry`, :func:`tokenizer_sha256`: versions, champion, history.
- :func:`rare_classes`, :func:`classification_metrics`.

Commands: ``mangaassist evaluate | gate | registry`` (see :mod:`.cli`).
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
    "decide": "gates",
    "Scores": "gates",
    "select_checkpoint": "selection",
    "Registry": "registry",
    "tokenizer_sha256": "registry",
    "rare_classes": "metrics",
    "classification_metrics": "metrics",
}
__all__ = sorted(_EXPORTS)


def __getattr__(name: str) -> object:
    if name not in _EXPORTS:
        raise AttributeError(f"module 'mangaassist.evaluation' has no attribute '{name}'")
    return getattr(importlib.import_module(f"{__name__}.{_EXPORTS[name]}"), name)
