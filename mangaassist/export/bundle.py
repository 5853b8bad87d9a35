"""The serving bundle: a trained run as ONNX Runtime serves it, self-contained and checked.

Layout of the bundle folder (``<run>/export`` by default)::

    model.onnx         forward(input_ids, attention_mask) -> raw logits (B, C), opset 17;
                       also secondary_logits (B, C) when the run has the secondary head
    model.int8.onnx    with --quantize int8, only if it agrees with fp32 on validation
    canary.jsonl       32 fixed messages and their answers per precision (checked at load)
    tokenizer/         the run's tokenizer files, as trained with
    labels.json        label names in logit order
    calibration.json   temperature T and fallback thresholds: probabilities = softmax(logits / T)
    README.md          how to call the bundle without this package
    manifest.json      sha256 of every file above, tokenizer hash, normalisation and routing
                       rule, text_preprocess (none | romaji), max_length, truncation
                       (first | head_tail, with its head size and in words), runtime
                       versions, parity, int8 check, source; with the secondary head its
                       policy (threshold, mask_primary, the output's name)

The bundle is written into a temporary sibling folder and renamed into place only after the
ONNX logits matched PyTorch's on the run's validation messages, so a failure leaves no
half-written bundle (and an earlier bundle at the same place untouched). Reading and checking
a bundle is the torch-free runtime's job: :mod:`mangaassist.inference.bundle`.
"""

from __future__ import annotations

import json
import os
import platform
import re
import shutil
import tempfile
from datetime import UTC, datetime
from pathlib import Path

import mangaassist.data
from mangaassist.data.schema import read_examples
from mangaassist.data.transliterate import preprocessor
from mangaassist.errors import UserError
from mangaassist.evaluation.artifacts import (
    check_run_dir,
    read_calibration,
    read_labels,
    run_rare_classes,
)
from mangaassist.export.int8 import quantize_checked
from mangaassist.export.readme import NORMALIZATION, bundle_readme, routing_rule
from mangaassist.inference.bundle import (
    MANIFEST,
    PRECISIONS,
    file_sha256,
    tokenizer_sha256,
    verify_bundle,
)
from mangaassist.inference.canary import record_canary
from mangaassist.inference.policy import SECONDARY_OUTPUT, SecondaryRule
from mangaassist.inference.predictor import Predictor
from mangaassist.inference.tokenize import TOKENIZER_FILE, BatchTokenizer

__all__ = ["MANIFEST", "export_run", "verify_bundle"]
FORMAT_VERSION = 2
PARITY_MESSAGES = 64  # first messages of data/val.jsonl checked for logit parity
DEFAULT_ATOL = 1e-3  # max |ONNX - PyTorch| logit difference accepted
CANARY_MESSAGES = 32  # fixed messages whose answers the bundle records (blue/green's canary)


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


def _canary_texts(fallback: list[str]) -> list[str]:
    """The canary's fixed messages: the first of the packaged golden set (else validation)."""
    golden = Path(mangaassist.data.__file__).parent / "golden" / "golden.jsonl"
    if golden.is_file():
        return [ex.text for ex in read_examples(golden)[:CANARY_MESSAGES]]
    return fallback[:CANARY_MESSAGES]


def _check_tokenizer(run, served: BatchTokenizer, texts: list[str], folder: Path) -> None:
    """The bundle's tokenizer gives the ids the training tokenizer gave, or a UserError.

    The reference is the run's own preprocessing (normalise, + romaji when the run had it),
    Hugging Face tokenizer and truncation (first | head_tail), as its DataModule encoded;
    served is the bundle's whole path.
    """
    ref = run.token_ids(texts)
    bad = sum(list(a) != list(b) for a, b in zip(ref, served.encode(texts), strict=True))
    if bad:
        raise UserError(
            f"{folder / 'tokenizer' / TOKENIZER_FILE} tokenizes {bad} of {len(texts)} "
            "validation messages differently from the tokenizer the model was trained with; "
            "check the run's tokenizer/ folder"
        )


