"""The torch-free runtime: bundle checks, normalisation, tokenizer, ONNX predictor, routing.

Used by evaluation (scoring a bundle), export (the parity check), ``mangaassist predict`` and
the server alike, so offline and online answers come from one code path. Importing this
package imports neither torch nor onnxruntime (the session is built on first use).
"""

from mangaassist.inference.bundle import Bundle, open_bundle, verify_bundle
from mangaassist.inference.policy import (
    CALIBRATION_FILE,
    Calibration,
    FallbackPolicy,
    SecondaryRule,
    decide,
    softmax,
)
from mangaassist.inference.predictor import Predictor
from mangaassist.inference.tokenize import BatchTokenizer

__all__ = [
    "CALIBRATION_FILE",
    "BatchTokenizer",
    "Bundle",
    "Calibration",
    "FallbackPolicy",
    "Predictor",
    "SecondaryRule",
    "decide",
    "open_bundle",
    "softmax",
    "verify_bundle",
]
