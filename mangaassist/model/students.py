"""Layer-reduced students: an encoder with only some of its transformer blocks kept.

A student of all-MiniLM-L6-v2 keeps ``k`` of its 6 blocks, in their order, with their
pre-trained weights; the embeddings (and the unused pooler) come along unchanged. The result
is an ordinary ``transformers`` model with ``config.num_hidden_layers = k``, so it saves,
reloads from a run directory's ``backbone/config.json``, gets layer-wise LRs and exports to
ONNX like any other encoder. ``config.kept_layers`` records which source blocks it holds.

Which blocks are kept is ``model.keep_layers``: a list of source block indices, or one of the
rules below, which ``model.num_layers`` sizes (``n`` source blocks, ``k`` kept; n = 6):

- ``bottom``: the first ``k`` (``[0, 1, 2]``); the top blocks are the most task-specific, and
  dropping them is the strongest simple rule in Sajjad et al. (2023, "On the effect of
  dropping layers of pre-trained transformer models").
- ``top``: the last ``k`` (``[3, 4, 5]``); keeps the blocks whose output pre-training shaped.
- ``alternate``: every other block from the bottom (``[0, 2, 4]``, DistilBERT's
  initialisation), topped up with the highest blocks not yet kept when ``k > n / 2``
  (``k = 4``: ``[0, 2, 4, 5]``).
- ``spread``: evenly spread over the depth, the first and last always kept
  (``[0, 2, 5]``, ``k = 2``: ``[0, 5]``).

Example:
    >>> rule_layers("alternate", 6, 4), rule_layers("spread", 6, 3), rule_layers("top", 6, 2)
    ([0, 2, 4, 5], [0, 2, 5], [4, 5])
"""

from __future__ import annotations

import copy
import itertools
import re
from collections.abc import Sequence

from transformers import AutoModel, PreTrainedModel

from mangaassist.errors import UserError

RULES = ("bottom", "top", "alternate", "spread")
# A tiny (random) student is cut from a tiny model as deep as the encoder it stands in for
# (all-MiniLM-L6-v2), so rules and lists resolve as they do for the real model.
TINY_SOURCE_LAYERS = 6
# ``encoder.layer.<i>.`` (BERT, MiniLM, TinyBERT, RoBERTa) or ``transformer.layer.<i>.``
# (DistilBERT): the same naming the layer-wise param groups read.
_BLOCK = re.compile(r"^((?:.*\.)?(?:encoder|transformer)\.layer\.)(\d+)(\..*)$")

KeepLayers = Sequence[int] | str


def rule_layers(rule: str, n_source: int, n_keep: int) -> list[int]:
    """The source blocks a named rule keeps (see the module docstring).

    Args:
        rule: ``bottom``, ``top``, ``alternate`` or ``spread``.
        n_source: blocks in the source encoder (6 for all-MiniLM-L6-v2).
        n_keep: blocks the student keeps, 1 to ``n_source``.

    Returns:
        ``n_keep`` increasing block indices in ``[0, n_source)``.

    Raises:
        UserError: an unknown rule or a size out of range.
    """
    if rule not in RULES:
        raise UserError(
            f"model.keep_layers={rule} is not a rule; use one of {list(RULES)} or a list of "
            f"block indices such as [0, 2, 4]"
        )
    if not 1 <= n_keep <= n_source:
        raise UserError(
            f"model.num_layers={n_keep}: a student keeps 1 to {n_source} of the encoder's "
            f"{n_source} layers"
        )
    if rule == "bottom":
        return list(range(n_keep))
    if rule == "top":
        return list(range(n_source - n_keep, n_source))
    if rule == "alternate":
        kept = list(range(0, n_source, 2))[:n_keep]
        rest = [i for i in reversed(range(n_source)) if i not in kept]
        return sorted(kept + rest[: n_keep - len(kept)])
    if n_keep == 1:  # spread: one block cannot span the depth; keep the top one
        return [n_source - 1]
    # round(i * (n - 1) / (k - 1)) with halves rounded down, in integers: distinct and sorted
    # because the step (n - 1) / (k - 1) is >= 1.
    return [
        (2 * i * (n_source - 1) + (n_keep - 1) - 1) // (2 * (n_keep - 1)) for i in range(n_keep)
    ]


