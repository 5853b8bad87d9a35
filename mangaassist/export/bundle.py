"""The serving bundle: a trained run as ONNX Runtime serves it, self-contained and checked.

Layout of the bundle folder (``<run>/export`` by default)::

    model.onnx         forward(input_ids, attention_mask) -> raw logits (B, C), opset 17
    tokenizer/         the run's tokenizer files, as trained with
    labels.json        label names in logit order
    calibration.json   temperature T and fallback thresholds: probabilities = softmax(logits / T)
    manifest.json      sha256 of every file above, max_length, runtime versions, parity, source

The bundle is written into a temporary sibling folder and renamed into place only after the
ONNX logits matched PyTorch's on the run's validation messages, so a failure leaves no
half-written bundle (and an earlier bundle at the same place untouched).
"""

from __future__ import annotations

import json
import os
import platform
import shutil
import tempfile
from datetime import UTC, datetime
from pathlib import Path

from mangaassist.data.schema import read_examples
from mangaassist.errors import UserError
from mangaassist.evaluation.artifacts import check_run_dir, read_calibration, read_labels
from mangaassist.evaluation.registry import file_sha256

MANIFEST = "manifest.json"
FORMAT_VERSION = 1
PARITY_MESSAGES = 64  # first messages of data/val.jsonl checked for logit parity
DEFAULT_ATOL = 1e-3  # max |ONNX - PyTorch| logit difference accepted


def _parity_texts(run_dir: Path, n: int) -> tuple[list[str], str]:
    """The first ``n`` messages of the run's validation split (test split if none)."""
    for name in ("data/val.jsonl", "data/test.jsonl"):
        if (run_dir / name).is_file():
            return [ex.text for ex in read_examples(run_dir / name)[:n]], name
    raise UserError(
        f"{run_dir}: no data/val.jsonl or data/test.jsonl to check ONNX parity on; "
        "export a run directory written by train.py (it saves its splits under data/)"
    )


def _versions() -> dict[str, str]:
    import onnx
    import onnxruntime
    import tokenizers
    import torch
    import transformers

    return {
        "python": platform.python_version(),
        "torch": torch.__version__,
        "transformers": transformers.__version__,
        "tokenizers": tokenizers.__version__,
        "onnx": onnx.__version__,
        "onnxruntime": onnxruntime.__version__,
    }


def _write_bundle(run_dir: Path, folder: Path, atol: float, n_parity: int) -> dict:
    """Export, copy and check everything into ``folder``; returns the manifest."""
    from mangaassist.evaluation.calibration import Calibration
    from mangaassist.model.onnx_runtime import OPSET, OnnxPredictor, check_parity, to_onnx
    from mangaassist.training.run_dir import load_run

    labels = read_labels(run_dir)
    texts, parity_source = _parity_texts(run_dir, n_parity)
    run = load_run(run_dir)
    calib = read_calibration(run_dir)
    calibrated = calib is not None
    if calib is None:  # not calibrated yet: the checkpoint's T and the default thresholds
        calib = Calibration(temperature=float(run.model.temperature), labels=labels)
    to_onnx(run.model, run.tokenizer, folder / "model.onnx", run.max_length)
    shutil.copytree(run_dir / "tokenizer", folder / "tokenizer")
    shutil.copy2(run_dir / "labels.json", folder / "labels.json")
    calib.save(folder / "calibration.json")
    predictor = OnnxPredictor(
        folder / "model.onnx", run.tokenizer, run.max_length, temperature=calib.temperature
    )
    diff = check_parity(run.model, predictor, texts, atol=atol)
    files = sorted(p for p in folder.rglob("*") if p.is_file())
    model_cfg = run.config.model
    return {
        "format": FORMAT_VERSION,
        "created_at": datetime.now(UTC).isoformat(timespec="seconds"),
        "source_run": str(run_dir.resolve()),
        "checkpoint_sha256": file_sha256(run_dir / "checkpoints" / "best.ckpt"),
        "model": {
            "name": str(model_cfg.get("name", "")),
            "family": str(model_cfg.get("family", "")),
            "pooling": str(model_cfg.get("pooling", "")),
            "num_labels": len(labels),
        },
        "max_length": run.max_length,
        "opset": OPSET,
        "inputs": ["input_ids", "attention_mask"],
        "output": "logits",
        "probabilities": "softmax(logits / calibration.temperature)",
        "temperature": calib.temperature,
        "calibrated": calibrated,
        "parity": {
            "max_abs_logit_diff": diff,
            "atol": atol,
            "messages": len(texts),
            "source": parity_source,
        },
        "runtime_versions": _versions(),
        "files": {
            p.relative_to(folder).as_posix(): {"sha256": file_sha256(p), "bytes": p.stat().st_size}
            for p in files
        },
    }


