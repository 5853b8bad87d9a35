"""The intent classifier on ONNX Runtime: export, a CPU predictor, and a parity check.

ONNX Runtime is the CPU serving runtime: on the default encoder it answers one message about
2.5x faster than PyTorch eager. The exported graph is the classifier's
``forward(input_ids, attention_mask) -> logits`` (raw logits, before temperature, exactly what
``IntentClassifier.forward`` returns); served probabilities are ``softmax(logits / T)`` with
``T`` from calibration, as :meth:`IntentClassifier.predict_proba` computes them in torch.

Example (export and check; see ``tests/model/test_onnx_runtime.py`` for a full run)::

    path = to_onnx(run.model, run.tokenizer, "model.onnx", run.max_length)
    predictor = OnnxPredictor(path, run.tokenizer, run.max_length, temperature=T)
    check_parity(run.model, predictor, texts[:64], atol=1e-3)
    predictor.predict_one("where is my order")  # (C,) probabilities

    >>> softmax(np.array([[0.0, 0.0], [0.0, np.log(3.0)]])).round(2).tolist()
    [[0.5, 0.5], [0.25, 0.75]]
"""

from __future__ import annotations

import warnings
from collections.abc import Callable, Sequence
from pathlib import Path

import numpy as np
import torch

from mangaassist.data.normalize import normalize_text
from mangaassist.errors import UserError

OPSET = 17
INPUT_NAMES = ("input_ids", "attention_mask")
OUTPUT_NAME = "logits"
# Messages of different lengths, so the traced graph sees real padding in the mask.
_TRACE_TEXTS = ("where is my order", "hi")


class ParityError(UserError):
    """ONNX Runtime logits differ from PyTorch's by more than the tolerance."""


