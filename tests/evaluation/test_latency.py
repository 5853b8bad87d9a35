"""Batch-1 latency: percentiles and the timing loop on a tiny model."""

from __future__ import annotations

import numpy as np
import pytest
import torch

from mangaassist.evaluation.latency import measure_latency, percentiles


def test_percentiles_match_numpy():
    rng = np.random.default_rng(0)
    s = rng.gamma(2.0, 3.0, 500)
    p = percentiles(s)
    assert p["p95_ms"] == pytest.approx(np.percentile(s, 95))
    assert p["p50_ms"] <= p["p95_ms"] <= p["p99_ms"] <= p["max_ms"]
    with pytest.raises(ValueError):
        percentiles([])


class Tiny(torch.nn.Module):
    def __init__(self) -> None:
        super().__init__()
        self.emb = torch.nn.EmbeddingBag(100, 8)
        self.head = torch.nn.Linear(8, 3)
        self.calls: list[tuple] = []

    def forward(self, input_ids, attention_mask):
        self.calls.append(tuple(input_ids.shape))
        return self.head(self.emb(input_ids))


def tokenizer(texts, truncation, max_length, verbose=True):
    """A Hugging Face tokenizer's batch call, as Truncation.encode makes it: ids per text."""
    cut = max_length if truncation else None
    return {"input_ids": [[hash(w) % 100 for w in t.split()][:cut] for t in texts]}


def test_measure_latency_times_one_message_at_a_time_and_restores_threads():
    model = Tiny()
    threads = torch.get_num_threads()
    texts = [" ".join(["w"] * k) for k in range(1, 11)]
    seen = []
    out = measure_latency(
        model,
        tokenizer,
        texts,
        max_length=4,
        num_threads=1,
        warmup=3,
        max_messages=8,
        preprocess=lambda s: seen.append(s) or s,
    )
    assert out["n"] == 8 and len(out["samples_ms"]) == 8
    assert len(model.calls) == 3 + 8  # warm-up calls are made but not timed
    assert all(shape[0] == 1 and shape[1] <= 4 for shape in model.calls)  # batch 1, truncated
    assert len(seen) == 11  # normalisation runs on every call, as in serving
    assert out["p50_ms"] > 0 and out["num_threads"] == 1
    assert torch.get_num_threads() == threads