def _secondary_entry(run, run_dir: Path) -> dict:
    """The manifest's ``secondary`` entry: the run's ``secondary.json`` (the threshold
    post-train chose on validation), else chosen on ``data/val.jsonl`` now, as ``evaluate``
    does for a run that has not been post-trained (the run directory is left unchanged)."""
    from mangaassist.evaluation.secondary import SECONDARY_FILE, SecondaryPolicy, fit_policy

    stored = run_dir / SECONDARY_FILE
    if stored.is_file():
        policy, source = SecondaryPolicy.load(stored), SECONDARY_FILE
    else:
        val = run_dir / "data" / "val.jsonl"
        policy = fit_policy(run, val, run.config.get("secondary"))
        source = f"chosen at export (no {SECONDARY_FILE}: post-train the run to keep one)"
    return {
        "output": SECONDARY_OUTPUT,
        "probabilities": f"sigmoid({SECONDARY_OUTPUT}), no temperature",
        "rule": (
            "secondary intents = every c with sigmoid(secondary_logits)[c] >= threshold, "
            "except argmax(logits) when mask_primary, ranked by probability"
        ),
        "threshold": policy.threshold,
        "mask_primary": policy.mask_primary,
        "chosen_on": policy.chosen_on,
        "criterion": policy.criterion,
        "source": source,
        "val": policy.val,
    }


def model_name(model_cfg) -> str:
    """The model's config name; a tiny random model (``init: tiny``: smoke runs, tests) is
    never named after the pre-trained encoder whose tokenizer it borrows."""
    if str(model_cfg.get("init", "")) == "tiny":
        return f"tiny-random-{model_cfg.get('family', 'model')}"
    return str(model_cfg.get("name", "model"))


def model_version(run_dir: Path, checkpoint_sha: str, model_cfg) -> str:
    """A registry version's name (``v3``), else the model's name and checkpoint sha."""
    run_dir = run_dir.resolve()
    if run_dir.parent.name == "versions" and re.fullmatch(r"v\d+", run_dir.name):
        return run_dir.name
    return f"{model_name(model_cfg)}-{checkpoint_sha[:8]}"