def resolve_keep_layers(
    keep_layers: KeepLayers, num_layers: int | None, n_source: int
) -> list[int]:
    """``model.keep_layers`` (a list or a rule) and ``model.num_layers`` -> block indices.

    Args:
        keep_layers: increasing source block indices, or a rule name from :data:`RULES`.
        num_layers: the student's depth; required with a rule, and with a list it must be
            the list's length (or None).
        n_source: blocks in the source encoder.

    Raises:
        UserError: a rule without ``num_layers``, a list of the wrong length, an index out of
            range, or a list that is not strictly increasing; the message names the keys.
    """
    if isinstance(keep_layers, str):
        if num_layers is None:
            raise UserError(
                f"model.keep_layers={keep_layers} needs model.num_layers (how many layers to keep)"
            )
        return rule_layers(keep_layers, n_source, int(num_layers))
    keep = [int(i) for i in keep_layers]
    shown = "[" + ",".join(map(str, keep)) + "]"
    if not keep:
        raise UserError("model.keep_layers=[] keeps no layer; list at least one block index")
    if num_layers is not None and int(num_layers) != len(keep):
        raise UserError(
            f"model.keep_layers={shown} keeps {len(keep)} layers but model.num_layers="
            f"{num_layers}; set model.num_layers={len(keep)} (or pick model=minilm_l{len(keep)})"
        )
    bad = [i for i in keep if not 0 <= i < n_source]
    if bad:
        raise UserError(
            f"model.keep_layers={shown}: block(s) {bad} do not exist; the source encoder has "
            f"{n_source} layers, numbered 0 to {n_source - 1}"
        )
    if any(b <= a for a, b in itertools.pairwise(keep)):
        raise UserError(
            f"model.keep_layers={shown} must be strictly increasing: blocks keep their order"
        )
    return keep


def student_depth(keep_layers: KeepLayers, num_layers: int | None) -> int:
    """How many blocks the student has, without knowing the source (a rule needs ``num_layers``)."""
    if isinstance(keep_layers, str):
        if num_layers is None:
            raise UserError(
                f"model.keep_layers={keep_layers} needs model.num_layers (how many layers to keep)"
            )
        return int(num_layers)
    return len(keep_layers)


def tiny_source_layers(keep_layers: KeepLayers) -> int:
    """Depth of the random tiny model a tiny student is cut from: 6, or deeper if listed."""
    if isinstance(keep_layers, str) or not keep_layers:
        return TINY_SOURCE_LAYERS
    return max(TINY_SOURCE_LAYERS, max(int(i) for i in keep_layers) + 1)


def select_layers(encoder: PreTrainedModel, keep: Sequence[int]) -> PreTrainedModel:
    """A new encoder holding ``encoder``'s blocks ``keep`` (renumbered 0..k-1) and the rest.

    The student is built from a copy of the source config with ``num_hidden_layers = k``
    (so every block's own ``layer_idx`` is right), then loaded strictly: student block ``i``
    gets source block ``keep[i]``'s tensors; embeddings and everything outside the blocks are
    copied as they are. ``config.kept_layers`` and ``config.source_layers`` record the cut.

    Args:
        encoder: a ``transformers`` encoder (BERT, RoBERTa or DistilBERT naming).
        keep: increasing source block indices.

    Returns:
        The student, in the source's dtype and training mode.
    """
    n_source = int(encoder.config.num_hidden_layers)
    keep = resolve_keep_layers(list(keep), None, n_source)
    config = copy.deepcopy(encoder.config)
    config.num_hidden_layers = len(keep)  # DistilBERT maps it to n_layers
    config.kept_layers = [int(i) for i in keep]
    config.source_layers = n_source
    student = AutoModel.from_config(
        config, attn_implementation=getattr(encoder.config, "_attn_implementation", None)
    )
    source = encoder.state_dict()
    state = {}
    for key in student.state_dict():
        match = _BLOCK.match(key)
        src = f"{match[1]}{keep[int(match[2])]}{match[3]}" if match else key
        state[key] = source[src]
    student.load_state_dict(state, strict=True)  # every tensor of the student, no extra
    student.to(encoder.dtype)
    student.train(encoder.training)
    return student


def make_student(
    encoder: PreTrainedModel, keep_layers: KeepLayers, num_layers: int | None, init: str
) -> PreTrainedModel:
    """Cut ``encoder`` to the configured student; what :func:`load_backbone` calls.

    With ``init="config"`` the encoder is usually a run directory's ``backbone/``, already
    cut: one as deep as the student is returned as it is (its ``kept_layers`` must agree
    with a listed ``keep_layers``). Otherwise the blocks are selected from ``encoder``.

    Raises:
        UserError: a bad ``keep_layers`` / ``num_layers`` (see :func:`resolve_keep_layers`),
            or a reloaded backbone that holds other blocks than the list names.
    """
    depth = student_depth(keep_layers, num_layers)
    n_have = int(encoder.config.num_hidden_layers)
    if init == "config" and n_have == depth:
        recorded = getattr(encoder.config, "kept_layers", None)
        listed = None if isinstance(keep_layers, str) else [int(i) for i in keep_layers]
        if recorded is not None and listed is not None and listed != list(recorded):
            raise UserError(
                f"model.keep_layers={listed} but this backbone was cut to source layers "
                f"{list(recorded)} (backbone/config.json kept_layers)"
            )
        return encoder
    source_layers = getattr(encoder.config, "source_layers", None)
    if source_layers is not None and init == "config" and n_have != depth:
        raise UserError(
            f"this backbone is already a {n_have}-layer student (kept_layers "
            f"{getattr(encoder.config, 'kept_layers', '?')}); model.keep_layers asks for {depth}"
        )
    return select_layers(encoder, resolve_keep_layers(keep_layers, num_layers, n_have))
