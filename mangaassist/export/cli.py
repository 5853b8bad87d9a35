"""``mangaassist export RUN_DIR [--out DIR] [--quantize int8]``: the ONNX serving bundle.

Exit status: 0 success, 2 a user error (printed by :mod:`mangaassist.cli`): an incomplete
run directory, an ``--out`` that is not a bundle, or ONNX logits that differ from PyTorch's.
"""

from __future__ import annotations

import argparse


def _export(args: argparse.Namespace) -> int:
    from mangaassist.evaluation.artifacts import check_run_dir

    check_run_dir(args.run_dir)  # fail in a fraction of a second, before importing torch
    from mangaassist.export.bundle import MANIFEST, export_run, verify_bundle

    out = export_run(
        args.run_dir,
        args.out,
        atol=args.atol,
        parity_messages=args.messages,
        quantize=args.quantize,
    )
    m = verify_bundle(out)
    p = m["parity"]
    print(
        f"[EXPORT] path={out} files={len(m['files'])} max_length={m['max_length']} "
        f"T={m['temperature']:.3f} calibrated={str(m['calibrated']).lower()} "
        f"parity_max_abs_diff={p['max_abs_logit_diff']:.2e} on={p['messages']}:{p['source']} "
        f"manifest={out / MANIFEST}"
    )
    q = m.get("int8")
    if q is not None:
        print(
            f"[EXPORT] int8={'accepted' if q['accepted'] else 'refused'} "
            f"top1_agreement={100 * q['agreement']:.2f}% (min {100 * q['min_agreement']:.0f}%) "
            f"macro_f1_fp32={q['macro_f1_fp32']:.2f} macro_f1_int8={q['macro_f1_int8']:.2f} "
            f"(max drop {q['max_f1_drop_points']:g}) n={q['n']} on={q['source']}"
            + (
                f" secondary_agreement={100 * q['secondary_agreement']:.2f}%"
                if "secondary_agreement" in q
                else ""
            )
        )
    sec = m.get("secondary")
    if sec is not None:  # the run has the secondary-intent head: a second graph output
        print(
            f"[EXPORT] secondary_output={sec['output']} threshold={sec['threshold']:.2f} "
            f'mask_primary={str(sec["mask_primary"]).lower()} chosen_on="{sec["chosen_on"]}" '
            f"parity_max_abs_diff={p['max_abs_secondary_logit_diff']:.2e}"
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
    ex.add_argument(
        "--quantize",
        choices=["int8"],
        help="also write model.int8.onnx, kept only if it agrees with fp32 on validation",
    )
    ex.set_defaults(func=_export)
