"""The intent classifier to ONNX: export, and a parity check against PyTorch.

ONNX Runtime is the CPU serving runtime: on the default encoder it answers one message about
2.5x faster than PyTorch eager. The exported graph is the classifier's
``forward(input_ids, attention_mask) -> logits`` (raw logits, before temperature, exactly what
``IntentClassifier.forward`` returns); served probabilities are ``softmax(logits / T)`` with
``T`` from calibration, computed by the torch-free runtime
(:class:`~mangaassist.inference.predictor.Predictor`), as
:meth:`IntentClassifier.predict_proba` computes them in torch. A model with the secondary-intent
head exports ``forward_with_secondary`` instead: a second output ``secondary_logits`` (B, C)
from the same pass, and :func:`parity_diffs` checks both outputs.

Example (export and check; see ``tests/model/test_onnx_runtime.py`` for a full run)::

    path = to_onnx(run.model, run.tokenizer, "model.onnx", run.max_length)
    predictor = onnx_predictor(path, run.tokenizer, run.max_length, run.labels, temperature=T)
    check_parity(run.model, predictor, texts[:64], atol=1e-3)
    predictor.predict_one("where is my order")  # (C,) probabilities
"""

from __future__ import annotations

import warnings
from collections.abc import Callable, Sequence
from pathlib import Path

import numpy as np
import torch

from mangaassist.data.normalize import normalize_text
from mangaassist.data.truncation import Truncation
from mangaassist.errors import UserError
from mangaassist.inference.policy import SECONDARY_OUTPUT, Calibration
from mangaassist.inference.predictor import INPUT_NAMES, OUTPUT_NAME, Predictor
from mangaassist.inference.tokenize import BatchTokenizer

OPSET = 17
# Messages of different lengths, so the traced graph sees real padding in the mask.
_TRACE_TEXTS = ("where is my order", "hi")


class ParityError(UserError):
    """ONNX Runtime logits differ from PyTorch's by more than the tolerance."""


def has_secondary(model: torch.nn.Module) -> bool:
    """Whether ``model`` has the secondary-intent head (trained with secondary.weight > 0)."""
    return getattr(model, "secondary_head", None) is not None


class _BothHeads(torch.nn.Module):
    """``(input_ids, attention_mask) -> (logits, secondary_logits)``: what the graph traces."""

    def __init__(self, model: torch.nn.Module) -> None:
        super().__init__()
        self.model = model

    def forward(self, input_ids: torch.Tensor, attention_mask: torch.Tensor) -> tuple:
        return self.model.forward_with_secondary(input_ids, attention_mask)


def _torch_heads(model: torch.nn.Module, enc: dict) -> dict[str, np.ndarray]:
    """PyTorch's outputs by graph output name, for padded (b, T) inputs: (b, C) each."""
    args = [torch.from_numpy(enc[n]) for n in INPUT_NAMES]
    if not has_secondary(model):
        return {OUTPUT_NAME: model(*args).float().numpy()}
    z, z2 = model.forward_with_secondary(*args)
    return {OUTPUT_NAME: z.float().numpy(), SECONDARY_OUTPUT: z2.float().numpy()}


def to_onnx(model: torch.nn.Module, tokenizer: Callable, path: str | Path, max_length: int) -> Path:
    """Export ``model.forward(input_ids, attention_mask) -> logits`` to an ONNX file.

    Batch and sequence axes are dynamic, so one file serves batch 1 and padded batches. The
    graph returns raw logits (B, C); the temperature is applied outside it, from calibration.
    A model with the secondary head (:func:`has_secondary`) exports
    ``forward_with_secondary``: outputs ``logits`` and ``secondary_logits``, (B, C) each.

    Args:
        model: an :class:`~mangaassist.model.module.IntentClassifier` (any module with that
            forward). It is traced in eval mode and left in the mode it was in.
        tokenizer: the run's Hugging Face tokenizer (builds the example inputs).
        path: the ``.onnx`` file to write; its folder is created.
        max_length: truncation length of the example inputs.

    Returns:
        ``path``.
    """
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    enc = tokenizer(
        list(_TRACE_TEXTS),
        truncation=True,
        max_length=max_length,
        padding=True,
        return_tensors="pt",
    )
    args = (enc["input_ids"], enc["attention_mask"])  # (2, T) each, row 1 padded
    was_training = model.training
    model.eval()
    axes = {"batch": 0, "sequence": 1}
    outputs = [OUTPUT_NAME, SECONDARY_OUTPUT] if has_secondary(model) else [OUTPUT_NAME]
    traced = _BothHeads(model) if has_secondary(model) else model
    try:
        with warnings.catch_warnings(), torch.no_grad():
            warnings.simplefilter("ignore")  # tracer warnings about Python control flow
            torch.onnx.export(
                traced,
                args,
                str(path),
                input_names=list(INPUT_NAMES),
                output_names=outputs,
                dynamic_axes={
                    "input_ids": {i: n for n, i in axes.items()},
                    "attention_mask": {i: n for n, i in axes.items()},
                    **{name: {0: "batch"} for name in outputs},
                },
                opset_version=OPSET,
                do_constant_folding=True,
                dynamo=False,  # the TorchScript exporter: no onnxscript needed
            )
    finally:
        model.train(was_training)
    return path