def _write_bundle(
    run_dir: Path, folder: Path, atol: float, n_parity: int, quantize: str | None
) -> dict:
    """Export, copy and check everything into ``folder``; returns the manifest."""
    from mangaassist.evaluation.calibration import Calibration
    from mangaassist.model.onnx_runtime import OPSET, parity_diffs, to_onnx
    from mangaassist.training.run_dir import load_run

    labels = read_labels(run_dir)
    texts, parity_source = _parity_texts(run_dir, n_parity)
    run = load_run(run_dir)
    calib = read_calibration(run_dir)
    calibrated = calib is not None
    if calib is None:  # not calibrated yet: the checkpoint's T and the default thresholds
        calib = Calibration(temperature=float(run.model.temperature), labels=labels)
    # With the secondary head the graph has a second output, read by the rule in the manifest.
    secondary = _secondary_entry(run, run_dir) if run.has_secondary else None
    rule = None if secondary is None else SecondaryRule.from_manifest(secondary, str(run_dir))
    to_onnx(run.model, run.tokenizer, folder / "model.onnx", run.max_length)
    shutil.copytree(run_dir / "tokenizer", folder / "tokenizer")
    shutil.copy2(run_dir / "labels.json", folder / "labels.json")
    calib.save(folder / "calibration.json")
    # The predictor reads the bundle's own tokenizer.json, as serving will; its ids must be
    # the ones the model was trained on (the Hugging Face tokenizer) before parity means much.
    predictor = Predictor(
        folder / "model.onnx",
        BatchTokenizer.from_file(
            folder / "tokenizer" / TOKENIZER_FILE,
            run.max_length,
            preprocess=preprocessor(run.text_preprocess),  # as Predictor.from_bundle builds it
            truncation=run.truncation,
        ),
        labels,
        calib,
        secondary=rule,
    )
    _check_tokenizer(run, predictor.tokenizer, texts, folder)
    diffs = parity_diffs(run.model, predictor, texts, atol=atol)  # every output, fp32
    int8 = quantize_checked(folder, predictor, run_dir) if quantize == "int8" else None
    served = {"fp32": predictor}
    if int8 is not None and int8["accepted"]:
        int8_file = folder / PRECISIONS["int8"]
        served["int8"] = Predictor(
            int8_file, predictor.tokenizer, labels, calib, precision="int8", secondary=rule
        )
        if rule is not None:  # int8 vs PyTorch, both outputs: measured, not held to atol
            vs_torch = parity_diffs(run.model, served["int8"], texts, atol=float("inf"))
            int8["vs_torch"] = {
                "max_abs_logit_diff": vs_torch["logits"],
                "max_abs_secondary_logit_diff": vs_torch[SECONDARY_OUTPUT],
                "messages": len(texts),
            }
    record_canary(folder, served, _canary_texts(texts))
    model_cfg = run.config.model
    ckpt_sha = file_sha256(run_dir / "checkpoints" / "best.ckpt")
    version = model_version(run_dir, ckpt_sha, model_cfg)
    routing = routing_rule(calib)
    (folder / "README.md").write_text(
        bundle_readme(
            version,
            labels,
            calib,
            run.max_length,
            int8,
            run.text_preprocess,
            secondary=secondary,
            truncation=run.truncation,
        )
    )
    files = sorted(p for p in folder.rglob("*") if p.is_file())
    return {
        "format": FORMAT_VERSION,
        "model_version": version,
        "created_at": datetime.now(UTC).isoformat(timespec="seconds"),
        "source_run": str(run_dir.resolve()),
        "checkpoint_sha256": ckpt_sha,
        "tokenizer_sha256": tokenizer_sha256(run_dir / "tokenizer"),
        "model": {
            "name": model_name(model_cfg),
            "family": str(model_cfg.get("family", "")),
            "pooling": str(model_cfg.get("pooling", "")),
            "num_labels": len(labels),
        },
        # The run's rare classes (class_counts.json + data.module.rare_below), so that
        # `mangaassist evaluate --model BUNDLE` reports rare-class recall as the run would.
        "rare_classes": run_rare_classes(run_dir, run.config),
        "max_length": run.max_length,
        "opset": OPSET,
        "inputs": ["input_ids", "attention_mask"],
        "output": "logits",
        "normalization": NORMALIZATION,
        # After normalisation, before tokenizing: none | romaji (mangaassist.data.transliterate).
        "text_preprocess": run.text_preprocess,
        # What a message over max_length keeps (mangaassist.data.truncation): in words, and
        # as data for serving (absent in bundles from before the option: first).
        "truncation": run.truncation.describe(run.max_length),
        "truncation_strategy": run.truncation.strategy,
        "truncation_head_tokens": run.truncation.head_tokens,
        "padding": "per batch, to the batch's longest message (attention_mask 0 on padding)",
        "probabilities": "softmax(logits / calibration.temperature)",
        "temperature": calib.temperature,
        "calibrated": calibrated,
        "routing": routing,
        "int8": int8,
        "parity": {
            "max_abs_logit_diff": diffs["logits"],
            **(
                {"max_abs_secondary_logit_diff": diffs[SECONDARY_OUTPUT]}
                if secondary is not None
                else {}
            ),
            "atol": atol,
            "messages": len(texts),
            "source": parity_source,
        },
        # Only with the secondary head (older bundles and runs without it have no key).
        **({"secondary": secondary} if secondary is not None else {}),
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
    quantize: str | None = None,
) -> Path:
    """Write the serving bundle of a training run (or registry version), atomically.

    Args:
        run_dir: a run directory (config.yaml, labels.json, tokenizer/, checkpoints/best.ckpt,
            data/val.jsonl).
        out_dir: the bundle folder; default ``<run_dir>/export``. An earlier bundle there is
            replaced only once the new one is complete and checked.
        atol: the largest ONNX/PyTorch logit difference accepted.
        parity_messages: how many validation messages the parity check runs on.
        quantize: ``int8`` adds ``model.int8.onnx`` if it passes its validation check
            (:func:`~mangaassist.export.int8.quantize_checked`); None: fp32 only.

    Returns:
        The bundle folder.

    Raises:
        UserError: an incomplete run directory (naming the missing files), an ``out_dir``
            that holds something other than a bundle, or a parity failure (``ParityError``).
    """
    run_dir = check_run_dir(run_dir)
    if quantize not in (None, "int8"):
        raise UserError(f"--quantize takes int8 (or nothing), got {quantize!r}")
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
        manifest = _write_bundle(run_dir, tmp, atol, parity_messages, quantize)
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
