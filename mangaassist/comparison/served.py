"""Every candidate's bundle as served, fp32 and int8, timed in one process: the frontier's x axis.

A run's own ``eval/summary.json`` latency was timed at the end of its training, on whatever else
the machine was doing then; figures from different hours are not comparable on a 2-core VM
(run-to-run spread of ~10%). Here every (candidate, precision) of the runs given is timed in the
same process, in interleaved rounds (round 1: every model, round 2: every model, ...), so a slow
minute of the machine falls on all of them alike. Per (candidate, precision):

- batch-1 latency as served: normalise, tokenize, ONNX Runtime forward on one thread, softmax,
  one message at a time (P50/P95/P99 over ``rounds x per_round`` messages, after warm-up);
- sustained throughput at batch 32: messages grouped by length (the batcher's order), one thread;
- golden-set accuracy of the bundle's argmax with a 95% Wilson interval
  (:func:`mangaassist.evaluation.slices.wilson_interval`; shown, never used to choose; the int8
  graph has no other golden figure).
"""

from __future__ import annotations

import time
from collections.abc import Sequence
from dataclasses import asdict, dataclass
from pathlib import Path

import numpy as np

from mangaassist.atomic import write_json
from mangaassist.comparison.runs import RunRecord
from mangaassist.data.schema import Example
from mangaassist.errors import UserError
from mangaassist.evaluation.slices import wilson_interval

BATCH = 32  # the throughput batch: the serving batcher's max_batch
WARMUP = 20  # untimed calls per predictor before its first round


@dataclass
class Served:
    """One (candidate, precision) as served; ms per message, messages per second."""

    model: str
    precision: str
    p50_ms: float
    p95_ms: float
    p99_ms: float
    b32_msgs_per_s: float
    golden_acc: float | None = None
    golden_lo: float | None = None
    golden_hi: float | None = None
    golden_n: int = 0
    int8_val_macro_f1_delta: float | None = None  # points, int8 - fp32 (the export's check)


def _bundle(run: RunRecord) -> Path:
    folder = run.path / "export"
    if not (folder / "manifest.json").is_file():
        raise UserError(
            f"{run.path}: no exported bundle to time; run `mangaassist export {run.path} "
            "--quantize int8` first (or leave --served off)"
        )
    return folder


def _int8_delta(bundle) -> float | None:
    check = bundle.manifest.get("int8") or {}
    if check.get("macro_f1_int8") is None or check.get("macro_f1_fp32") is None:
        return None
    return float(check["macro_f1_int8"]) - float(check["macro_f1_fp32"])


def _golden(predictor, golden: Sequence[Example]) -> tuple[float, float, float, int]:
    logits = predictor.logits([e.text for e in golden])  # (N, C)
    predicted = [predictor.labels[int(i)] for i in logits.argmax(axis=1)]
    correct = sum(p == e.label for p, e in zip(predicted, golden, strict=True))
    return (correct / len(golden), *wilson_interval(correct, len(golden)), len(golden))


def _throughput(predictor, texts: Sequence[str]) -> float:
    ids = predictor.tokenizer.encode(texts)
    predictor.logits_of_ids(ids[:BATCH], batch_size=BATCH)  # warm the batch shapes
    start = time.perf_counter()
    predictor.logits_of_ids(ids, batch_size=BATCH)
    return len(ids) / (time.perf_counter() - start)


def bench_served(
    runs: Sequence[RunRecord],
    texts: Sequence[str],
    golden: Sequence[Example] = (),
    *,
    rounds: int = 5,
    per_round: int = 100,
) -> list[Served]:
    """Time every run's bundle (fp32, and int8 when exported), interleaved; see the module doc.

    Args:
        runs: finished runs, each with ``export/`` (``mangaassist export RUN --quantize int8``).
        texts: messages to time (validation messages: timing chooses nothing, but keep the
            golden set for its own figure); cycled if fewer than ``rounds x per_round``.
        golden: labelled messages for the golden accuracy column (empty: no column).
        rounds: interleaved rounds; each times ``per_round`` messages of every predictor.
        per_round: messages per predictor per round.

    Returns:
        One :class:`Served` per (run, precision), in the order of ``runs``.
    """
    from mangaassist.inference.bundle import open_bundle
    from mangaassist.inference.predictor import Predictor

    if not texts:
        raise UserError("no messages to time the bundles on")
    predictors = []  # (run, bundle, predictor)
    for run in runs:
        bundle = open_bundle(_bundle(run))
        for precision in bundle.precisions():
            predictors.append((run, bundle, Predictor.from_bundle(bundle, precision, 1)))
    samples: list[list[float]] = [[] for _ in predictors]
    for _, _, p in predictors:
        for text in texts[:WARMUP]:
            p.proba([text])
    for r in range(rounds):
        chunk = [texts[(r * per_round + i) % len(texts)] for i in range(per_round)]
        for k, (_, _, p) in enumerate(predictors):
            for text in chunk:
                start = time.perf_counter()
                p.proba([text])
                samples[k].append(1000 * (time.perf_counter() - start))
    out = []
    for (run, bundle, p), ms in zip(predictors, samples, strict=True):
        p50, p95, p99 = np.percentile(np.asarray(ms), [50, 95, 99])
        row = Served(run.model, p.precision, float(p50), float(p95), float(p99), 0.0)
        row.b32_msgs_per_s = _throughput(p, texts)
        if golden:
            row.golden_acc, row.golden_lo, row.golden_hi, row.golden_n = _golden(p, golden)
        if p.precision == "int8":
            row.int8_val_macro_f1_delta = _int8_delta(bundle)
        out.append(row)
    return out


def write_served(rows: Sequence[Served], path: Path) -> Path:
    """``served.json``: the bench's figures, one object per (candidate, precision)."""
    write_json(path, [asdict(r) for r in rows])
    return path


def read_served(path: Path) -> list[Served]:
    """The rows of a ``served.json`` written by :func:`write_served`."""
    from mangaassist.evaluation.artifacts import read_json

    rows = read_json(path, "served bench", "rerun `mangaassist compare models ... --served`")
    try:
        return [Served(**row) for row in rows]
    except TypeError as err:
        raise UserError(f"{path}: not a served.json of this version ({err})") from err