def to_onnx(model: torch.nn.Module, tokenizer: Callable, path: str | Path, max_length: int) -> Path:
    """Export ``model.forward(input_ids, attention_mask) -> logits`` to an ONNX file.

    Batch and sequence axes are dynamic, so one file serves batch 1 and padded batches. The
    graph returns raw logits (B, C); the temperature is applied outside it, from calibration.

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
    try:
        with warnings.catch_warnings(), torch.no_grad():
            warnings.simplefilter("ignore")  # tracer warnings about Python control flow
            torch.onnx.export(
                model,
                args,
                str(path),
                input_names=list(INPUT_NAMES),
                output_names=[OUTPUT_NAME],
                dynamic_axes={
                    "input_ids": {i: n for n, i in axes.items()},
                    "attention_mask": {i: n for n, i in axes.items()},
                    OUTPUT_NAME: {0: "batch"},
                },
                opset_version=OPSET,
                do_constant_folding=True,
                dynamo=False,  # the TorchScript exporter: no onnxscript needed
            )
    finally:
        model.train(was_training)
    return path


class OnnxPredictor:
    """An ONNX Runtime session over an exported classifier, with the run's tokenizer.

    Args:
        path: the ``.onnx`` file from :func:`to_onnx`.
        tokenizer: the tokenizer the model was trained with.
        max_length: truncation in tokens (the run's ``model.max_length``).
        num_threads: intra-op threads of the session (serving: 1 per worker).
        temperature: ``T`` of :meth:`proba` and :meth:`predict_one`.
        preprocess: text normalisation applied first (default: the training normalisation).
    """

    def __init__(
        self,
        path: str | Path,
        tokenizer: Callable,
        max_length: int,
        *,
        num_threads: int = 1,
        temperature: float = 1.0,
        preprocess: Callable[[str], str] | None = normalize_text,
    ) -> None:
        import onnxruntime as ort

        self.path = Path(path)
        if not self.path.is_file():
            raise UserError(f"{self.path}: no ONNX model; export one with `mangaassist export`")
        opts = ort.SessionOptions()
        opts.intra_op_num_threads = num_threads
        opts.inter_op_num_threads = 1
        opts.execution_mode = ort.ExecutionMode.ORT_SEQUENTIAL
        opts.graph_optimization_level = ort.GraphOptimizationLevel.ORT_ENABLE_ALL
        opts.log_severity_level = 3  # errors only
        self.session = ort.InferenceSession(
            str(self.path), opts, providers=["CPUExecutionProvider"]
        )
        self.tokenizer = tokenizer
        self.max_length = int(max_length)
        self.num_threads = num_threads
        self.temperature = float(temperature)
        self.preprocess = preprocess or (lambda s: s)

    def encode(self, texts: Sequence[str]) -> dict[str, np.ndarray]:
        """Normalise and tokenize, padding to the longest message: int64 (B, T) arrays."""
        enc = self.tokenizer(
            [self.preprocess(t) for t in texts],
            truncation=True,
            max_length=self.max_length,
            padding=True,
            return_tensors="np",
        )
        return {name: np.asarray(enc[name], dtype=np.int64) for name in INPUT_NAMES}

    def run(self, inputs: dict[str, np.ndarray]) -> np.ndarray:
        """Raw logits (B, C) float32 for encoded inputs (B, T)."""
        return self.session.run([OUTPUT_NAME], inputs)[0]

    def logits(self, texts: Sequence[str], batch_size: int = 64) -> np.ndarray:
        """Raw logits (N, C) before temperature, batched with per-batch padding."""
        out = [
            self.run(self.encode(texts[i : i + batch_size]))  # (b, C)
            for i in range(0, len(texts), batch_size)
        ]
        if not out:
            return np.zeros((0, self.session.get_outputs()[0].shape[1]), dtype=np.float32)
        return np.concatenate(out)

    def proba(self, texts: Sequence[str], batch_size: int = 64) -> np.ndarray:
        """Calibrated probabilities ``softmax(logits / T)``, (N, C) float64."""
        return softmax(self.logits(texts, batch_size) / self.temperature)

    def predict_one(self, text: str) -> np.ndarray:
        """The serving path for one message: normalise, tokenize, run, softmax -> (C,)."""
        return softmax(self.run(self.encode([text])) / self.temperature)[0]


def softmax(z: np.ndarray) -> np.ndarray:
    """Row-wise softmax in float64; (N, C) -> (N, C)."""
    z = np.asarray(z, dtype=np.float64)
    e = np.exp(z - z.max(axis=-1, keepdims=True))
    return e / e.sum(axis=-1, keepdims=True)


@torch.inference_mode()
def check_parity(
    model: torch.nn.Module,
    predictor: OnnxPredictor,
    texts: Sequence[str],
    atol: float = 1e-4,
    batch_size: int = 16,
) -> float:
    """Max absolute logit difference between PyTorch and ONNX Runtime on the same inputs.

    Both see identical token ids (the predictor's normalisation and tokenizer), padded per
    batch, so any difference is the runtime's.

    Args:
        model: the PyTorch classifier the ONNX file was exported from.
        predictor: the ONNX Runtime predictor to check.
        texts: messages (at least one).
        atol: the largest difference accepted.

    Returns:
        The max absolute difference over all messages and classes.

    Raises:
        ParityError: the difference is above ``atol`` (or not finite).
    """
    if not texts:
        raise ValueError("no messages to check parity on")
    was_training = model.training
    model.eval()
    worst = 0.0
    try:
        for start in range(0, len(texts), batch_size):
            enc = predictor.encode(texts[start : start + batch_size])  # (b, T) each
            ref = model(*(torch.from_numpy(enc[n]) for n in INPUT_NAMES)).float().numpy()
            got = predictor.run(enc)  # (b, C)
            diff = float(np.abs(ref - got).max())
            worst = max(worst, diff if np.isfinite(diff) else float("inf"))
    finally:
        model.train(was_training)
    if worst > atol:
        raise ParityError(
            f"ONNX Runtime logits differ from PyTorch by {worst:.3g} (> {atol:g}) on "
            f"{len(texts)} messages ({predictor.path}). Re-export with this torch/onnxruntime "
            "pair, or time and serve with PyTorch meanwhile (evaluation latency.runtime: torch)"
        )
    return worst
