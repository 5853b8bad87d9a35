"""Evaluate a model on one labelled set: every figure of the report, from logits to files.

:func:`evaluate_arrays` is the pure core (logits and labels in, a JSON-ready metrics dict
out) that tests drive with synthetic arrays. :func:`evaluate_run` scores a labelled file with
a loaded run, times it, and :func:`write_evaluation` writes ``metrics.json``,
``predictions.jsonl`` and ``report.html``.

Example:
    >>> import numpy as np
    >>> logits = np.array([[3.0, 0, 0], [0, 2, 0], [0, 2.5, 0], [0, 0, 1]])
    >>> ev = evaluate_arrays(logits, np.array([0, 1, 2, 2]), ["a", "b", "c"])
    >>> ev.metrics["acc"], ev.metrics["confused_pairs"][0]["true"]
    (0.75, 'c')
"""

from __future__ import annotations

import json
from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np

from mangaassist.atomic import replacing, write_json
from mangaassist.errors import UserError
from mangaassist.evaluation import calibration as cal
from mangaassist.evaluation import confusion, fallback, metrics
from mangaassist.evaluation.latency import latency_as_served
from mangaassist.evaluation.secondary import SecondaryPolicy, evaluate_secondary
from mangaassist.evaluation.settings import EvalSettings
from mangaassist.evaluation.significance import bootstrap_ci
from mangaassist.evaluation.slices import slice_metrics
from mangaassist.training.lines import figure, percent


@dataclass
class Evaluation:
    """The metrics (JSON-ready) and the per-example arrays the plots need."""

    metrics: dict
    y_true: np.ndarray  # (N,) true indices
    probs_before: np.ndarray  # (N, C) softmax of raw logits
    probs_after: np.ndarray  # (N, C) softmax of logits / T
    texts: list[str] = field(default_factory=list)
    ids: list[str] = field(default_factory=list)
    latency_samples_ms: list[float] = field(default_factory=list)
    # Predicted secondary intents per example (runs with the secondary head; else empty).
    secondary: list[list[str]] = field(default_factory=list)

    @property
    def y_pred(self) -> np.ndarray:
        """(N,) predicted indices (temperature never changes them)."""
        return self.probs_after.argmax(axis=1)


def evaluate_arrays(
    logits: np.ndarray,
    y_true: np.ndarray,
    labels: Sequence[str],
    *,
    texts: Sequence[str] | None = None,
    tags: Sequence[Sequence[str]] | None = None,
    rare: Sequence[str] = (),
    calibration: cal.Calibration | None = None,
    settings: EvalSettings | None = None,
    latency: dict | None = None,
) -> Evaluation:
    """All report figures from raw logits.

    Args:
        logits: (N, C) raw logits (before temperature).
        y_true: (N,) true indices.
        labels: C names in index order.
        texts: N messages (for the error lists and the script/length slices); None = empty
            strings and no slices.
        tags: N tag lists; per-tag metrics when any example has a tag (a ``romaji`` tag also
            decides the romaji slice).
        rare: rare class names.
        calibration: temperature and fallback policy; None = T 1.0 and the configured defaults.
        settings: evaluation settings; None = the built-in defaults.
        latency: a :func:`~mangaassist.evaluation.latency.latency_as_served` result, or None.
    """
    s = settings or EvalSettings()
    logits, y_true = np.asarray(logits, dtype=np.float64), np.asarray(y_true, dtype=np.int64)
    if logits.ndim != 2 or logits.shape != (len(y_true), len(labels)):
        raise ValueError(
            f"logits {logits.shape} do not match {len(y_true)} labels x {len(labels)} classes"
        )
    has_texts = texts is not None
    texts = list(texts) if texts is not None else [""] * len(y_true)
    calib = calibration or cal.Calibration(
        global_threshold=s.fallback.global_threshold, margin=s.fallback.margin
    )
    t = calib.temperature
    before, after = cal.softmax(logits, 1.0), cal.softmax(logits, t)
    pred = after.argmax(axis=1)
    correct = pred == y_true

    m = metrics.classification_metrics(y_true, pred, labels, rare)
    thresholds = calib.policy.threshold_vector(labels)
    for row, thr in zip(m["per_class"], thresholds, strict=True):
        row["threshold"] = float(thr)
    cm = np.asarray(m["confusion"])
    boot = {"n_boot": s.report.n_boot, "seed": s.report.seed}
    has_tags = tags is not None and any(tags)
    conf = after.max(axis=1)
    rc = fallback.risk_coverage(after, y_true)
    out = {
        "n": len(y_true),
        "labels": list(labels),
        "rare_classes": list(rare),
        "acc": m["acc"],
        "macro_f1": m["macro_f1"],
        "rare_recall": m["rare_recall"],
        "ci": {k: bootstrap_ci(y_true, pred, len(labels), k, **boot) for k in ("acc", "macro_f1")},
        "per_class": m["per_class"],
        "per_tag": metrics.per_tag_metrics(y_true, pred, tags, labels, rare) if has_tags else [],
        # Script (latin/romaji/japanese/mixed) and length slices, with Wilson intervals.
        "slices": slice_metrics(y_true, pred, texts, tags, labels) if has_texts else None,
        "confusion": m["confusion"],
        "confusion_normalised": confusion.row_normalise(cm).round(4).tolist(),
        "confused_pairs": confusion.confused_pairs(cm, labels, s.routing_cost, s.report.top_pairs),
        "concentration_top3": confusion.concentration(cm, 3),
        "routing": confusion.routing_cost(cm, labels, s.routing_cost),
        "calibration": {
            "temperature": t,
            # The search range T was fitted in, so the report can tell a T stuck at a bound.
            "temperature_bounds": list(s.temperature_bounds),
            "fitted_on": calib.fitted_on,
            "ece_before": cal.expected_calibration_error(before, y_true, s.ece_bins),
            "ece_after": cal.expected_calibration_error(after, y_true, s.ece_bins),
            "nll_before": cal.nll(logits, y_true, 1.0),
            "nll_after": cal.nll(logits, y_true, t),
            "n_bins": s.ece_bins,
            "reliability_before": cal.reliability_bins(before, y_true, s.ece_bins),
            "reliability_after": cal.reliability_bins(after, y_true, s.ece_bins),
            "mean_conf_correct": float(conf[correct].mean()) if correct.any() else None,
            "mean_conf_wrong": float(conf[~correct].mean()) if (~correct).any() else None,
        },
        "fallback": {
            "global_threshold": calib.global_threshold,
            "margin": calib.margin,
            **fallback.fallback_summary(calib.policy, after, y_true, labels),
            "aurc": rc["aurc"],
            "accuracy_above": fallback.accuracy_above(after, y_true),
        },
        "errors": confusion.top_errors(after, y_true, texts, labels, s.report.top_errors),
        "latency": None,
    }
    samples: list[float] = []
    if latency is not None:
        samples = list(latency.get("samples_ms", []))
        out["latency"] = {k: v for k, v in latency.items() if k != "samples_ms"}
        out["latency"]["budget_ms"] = s.latency.budget_ms
        out["latency"]["within_budget"] = latency["p95_ms"] < s.latency.budget_ms
    return Evaluation(out, y_true, before, after, texts, latency_samples_ms=samples)


