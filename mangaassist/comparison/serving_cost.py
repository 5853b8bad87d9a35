"""What serving a model costs per month, from its measured batch-1 latency.

One worker answers ``1000 / latency_ms`` requests per second (batch 1, one thread: how
latency is timed); an instance runs ``workers_per_instance`` of them and is kept at most
``utilisation`` busy, so::

    capacity  = workers_per_instance * 1000 / latency_ms * utilisation      (requests/s)
    instances = max(min_instances, ceil(target_rps / capacity))
    monthly   = instances * price_per_hour * hours_per_month

Example:
    >>> from mangaassist.comparison.settings import ModelSettings
    >>> s = ModelSettings(target_rps=500, workers_per_instance=4, utilisation=0.7,
    ...                   min_instances=2, price_per_hour=0.17, hours_per_month=730)
    >>> c = serving_cost(10.0, s)  # 4 * 100 * 0.7 = 280 req/s per instance -> 2 instances
    >>> round(c.capacity_rps), c.instances, round(c.monthly_usd, 2)
    (280, 2, 248.2)
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from pathlib import Path

from mangaassist.comparison.settings import ModelSettings


@dataclass(frozen=True)
class ServingCost:
    """Capacity of one instance, instances needed, and the monthly bill."""

    latency_ms: float
    capacity_rps: float
    instances: int
    monthly_usd: float


def serving_cost(latency_ms: float, s: ModelSettings) -> ServingCost:
    """Instances and monthly cost to serve ``s.target_rps`` at ``latency_ms`` per request."""
    if not latency_ms > 0:
        raise ValueError(f"latency must be > 0 ms, got {latency_ms}")
    capacity = s.workers_per_instance * 1000.0 / latency_ms * s.utilisation
    instances = max(int(s.min_instances), math.ceil(s.target_rps / capacity))
    return ServingCost(
        latency_ms, capacity, instances, instances * s.price_per_hour * s.hours_per_month
    )


def cost_per_point(
    monthly: float, quality: float, ref_monthly: float, ref_quality: float
) -> float | None:
    """Extra USD per month per extra quality point over a reference (None: no gain).

    ``quality`` values are fractions; a point is one percentage point.
    """
    gain = 100 * (quality - ref_quality)
    if gain <= 0:
        return None
    return (monthly - ref_monthly) / gain


def weights_info(run_dir: Path) -> tuple[int | None, float | None]:
    """(parameters, size of the weights in MB) from ``checkpoints/best.ckpt``; Nones without it.

    Counts the floating-point tensors of the checkpoint's ``state_dict`` (encoder and head;
    the training criterion's class weights are left out); the size is what a weights-only
    file in their dtype would take (optimizer state excluded).
    """
    ckpt = Path(run_dir) / "checkpoints" / "best.ckpt"
    if not ckpt.is_file():
        return None, None
    import torch

    from mangaassist.checkpoint import load_checkpoint

    try:
        state = load_checkpoint(ckpt, mmap=True)["state_dict"]
    except Exception:  # an unreadable checkpoint only loses this column
        return None, None
    tensors = [
        v
        for k, v in state.items()
        if not k.startswith("criterion.") and torch.is_tensor(v) and v.is_floating_point()
    ]
    params = sum(int(t.numel()) for t in tensors)
    return params, sum(int(t.numel()) * t.element_size() for t in tensors) / 1e6
