"""``mangaassist soup OUT RUN RUN [...]``: average fine-tuned runs into one model.

``mangaassist convert-run RUN_DIR``: rewrite an older run's checkpoint so it loads safely.

``mangaassist explain RUN_DIR TEXT [--label L]``: one message through the model and its loss.
"""

from __future__ import annotations

import argparse


def _soup(args: argparse.Namespace) -> int:
    from mangaassist.training.soup import SOUP_FILE, soup_runs

    out = soup_runs(args.runs, args.out)
    print(f"[SOUP] path={out} ingredients={len(args.runs)} manifest={out / SOUP_FILE}")
    then = f"mangaassist post-train {out}"
    print(f'[SOUP] note="temperature reset to 1.0; calibrate it and score it: {then}"')
    return 0


def _convert_run(args: argparse.Namespace) -> int:
    from pathlib import Path

    from mangaassist.checkpoint import CHECKPOINT, convert_checkpoint

    path = Path(args.run_dir) / CHECKPOINT
    dropped = convert_checkpoint(path)
    print(f"[CONVERT] path={path} dropped={','.join(dropped) or 'none'}")
    print('[CONVERT] note="weights kept; the file now loads with weights_only=True"')
    return 0


def _explain(args: argparse.Namespace) -> int:
    # torch loads here, not when the parser is built: `mangaassist --help` stays fast.
    from mangaassist.training.explain import explain, format_explanation

    print(format_explanation(explain(args.run_dir, args.text, args.label)))
    return 0


def register(sub: argparse._SubParsersAction) -> None:
    """Add ``soup``, ``convert-run`` and ``explain`` to the top-level parser."""
    sp = sub.add_parser(
        "soup", help="one model: the average of several runs' weights (same data, same encoder)"
    )
    sp.add_argument("out", help="the new run directory (must not exist)")
    sp.add_argument("runs", nargs="+", help="two or more finished run directories")
    sp.set_defaults(func=_soup)
    cv = sub.add_parser(
        "convert-run",
        help="rewrite a trusted older run's checkpoint to weights and plain values only",
        description="Unpickles RUN_DIR/checkpoints/best.ckpt in full (only for a run you trust), "
        "keeps the weights, and writes it back so that every later load is weights_only=True.",
    )
    cv.add_argument("run_dir", help="the run directory whose checkpoint to convert")
    cv.set_defaults(func=_convert_run)
    ex = sub.add_parser(
        "explain",
        help="one message through a run's model: tokens, logits, probabilities, decision, loss",
        description="With the run's own checkpoint, tokenizer and calibration.json: the "
        "WordPiece tokens, logits, probabilities at T=1 and at the calibrated T, the prediction "
        "and the fallback decision (the server's rule). With --label: cross-entropy, the "
        "configured loss of this message, focal factor (1-p_t)^gamma, alpha_t, and the "
        "gradient norm it sends to the head, the top and the bottom encoder layer.",
    )
    ex.add_argument("run_dir", help="a finished run directory")
    ex.add_argument("text", help='the message, e.g. "is this isekai peak or mid?"')
    ex.add_argument("--label", help="the true intent: adds the loss and the gradient norms")
    ex.set_defaults(func=_explain)
