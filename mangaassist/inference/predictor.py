"""The ONNX Runtime predictor: normalise -> tokenize -> ONNX -> softmax(z / T) -> route.

A bundle whose model has the secondary head (``secondary`` in its manifest) also answers each
message's ``secondary_intents``: ``sigmoid(secondary_logits)`` at or above the bundle's
threshold, the predicted intent left out (``mask_primary``), ranked by probability
(:class:`~mangaassist.inference.policy.SecondaryRule`). Without the head an answer has no
``secondary_intents`` key, exactly as before the head existed.

One class answers for offline evaluation of a bundle, ``mangaassist predict``, the export's
parity check and the server's micro-batcher, so they cannot drift apart.

Example (a bundle from ``mangaassist export RUN``)::

    predictor = Predictor.from_bundle(open_bundle("outputs/run/export"), num_threads=2)
    predictor.classify(["where is my order"])[0]["intent"]   # 'order_tracking'
    predictor.logits(texts)                                  # (N, C) raw logits
"""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path

import numpy as np

from mangaassist.data.transliterate import preprocessor
from mangaassist.errors import UserError
from mangaassist.inference.bundle import Bundle, BundleError
from mangaassist.inference.policy import Calibration, SecondaryRule, decide, softmax
from mangaassist.inference.tokenize import TOKENIZER_FILE, BatchTokenizer

INPUT_NAMES = ("input_ids", "attention_mask")
OUTPUT_NAME = "logits"


def ort_session(path: str | Path, num_threads: int = 1):  # -> onnxruntime.InferenceSession
    """A CPU session with ``num_threads`` intra-op threads; a corrupt file is a UserError."""
    import onnxruntime as ort

    path = Path(path)
    if not path.is_file():
        raise UserError(f"{path}: no ONNX model; export one with `mangaassist export`")
    opts = ort.SessionOptions()
    opts.intra_op_num_threads = int(num_threads)
    opts.inter_op_num_threads = 1
    opts.execution_mode = ort.ExecutionMode.ORT_SEQUENTIAL
    opts.graph_optimization_level = ort.GraphOptimizationLevel.ORT_ENABLE_ALL
    opts.log_severity_level = 3  # errors only
    # Idle intra-op threads spin-wait for the next run by default: on a 2-core machine that
    # burns the cores the HTTP event loop and the tokenizer need between batches.
    opts.add_session_config_entry("session.intra_op.allow_spinning", "0")
    try:
        return ort.InferenceSession(str(path), opts, providers=["CPUExecutionProvider"])
    except Exception as err:  # onnxruntime raises its own Fail/InvalidProtobuf types
        msg = f"{path}: not a loadable ONNX model ({err}); re-export the run"
        raise BundleError(msg, "onnx") from err


