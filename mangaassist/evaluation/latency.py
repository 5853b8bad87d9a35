"""Batch-1 latency of the model as it would be served: normalise, tokenize, forward, softmax.

Serving answers one chat message per request, so the figure that matters is the latency of a
single message with no batching, padding only to its own length, on the thread count a worker
gets (1 by default). Warm-up calls come first and are not timed (lazy initialisation, the
allocator, first-call kernels). The runtime timed is the serving one, ONNX Runtime, unless
``latency.runtime: torch`` asks for PyTorch eager; the result names it (``runtime``).

Example:
    >>> percentiles([1.0, 2.0, 3.0, 4.0, 100.0])["p50_ms"]
    3.0
    >>> time_predict_one(len, ["a", "bb"], warmup=1)["n"]
    2
"""

from __future__ import annotations

import tempfile
import time
from collections.abc import Callable, Sequence
from pathlib import Path

import numpy as np
import torch

from mangaassist.data.truncation import Truncation
from mangaassist.evaluation.settings import RUNTIMES, LatencySettings

PARITY_MESSAGES = 8  # messages checked for ONNX/PyTorch logit parity before timing


def percentiles(samples_ms: Sequence[float]) -> dict:
    """P50/P95/P99 and mean of latency samples (ms), linear interpolation between ranks."""
    a = np.asarray(samples_ms, dtype=np.float64)
    if a.size == 0:
        raise ValueError("no latency samples")
    p50, p95, p99 = np.percentile(a, [50, 95, 99])
    return {
        "n": int(a.size),
        "p50_ms": float(p50),
        "p95_ms": float(p95),
        "p99_ms": float(p99),
        "mean_ms": float(a.mean()),
        "max_ms": float(a.max()),
    }


def time_predict_one(
    predict_one: Callable[[str], object],
    texts: Sequence[str],
    *,
    num_threads: int = 1,
    warmup: int = 20,
    max_messages: int = 300,
) -> dict:
    """Time ``predict_one(text)`` on one message at a time, after untimed warm-up calls.

    Args:
        predict_one: the whole serving path for one message (normalise ... softmax).
        texts: messages; the first ``max_messages`` are timed (cycled if fewer than warm-up).
        num_threads: torch intra-op threads while timing, restored afterwards (an ONNX
            Runtime predictor sets its own session threads).
        warmup: untimed calls first.

    Returns:
        :func:`percentiles` of the timed calls plus ``num_threads``, ``warmup`` and
        ``samples_ms`` (the raw timings, for the histogram).
    """
    if not texts:
        raise ValueError("no messages to time")
    timed = list(texts[:max_messages])
    previous = torch.get_num_threads()
    torch.set_num_threads(num_threads)
    try:
        for i in range(warmup):
            predict_one(timed[i % len(timed)])
        samples = []
        for text in timed:
            start = time.perf_counter_ns()
            predict_one(text)
            samples.append((time.perf_counter_ns() - start) / 1e6)  # ns -> ms
    finally:
        torch.set_num_threads(previous)
    return {
        **percentiles(samples),
        "num_threads": num_threads,
        "warmup": warmup,
        "samples_ms": samples,
    }


def measure_latency(
    model: torch.nn.Module,
    tokenizer: Callable,
    texts: Sequence[str],
    max_length: int,
    *,
    num_threads: int = 1,
    warmup: int = 20,
    max_messages: int = 300,
    preprocess: Callable[[str], str] | None = None,
    temperature: float = 1.0,
    truncation: Truncation | None = None,
) -> dict:
    """Time PyTorch eager tokenize + forward + softmax for one message at a time.

    Args:
        model: ``forward(input_ids, attention_mask) -> logits (1, C)``, in eval mode.
        tokenizer: a Hugging Face tokenizer.
        texts: messages; the first ``max_messages`` are timed (cycled if fewer than warm-up).
        max_length: truncation length in tokens (the run's ``model.max_length``).
        num_threads: torch intra-op threads while timing; restored afterwards.
        preprocess: text normalisation applied first, as the serving predictor does.
        temperature: logits are divided by it before the softmax, as served.
        truncation: what a message over ``max_length`` keeps (default ``first``), as trained.

    Returns:
        :func:`time_predict_one`'s result with ``runtime: torch``.
    """
    prep = preprocess or (lambda s: s)
    cut = truncation or Truncation()
    model.eval()

    @torch.inference_mode()
    def once(text: str) -> torch.Tensor:
        ids = torch.tensor(cut.encode(tokenizer, [prep(text)], max_length))  # (1, L)
        logits = model(ids, torch.ones_like(ids))  # (1, C)
        return (logits / temperature).softmax(-1)

    out = time_predict_one(
        once, texts, num_threads=num_threads, warmup=warmup, max_messages=max_messages
    )
    return {"runtime": "torch", **out}


