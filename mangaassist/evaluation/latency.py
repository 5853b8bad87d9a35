"""Batch-1 latency of the model as it would be served: normalise, tokenize, forward, softmax.

Serving answers one chat message per request, so the figure that matters is the latency of a
single message with no batching, padding only to its own length, on the thread count a worker
gets (1 by default). Warm-up calls come first and are not timed (lazy initialisation, the
allocator, first-call kernels).

Example:
    >>> percentiles([1.0, 2.0, 3.0, 4.0, 100.0])["p50_ms"]
    3.0
"""

from __future__ import annotations

import time
from collections.abc import Callable, Sequence

import numpy as np
import torch


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


@torch.inference_mode()
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
) -> dict:
    """Time tokenize + forward + softmax for one message at a time.

    Args:
        model: ``forward(input_ids, attention_mask) -> logits (1, C)``, in eval mode.
        tokenizer: a Hugging Face tokenizer.
        texts: messages; the first ``max_messages`` are timed (cycled if fewer than warm-up).
        max_length: truncation length in tokens (the run's ``model.max_length``).
        num_threads: torch intra-op threads while timing; restored afterwards.
        preprocess: text normalisation applied first, as the serving predictor does.
        temperature: logits are divided by it before the softmax, as served.

    Returns:
        :func:`percentiles` of the timed calls plus ``num_threads``, ``warmup`` and
        ``samples_ms`` (the raw timings, for the histogram).
    """
    if not texts:
        raise ValueError("no messages to time")
    timed = list(texts[:max_messages])
    prep = preprocess or (lambda s: s)
    previous = torch.get_num_threads()
    torch.set_num_threads(num_threads)
    model.eval()

    def once(text: str) -> None:
        enc = tokenizer(prep(text), truncation=True, max_length=max_length, return_tensors="pt")
        logits = model(enc["input_ids"], enc["attention_mask"])  # (1, C)
        (logits / temperature).softmax(-1)

    try:
        for i in range(warmup):
            once(timed[i % len(timed)])
        samples = []
        for text in timed:
            start = time.perf_counter_ns()
            once(text)
            samples.append((time.perf_counter_ns() - start) / 1e6)  # ns -> ms
    finally:
        torch.set_num_threads(previous)
    return {
        **percentiles(samples),
        "num_threads": num_threads,
        "warmup": warmup,
        "samples_ms": samples,
    }