def headline(m: dict, prefix: str) -> dict[str, float]:
    """Flat ``prefix/name`` figures of a metrics dict, for logs, loggers and gates."""
    flat = {
        "acc": m["acc"],
        "macro_f1": m["macro_f1"],
        "rare_recall": m["rare_recall"],
        "ece_before": m["calibration"]["ece_before"],
        "ece_after": m["calibration"]["ece_after"],
        "low_conf_rate": m["fallback"]["low_confidence_rate"],
        "severe_error_rate": m["routing"]["severe_error_rate"],
    }
    out = {f"{prefix}/{k}": float(v) for k, v in flat.items() if v is not None}
    if m.get("latency"):
        for k in ("p50_ms", "p95_ms", "p99_ms"):
            out[f"latency/{k}"] = float(m["latency"][k])
    return out


def log_line(m: dict, tag: str = "EVAL", name: str = "") -> str:
    """The one-line ``[EVAL] ...`` record: percentages for rates, fractions for ECE."""
    c = m["calibration"]
    parts = [
        f"[{tag}]",
        *([f"set={name}"] if name else []),
        f"n={m['n']}",
        f"acc={percent(m['acc'])}",
        f"macro_f1={percent(m['macro_f1'])}",
        f"rare_recall={figure('rare_recall', m['rare_recall'])}",  # none(no_rare_class), not na
        f"ece_before={c['ece_before']:.3f}",
        f"ece_after={c['ece_after']:.3f}",
        f"T={c['temperature']:.3f}",
        f"low_conf={percent(m['fallback']['low_confidence_rate'])}%",
    ]
    if m.get("latency"):
        parts.append(f"p95_ms={m['latency']['p95_ms']:.2f}")
    return " ".join(parts)


def _score_examples(
    logits: np.ndarray,
    examples: Sequence,
    labels: Sequence[str],
    *,
    rare: Sequence[str],
    calibration: cal.Calibration | None,
    settings: EvalSettings,
    latency: dict | None,
) -> Evaluation:
    """:func:`evaluate_arrays` on a labelled file's examples (ids, texts and tags kept)."""
    index = {label: i for i, label in enumerate(labels)}
    ev = evaluate_arrays(
        logits,
        np.array([index[ex.label] for ex in examples]),
        labels,
        texts=[ex.text for ex in examples],
        tags=[ex.tags for ex in examples],
        rare=rare,
        calibration=calibration,
        settings=settings,
        latency=latency,
    )
    ev.ids = [ex.id for ex in examples]
    return ev