def _onnx_file(run, folder: Path) -> tuple[Path, str]:
    """The run's exported ``export/model.onnx`` if newer than its checkpoint, else a fresh one."""
    from mangaassist.model.onnx_runtime import to_onnx

    run_dir = getattr(run, "path", None)
    if run_dir is not None:
        onnx_file = Path(run_dir) / "export" / "model.onnx"
        ckpt = Path(run_dir) / "checkpoints" / "best.ckpt"
        fresh = onnx_file.is_file() and ckpt.is_file()
        if fresh and onnx_file.stat().st_mtime_ns > ckpt.stat().st_mtime_ns:
            return onnx_file, "reused"
    max_length = int(run.config.model.max_length)
    return to_onnx(run.model, run.tokenizer, folder / "model.onnx", max_length), "exported"


def latency_as_served(
    run,  # mangaassist.training.run_dir.LoadedRun (model, tokenizer, config, path)
    texts: Sequence[str],
    settings: LatencySettings,
    temperature: float = 1.0,
) -> dict:
    """Batch-1 latency of a run on the configured runtime (``settings.runtime``).

    ``onnxruntime``: the run's model is exported (or ``<run>/export/model.onnx`` reused when
    newer than the checkpoint), its logits are checked against PyTorch on a few messages, then
    normalise + tokenize + ONNX Runtime + softmax is timed. ``torch``: PyTorch eager.

    Returns:
        :func:`time_predict_one`'s result plus ``runtime`` (and, for ONNX Runtime,
        ``parity_max_abs_diff`` and ``onnx``: ``exported`` or ``reused``).

    Raises:
        ParityError: ONNX Runtime disagrees with PyTorch beyond ``settings.parity_atol``.
    """
    from mangaassist.data.normalize import normalize_text

    if settings.runtime not in RUNTIMES:
        raise ValueError(f"latency.runtime must be one of {RUNTIMES}, got {settings.runtime!r}")
    # A LoadedRun's text function (normalise, + romaji when trained so); a stand-in run
    # without one is timed with the plain normalisation, as before.
    preprocess = getattr(run, "preprocess", normalize_text)
    truncation = getattr(run, "truncation", None)  # the run's (first for stand-in runs)
    max_length = int(run.config.model.max_length)
    timing = {
        "num_threads": settings.num_threads,
        "warmup": settings.warmup,
        "max_messages": settings.max_messages,
    }
    if settings.runtime == "torch":
        return measure_latency(
            run.model,
            run.tokenizer,
            texts,
            max_length,
            preprocess=preprocess,
            temperature=temperature,
            truncation=truncation,
            **timing,
        )
    from mangaassist.model.onnx_runtime import check_parity, onnx_predictor

    with tempfile.TemporaryDirectory(prefix="mangaassist-onnx-") as tmp:
        path, how = _onnx_file(run, Path(tmp))
        predictor = onnx_predictor(
            path,
            run.tokenizer,
            max_length,
            run.labels,
            num_threads=settings.num_threads,
            temperature=temperature,
            preprocess=preprocess,
            truncation=truncation,
        )
        parity = check_parity(
            run.model, predictor, list(texts[:PARITY_MESSAGES]), atol=settings.parity_atol
        )
        out = time_predict_one(predictor.predict_one, texts, **timing)
    return {"runtime": "onnxruntime", **out, "parity_max_abs_diff": parity, "onnx": how}
