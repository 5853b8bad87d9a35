"""Discriminative (layer-wise) learning rates for transformer encoders.

Layer ``l`` trains at ``eta_l = eta_base * xi ** (L - l)``: embeddings are layer 0, encoder
block ``i`` is layer ``i + 1``, the classification head is layer ``L = n_blocks + 1`` and gets
``eta_base``. Low layers hold general language knowledge and move slowly; the head is new and
moves fastest. Biases and LayerNorm weights get no weight decay. A second head (the
secondary-intent head) gets groups of its own at ``eta_base``, named after it.

One naming rule covers the families we ship: BERT/MiniLM/TinyBERT and RoBERTa
(``embeddings.*``, ``encoder.layer.<i>.*``) and DistilBERT (``embeddings.*``,
``transformer.layer.<i>.*``).

Example (6-block MiniLM, eta_base 2e-5, xi 0.8): head 2e-5, block 6 1.6e-5, ..., embeddings
2e-5 * 0.8**7 = 4.2e-6.
"""

from __future__ import annotations

import re
from collections.abc import Mapping

from torch import nn

_BLOCK = re.compile(r"(?:^|\.)(?:encoder|transformer)\.layer\.(\d+)\.")
_NO_DECAY = re.compile(r"(bias$|LayerNorm|layer_norm|layernorm|\.norm)", re.IGNORECASE)


def layer_index(name: str, n_blocks: int) -> int:
    """Layer of an encoder parameter: 0 for embeddings, ``i + 1`` for block ``i``.

    Anything else inside the encoder (a final norm, say) sits with the top block.
    """
    if name.startswith("embeddings.") or ".embeddings." in name:
        return 0
    match = _BLOCK.search("." + name)
    return int(match.group(1)) + 1 if match else n_blocks


def count_blocks(encoder: nn.Module) -> int:
    """Number of transformer blocks, read from the parameter names."""
    found = [
        int(m.group(1)) for n, _ in encoder.named_parameters() if (m := _BLOCK.search("." + n))
    ]
    if not found:
        raise ValueError("no `encoder.layer.<i>` or `transformer.layer.<i>` parameters found")
    return max(found) + 1


def layerwise_param_groups(
    encoder: nn.Module,
    head: nn.Module,
    base_lr: float,
    layer_decay: float = 0.8,
    weight_decay: float = 0.01,
    extra_heads: Mapping[str, nn.Module] | None = None,
) -> list[dict]:
    """AdamW param groups with layer-wise LRs; each trainable parameter in exactly one group.

    Args:
        encoder: the transformer (embeddings + blocks).
        head: everything trained at ``base_lr`` (the classifier).
        base_lr: ``eta_base``, the head's learning rate.
        layer_decay: ``xi`` in (0, 1]; 1 gives one LR everywhere.
        weight_decay: for weight matrices; biases and norms get 0.
        extra_heads: further heads by name (``{"secondary": head}``), each trained at
            ``base_lr`` in groups of its own, ``<name>_decay`` / ``<name>_no_decay``, after
            the layers' groups.

    Returns:
        Groups ordered from embeddings to head, each with ``params``, ``lr``, ``weight_decay``
        and a ``name`` such as ``layer03_decay`` (LR loggers and tests read it), then the
        extra heads' groups.
    """
    if not 0 < layer_decay <= 1:
        raise ValueError(f"layer_decay must be in (0, 1], got {layer_decay}")
    n_blocks = count_blocks(encoder)
    top = n_blocks + 1  # the head's layer index L
    buckets: dict[tuple[int, bool], list[nn.Parameter]] = {}
    named = [(n, p, layer_index(n, n_blocks)) for n, p in encoder.named_parameters()]
    named += [(f"head.{n}", p, top) for n, p in head.named_parameters()]
    for name, param, layer in named:
        if param.requires_grad:
            buckets.setdefault((layer, not _NO_DECAY.search(name)), []).append(param)
    groups = []
    for (layer, decay), params in sorted(buckets.items()):
        groups.append(
            {
                "params": params,
                "lr": base_lr * layer_decay ** (top - layer),
                "weight_decay": weight_decay if decay else 0.0,
                "name": f"layer{layer:02d}_{'decay' if decay else 'no_decay'}",
            }
        )
    for head_name, extra in (extra_heads or {}).items():
        by_decay: dict[bool, list[nn.Parameter]] = {}
        for name, param in extra.named_parameters():
            if param.requires_grad:
                by_decay.setdefault(not _NO_DECAY.search(name), []).append(param)
        for decay in (True, False):
            if by_decay.get(decay):
                groups.append(
                    {
                        "params": by_decay[decay],
                        "lr": base_lr,
                        "weight_decay": weight_decay if decay else 0.0,
                        "name": f"{head_name}_{'decay' if decay else 'no_decay'}",
                    }
                )
    return groups