def evaluate_run(
    run,  # mangaassist.training.run_dir.LoadedRun (or anything with the same attributes)
    examples: Sequence,
    *,
    rare: Sequence[str] = (),
    calibration: cal.Calibration | None = None,
    settings: EvalSettings | None = None,
    time_it: bool = True,
    secondary: SecondaryPolicy | None = None,
) -> Evaluation:
    """Score examples with a loaded run, time batch-1 inference on them, and evaluate.

    Args:
        run: has ``model``, ``tokenizer``, ``labels``, ``config`` and ``predict_logits``.
        examples: :class:`~mangaassist.data.schema.Example` objects with labels the run knows.
        time_it: measure batch-1 latency on (up to ``latency.max_messages`` of) these messages,
            on ``latency.runtime`` (ONNX Runtime by default; the result names the runtime).
        secondary: the run's secondary-intent policy; given (and the run has that head), the
            secondary figures go to ``metrics["secondary"]``, from the same forward pass.
    """
    s = settings or EvalSettings()
    if not examples:
        raise UserError("no examples to evaluate")
    texts = [ex.text for ex in examples]
    latency = None
    if time_it:  # on the serving runtime (latency.runtime), batch 1
        t = calibration.temperature if calibration else 1.0
        latency = latency_as_served(run, texts, s.latency, temperature=t)
    second = secondary is not None and getattr(run, "has_secondary", False)
    logits, sec_logits = run.predict_heads(texts) if second else (run.predict_logits(texts), None)
    ev = _score_examples(
        logits,
        examples,
        run.labels,
        rare=rare,
        calibration=calibration,
        settings=s,
        latency=latency,
    )
    if sec_logits is not None:
        ev.metrics["secondary"], ev.secondary = evaluate_secondary(
            sec_logits, ev.y_pred, examples, run.labels, secondary
        )
    return ev


def evaluate_bundle(
    predictor,  # mangaassist.inference.Predictor
    examples: Sequence,
    *,
    rare: Sequence[str] = (),
    settings: EvalSettings | None = None,
    time_it: bool = True,
    secondary: SecondaryPolicy | None = None,
) -> Evaluation:
    """Score examples with an export bundle's predictor: the model exactly as served.

    Logits come from the same :class:`~mangaassist.inference.Predictor` the server batches
    with; calibration and the fallback rule are the bundle's, and latency is batch 1 on it.
    A bundle with the secondary head (``predictor.secondary``) also gets the secondary
    figures of :func:`evaluate_run` in ``metrics["secondary"]``, from the graph's second
    output in the same runs, under ``secondary`` (the policy recorded in the bundle's
    manifest; None: the predictor's threshold and mask).
    """
    from mangaassist.evaluation.latency import time_predict_one

    s = settings or EvalSettings()
    if not examples:
        raise UserError("no examples to evaluate")
    texts = [ex.text for ex in examples]
    latency = None
    if time_it:
        timing = {"warmup": s.latency.warmup, "max_messages": s.latency.max_messages}
        latency = {
            "runtime": f"onnxruntime-{predictor.precision}",
            **time_predict_one(predictor.predict_one, texts, **timing),
        }
        latency["num_threads"] = predictor.num_threads
    logits, sec_logits = predictor.heads(texts)  # (N, C) each; sec None without the head
    ev = _score_examples(
        logits,
        examples,
        predictor.labels,
        rare=rare,
        calibration=predictor.calibration,
        settings=s,
        latency=latency,
    )
    if sec_logits is not None:
        rule = predictor.secondary
        policy = secondary or SecondaryPolicy(rule.threshold, rule.mask_primary, "bundle")
        ev.metrics["secondary"], ev.secondary = evaluate_secondary(
            sec_logits, ev.y_pred, examples, predictor.labels, policy
        )
    return ev


def write_evaluation(
    ev: Evaluation, out_dir: Path, title: str = "Evaluation", context: dict | None = None
) -> Path:
    """Write ``metrics.json``, ``predictions.jsonl`` and ``report.html`` into ``out_dir``.

    Returns:
        The report's path.
    """
    from mangaassist.evaluation.report import write_report  # matplotlib only when writing

    out_dir = Path(out_dir)
    out_dir.mkdir(parents=True, exist_ok=True)
    m = {**ev.metrics, "context": context or {}}
    write_json(out_dir / "metrics.json", m, ensure_ascii=False)
    labels = ev.metrics["labels"]
    actions = fallback.FallbackPolicy(
        ev.metrics["fallback"]["global_threshold"],
        ev.metrics["fallback"]["margin"],
        {r["label"]: r["threshold"] for r in ev.metrics["per_class"]},
    ).route(ev.probs_after, labels)
    with (
        replacing(out_dir / "predictions.jsonl") as tmp,
        tmp.open("w", encoding="utf-8") as f,
    ):
        for i, (p, a) in enumerate(zip(ev.probs_after, actions, strict=True)):
            row = {
                "id": ev.ids[i] if i < len(ev.ids) else "",
                "text": ev.texts[i],
                "label": labels[ev.y_true[i]],
                "pred": labels[int(p.argmax())],
                "confidence": round(float(p.max()), 5),
                "action": str(a),
            }
            if ev.secondary:  # the secondary head's predicted set, beside the true one
                row["secondary_pred"] = ev.secondary[i]
            f.write(json.dumps(row, ensure_ascii=False) + "\n")
    return write_report(ev, out_dir / "report.html", title=title, context=context or {})