def export_run(
    run_dir: str | Path,
    out_dir: str | Path | None = None,
    *,
    atol: float = DEFAULT_ATOL,
    parity_messages: int = PARITY_MESSAGES,
) -> Path:
    """Write the serving bundle of a training run (or registry version), atomically.

    Args:
        run_dir: a run directory (config.yaml, labels.json, tokenizer/, checkpoints/best.ckpt,
            data/val.jsonl).
        out_dir: the bundle folder; default ``<run_dir>/export``. An earlier bundle there is
            replaced only once the new one is complete and checked.
        atol: the largest ONNX/PyTorch logit difference accepted.
        parity_messages: how many validation messages the parity check runs on.

    Returns:
        The bundle folder.

    Raises:
        UserError: an incomplete run directory (naming the missing files), an ``out_dir``
            that holds something other than a bundle, or a parity failure (``ParityError``).
    """
    run_dir = check_run_dir(run_dir)
    out = Path(out_dir) if out_dir is not None else run_dir / "export"
    if out.exists() and (
        not out.is_dir() or (any(out.iterdir()) and not (out / MANIFEST).is_file())
    ):
        raise UserError(
            f"{out} exists and is not an export bundle (no {MANIFEST}); "
            "pass an empty or new folder with --out"
        )
    out.parent.mkdir(parents=True, exist_ok=True)
    tmp = Path(tempfile.mkdtemp(prefix=f".{out.name}.tmp-", dir=out.parent))
    tmp.chmod(0o755)  # mkdtemp makes it private; a bundle is read by serving workers
    try:
        manifest = _write_bundle(run_dir, tmp, atol, parity_messages)
        (tmp / MANIFEST).write_text(json.dumps(manifest, indent=1))
        old = None
        if out.exists():  # swap: the earlier bundle moves aside, the new one in
            old = out.with_name(f".{out.name}.old-{os.getpid()}")
            os.replace(out, old)
        os.replace(tmp, out)
        if old is not None:
            shutil.rmtree(old, ignore_errors=True)
    except BaseException:
        shutil.rmtree(tmp, ignore_errors=True)
        raise
    return out


def verify_bundle(folder: str | Path) -> dict:
    """The bundle's manifest after checking every listed file's sha256.

    Raises:
        UserError: no manifest, or a file missing or changed since export (all named).
    """
    folder = Path(folder)
    path = folder / MANIFEST
    if not path.is_file():
        raise UserError(f"{folder}: no {MANIFEST}; export the run with `mangaassist export RUN`")
    manifest = json.loads(path.read_text())
    bad = [
        name
        for name, entry in manifest["files"].items()
        if not (folder / name).is_file() or file_sha256(folder / name) != entry["sha256"]
    ]
    if bad:
        raise UserError(
            f"{folder}: files missing or changed since export: {bad}; "
            f"re-export with `mangaassist export {manifest.get('source_run', 'RUN_DIR')}`"
        )
    return manifest


def load_bundle(folder: str | Path, num_threads: int = 1):  # -> OnnxPredictor
    """An :class:`~mangaassist.model.onnx_runtime.OnnxPredictor` over a verified bundle."""
    from transformers import AutoTokenizer

    from mangaassist.model.onnx_runtime import OnnxPredictor

    folder = Path(folder)
    manifest = verify_bundle(folder)
    tokenizer = AutoTokenizer.from_pretrained(folder / "tokenizer")
    return OnnxPredictor(
        folder / "model.onnx",
        tokenizer,
        manifest["max_length"],
        num_threads=num_threads,
        temperature=manifest["temperature"],
    )