def onnx_predictor(
    path: str | Path,
    tokenizer,  # the run's Hugging Face fast tokenizer
    max_length: int,
    labels: Sequence[str],
    *,
    temperature: float = 1.0,
    num_threads: int = 1,
    preprocess: Callable[[str], str] | None = None,
    truncation: Truncation | None = None,
) -> Predictor:
    """The serving predictor over an ONNX file and a run's Hugging Face tokenizer.

    ``preprocess``: the run's text function (``LoadedRun.preprocess``); None: normalize_text.
    ``truncation``: the run's (``LoadedRun.truncation``); None: ``first``.
    """
    return Predictor(
        path,
        BatchTokenizer(
            tokenizer.backend_tokenizer,
            max_length,
            preprocess=preprocess or normalize_text,
            truncation=truncation,
        ),
        labels,
        Calibration(temperature=float(temperature), labels=list(labels)),
        num_threads=num_threads,
    )


@torch.inference_mode()
def parity_diffs(
    model: torch.nn.Module,
    predictor: Predictor,
    texts: Sequence[str],
    atol: float = 1e-4,
    batch_size: int = 16,
) -> dict[str, float]:
    """Max absolute difference between PyTorch and ONNX Runtime per output, same inputs.

    Both see identical token ids (the predictor's normalisation and tokenizer), padded per
    batch, so any difference is the runtime's. The outputs compared are ``logits`` and, when
    the predictor reads the secondary head (``predictor.secondary``), ``secondary_logits``.

    Args:
        model: the PyTorch classifier the ONNX file was exported from.
        predictor: the ONNX Runtime predictor to check.
        texts: messages (at least one).
        atol: the largest difference accepted (``inf``: only measure, e.g. an int8 graph).

    Returns:
        ``{output name: max absolute difference over all messages and classes}``.

    Raises:
        ParityError: a difference above ``atol`` (or not finite), naming the output.
    """
    if not texts:
        raise ValueError("no messages to check parity on")
    second = predictor.secondary is not None
    if second and not has_secondary(model):
        raise ValueError("the predictor reads secondary_logits but the model has no such head")
    was_training = model.training
    model.eval()
    worst = {OUTPUT_NAME: 0.0, **({SECONDARY_OUTPUT: 0.0} if second else {})}
    try:
        for start in range(0, len(texts), batch_size):
            enc = predictor.encode(texts[start : start + batch_size])  # (b, T) each
            ref = _torch_heads(model, enc)  # (b, C) per output
            z, z2 = predictor.run_heads(enc)  # (b, C) each; z2 None without the head
            for name, got in ((OUTPUT_NAME, z), (SECONDARY_OUTPUT, z2)):
                if name in worst:
                    diff = float(np.abs(ref[name] - got).max())
                    worst[name] = max(worst[name], diff if np.isfinite(diff) else float("inf"))
    finally:
        model.train(was_training)
    for name, diff in worst.items():
        if diff > atol:
            raise ParityError(
                f"ONNX Runtime {name} differ from PyTorch by {diff:.3g} (> {atol:g}) on "
                f"{len(texts)} messages ({predictor.path}). Re-export with this torch/onnxruntime "
                "pair, or time and serve with PyTorch meanwhile (evaluation latency.runtime: torch)"
            )
    return worst


def check_parity(
    model: torch.nn.Module,
    predictor: Predictor,
    texts: Sequence[str],
    atol: float = 1e-4,
    batch_size: int = 16,
) -> float:
    """The largest of :func:`parity_diffs` (every output the predictor reads).

    Returns:
        The max absolute difference over all messages, classes and outputs.

    Raises:
        ParityError: a difference is above ``atol`` (or not finite).
    """
    return max(parity_diffs(model, predictor, texts, atol, batch_size).values())