class Predictor:
    """An ONNX Runtime session with the tokenizer, labels and calibration it was trained with.

    Args:
        model_path: the ``.onnx`` file.
        tokenizer: a :class:`BatchTokenizer` (normalisation + truncation + per-batch padding).
        labels: C names in logit order.
        calibration: temperature and fallback policy (default: T = 1, default thresholds).
        num_threads: ONNX Runtime intra-op threads.
        precision: a name for what the file holds (``fp32`` / ``int8``), for logs and metrics.
        secondary: the secondary-intent rule of a graph with the second output; None: the
            primary head only (the graph's other outputs, if any, are not read).
    """

    def __init__(
        self,
        model_path: str | Path,
        tokenizer: BatchTokenizer,
        labels: Sequence[str],
        calibration: Calibration | None = None,
        *,
        num_threads: int = 1,
        precision: str = "fp32",
        secondary: SecondaryRule | None = None,
    ) -> None:
        self.path = Path(model_path)
        self.session = ort_session(self.path, num_threads)
        self.tokenizer = tokenizer
        self.labels = list(labels)
        self.calibration = calibration or Calibration(labels=self.labels)
        self.policy = self.calibration.policy
        self.num_threads = int(num_threads)
        self.precision = precision
        self.secondary = secondary
        outputs = [o.name for o in self.session.get_outputs()]
        if secondary is not None and secondary.output not in outputs:
            raise BundleError(
                f"{self.path}: the manifest names a secondary output {secondary.output!r} but "
                f"the graph's outputs are {outputs}; re-export the run",
                "onnx",
            )
        n_out = self.session.get_outputs()[0].shape[1]
        if isinstance(n_out, int) and n_out != len(self.labels):
            raise UserError(
                f"{self.path}: the graph has {n_out} outputs but labels.json lists "
                f"{len(self.labels)} labels; re-export the run"
            )

    @classmethod
    def from_bundle(
        cls, bundle: Bundle, precision: str = "auto", num_threads: int = 1
    ) -> Predictor:
        """The predictor of a verified bundle (``auto``: int8 when the bundle has it)."""
        path, precision = bundle.model_file(precision)
        tokenizer = BatchTokenizer.from_file(
            bundle.folder / "tokenizer" / TOKENIZER_FILE,
            bundle.max_length,
            preprocess=preprocessor(bundle.text_preprocess),  # normalise (+ romaji), as trained
            truncation=bundle.truncation,  # first | head_tail, as trained
        )
        return cls(
            path,
            tokenizer,
            bundle.labels,
            bundle.calibration,
            num_threads=num_threads,
            precision=precision,
            secondary=bundle.secondary,
        )

    @property
    def temperature(self) -> float:
        """T of ``softmax(logits / T)``."""
        return float(self.calibration.temperature)

    def encode(self, texts: Sequence[str]) -> dict[str, np.ndarray]:
        """Normalise, tokenize and pad to the longest message: int64 (B, T) arrays."""
        return self.tokenizer(texts)

    def run(self, inputs: dict[str, np.ndarray]) -> np.ndarray:
        """Raw logits (B, C) float32 for padded inputs (B, T)."""
        return self.session.run([OUTPUT_NAME], {n: inputs[n] for n in INPUT_NAMES})[0]

    def run_heads(self, inputs: dict[str, np.ndarray]) -> tuple[np.ndarray, np.ndarray | None]:
        """(raw logits (B, C), secondary logits (B, C) or None without the head), one run."""
        if self.secondary is None:
            return self.run(inputs), None
        feeds = {n: inputs[n] for n in INPUT_NAMES}
        z, z2 = self.session.run([OUTPUT_NAME, self.secondary.output], feeds)
        return z, z2

    def run_ids(self, ids: Sequence[Sequence[int]]) -> np.ndarray:
        """Raw logits (B, C) for token id lists, padded to this batch's longest."""
        return self.run(self.tokenizer.pad(ids))

    def run_ids_heads(self, ids: Sequence[Sequence[int]]) -> tuple[np.ndarray, np.ndarray | None]:
        """:meth:`run_heads` for token id lists (:meth:`run_ids` alone without the head)."""
        if self.secondary is None:
            return self.run_ids(ids), None
        return self.run_heads(self.tokenizer.pad(ids))

    def logits(self, texts: Sequence[str], batch_size: int = 64) -> np.ndarray:
        """Raw logits (N, C) in input order; batches of similar length (least padding)."""
        return self.logits_of_ids(self.tokenizer.encode(texts), batch_size)

    def logits_of_ids(self, ids: Sequence[Sequence[int]], batch_size: int = 64) -> np.ndarray:
        """:meth:`logits` for messages already tokenized."""
        return self.heads_of_ids(ids, batch_size)[0]

    def heads(
        self, texts: Sequence[str], batch_size: int = 64
    ) -> tuple[np.ndarray, np.ndarray | None]:
        """(raw logits (N, C), secondary logits (N, C) or None without the head), input order."""
        return self.heads_of_ids(self.tokenizer.encode(texts), batch_size)

    def heads_of_ids(
        self, ids: Sequence[Sequence[int]], batch_size: int = 64
    ) -> tuple[np.ndarray, np.ndarray | None]:
        """:meth:`heads` for messages already tokenized; batches of similar length."""
        order = sorted(range(len(ids)), key=lambda i: len(ids[i]))
        out = np.zeros((len(ids), len(self.labels)), dtype=np.float32)
        out2 = None if self.secondary is None else np.zeros_like(out)
        for start in range(0, len(order), batch_size):
            part = order[start : start + batch_size]
            z, z2 = self.run_ids_heads([ids[i] for i in part])  # (b, C) each
            out[part] = z
            if out2 is not None:
                out2[part] = z2
        return out, out2

    def proba(self, texts: Sequence[str], batch_size: int = 64) -> np.ndarray:
        """Calibrated probabilities ``softmax(logits / T)``, (N, C) float64."""
        return softmax(self.logits(texts, batch_size), self.temperature)

    def predict_one(self, text: str) -> np.ndarray:
        """The serving path for one message: normalise, tokenize, run, softmax -> (C,)."""
        return softmax(self.run(self.encode([text])), self.temperature)[0]

    def answers(
        self, logits: np.ndarray, top_k: int = 3, secondary_logits: np.ndarray | None = None
    ) -> list[dict]:
        """Per message, :func:`~mangaassist.inference.policy.decide` on ``softmax(z / T)``.

        With ``secondary_logits`` (B, C) and the head's rule, each answer also holds
        ``secondary_intents``: ``[{"intent", "probability"}, ...]``, ranked, maybe empty.
        """
        out = decide(softmax(logits, self.temperature), self.labels, self.policy, top_k)
        if secondary_logits is not None and self.secondary is not None:
            primary = np.asarray(logits).argmax(axis=1)  # T never moves the argmax
            rows = self.secondary.intents(secondary_logits, primary, self.labels)
            for answer, row in zip(out, rows, strict=True):
                answer["secondary_intents"] = row
        return out

    def classify(self, texts: Sequence[str], top_k: int = 3) -> list[dict]:
        """Answers for messages (input order), each with its token count ``tokens``."""
        ids = self.tokenizer.encode(texts)
        z, z2 = self.heads_of_ids(ids)  # (N, C) each; z2 None without the head
        out = self.answers(z, top_k, z2)
        for answer, row in zip(out, ids, strict=True):
            answer["tokens"] = len(row)
        return out
