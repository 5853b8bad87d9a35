"""``mangaassist export RUN_DIR [--out DIR]``: the ONNX serving bundle of a trained run.

Exit status: 0 success, 2 a user error (printed by :mod:`mangaassist.cli`): an incomplete
run directory, an ``--out`` that is not a bundle, or ONNX logits that differ from PyTorch's.
"""

from __future__ import annotations

import argparse


def _export(args: argparse.Namespace) -> int:
    from mangaassist.evaluation.artifacts import check_run_dir

    check_run_dir(args.run_dir)  # fail in a fraction of a second, before importing torch
    from mangaassist.export.bundle import MANIFEST, export_run, verify_bundle

    out = export_run(args.run_dir, args.out, atol=args.atol, parity_messages=args.messages)
    m = verify_bundle(out)
    p = m["parity"]
    print(
        f"[EXPORT] path={out} files={len(m['files'])} max_length={m['max_length']} "
        f"T={m['temperature']:.3f} calibrated={str(m['calibrated']).lower()} "
        f"parity_max_abs_diff={p['max_abs_logit_diff']:.2e} on={p['messages']}:{p['source']} "
        f"manifest={out / MANIFEST}"
    )
    if not m["calibrated"]:
        note = "run has no calibration.json: T from the checkpoint, default thresholds"
        print(f'[EXPORT] note="{note}; post-train the run (evaluate=true) to calibrate it"')
    return 0


def register(sub: argparse._SubParsersAction) -> None:
    """Add ``export`` to the top-level parser."""
    ex = sub.add_parser("export", help="ONNX serving bundle of a run, checked against PyTorch")
    ex.add_argument("run_dir", help="a finished training run directory (or registry version)")
    ex.add_argument("--out", help="bundle folder (default RUN_DIR/export; replaced atomically)")
    ex.add_argument(
        "--atol", type=float, default=1e-3, help="max ONNX-PyTorch logit difference (1e-3)"
    )
    ex.add_argument(
        "--messages", type=int, default=64, help="validation messages checked for parity (64)"
    )
    ex.set_defaults(func=_export)
