"""``mangaassist predict``: classify messages from the command line, as the server would.

Takes a bundle, a run directory (its ``export/``, exported first when absent) or
``--registry DIR``, and answers through the same torch-free predictor and fallback rule as
``mangaassist serve``: one message as an argument, a file (``--file in.jsonl --out
out.jsonl``), lines on standard input, or an interactive prompt when none is given.

Example::

    $ mangaassist predict outputs/.../export "where is my order"
    order_tracking  0.982  routed -> order_service
      top-3: order_tracking 0.982 | checkout_help 0.006 | return_request 0.004
"""

from __future__ import annotations

import argparse
import json
import sys

from mangaassist.atomic import write_text
from mangaassist.errors import UserError


def format_answer(a: dict) -> str:
    """Two human lines for one answer."""
    decision = (
        f"routed -> {a['route']}" if not a["fallback"] else f"fallback ({a['fallback_reason']})"
    )
    top = " | ".join(f"{k} {p:.3f}" for k, p in a["top_k"])
    out = f"{a['intent']}  {a['confidence']:.3f}  {decision}\n  top-{len(a['top_k'])}: {top}"
    if "secondary_intents" in a:  # a model with the secondary head
        also = " | ".join(f"{s['intent']} {s['probability']:.3f}" for s in a["secondary_intents"])
        out += f"\n  secondary: {also or 'none'}"
    return out


def _public(a: dict) -> dict:
    keys = ("intent", "confidence", "top_k", "fallback", "fallback_reason", "route", "tokens")
    extra = ("secondary_intents",) if "secondary_intents" in a else ()  # with that head only
    return {k: a[k] for k in (*keys, *extra)}


def _predict(args: argparse.Namespace) -> int:
    from mangaassist.inference import Predictor, open_bundle
    from mangaassist.serve.cli import resolve_bundle

    if args.registry and args.target:  # `predict --registry R "where is my order"`
        args.text, args.target = [args.target, *args.text], None
    bundle = open_bundle(resolve_bundle(args.target, args.registry))
    predictor = Predictor.from_bundle(bundle, args.precision, num_threads=args.threads)
    top_k = args.top_k
    if args.file:
        from mangaassist.serve.loadtest import read_texts

        texts = read_texts(args.file)
        answers = predictor.classify(texts, top_k)
        rows = [{"text": t, **_public(a), "model_version": bundle.version}
                for t, a in zip(texts, answers, strict=True)]  # fmt: skip
        lines = "".join(json.dumps(r, ensure_ascii=False) + "\n" for r in rows)
        if args.out:
            write_text(args.out, lines)
            print(f"[PREDICT] n={len(rows)} out={args.out} model_version={bundle.version}")
        else:
            sys.stdout.write(lines)
        return 0
    if args.text:
        texts = [" ".join(args.text)]
    elif not sys.stdin.isatty():
        texts = [line.rstrip("\n") for line in sys.stdin if line.strip()]
    else:
        return _interactive(predictor, bundle.version, top_k)
    if not texts or not texts[0].strip():
        raise UserError("nothing to classify: pass a message, --file FILE, or lines on stdin")
    for text, a in zip(texts, predictor.classify(texts, top_k), strict=True):
        if args.json:
            print(json.dumps({"text": text, **_public(a)}, ensure_ascii=False))
        else:
            print(format_answer(a) if len(texts) == 1 else f"{text}\n  {format_answer(a)}")
    return 0


def _interactive(predictor, version: str, top_k: int) -> int:
    print(f"model {version}: type a message, an empty line or Ctrl-D to quit")
    while True:
        try:
            text = input("> ")
        except (EOFError, KeyboardInterrupt):
            print()
            return 0
        if not text.strip():
            return 0
        print(format_answer(predictor.classify([text], top_k)[0]))


def add_parser(sub: argparse._SubParsersAction) -> None:
    """Register ``predict``."""
    p = sub.add_parser(
        "predict",
        help="classify messages from the command line (same answers as the server)",
        description="Without a message or --file: lines from stdin, or a prompt on a terminal.",
    )
    p.add_argument("target", nargs="?", help="a bundle or a run directory")
    p.add_argument("text", nargs="*", help="the message (words are joined by spaces)")
    p.add_argument("--registry", help="use the champion of this registry folder")
    p.add_argument("--file", help="JSONL or CSV with a text column: one answer per line")
    p.add_argument("--out", help="with --file: write the answers here (JSON lines)")
    p.add_argument("--json", action="store_true", help="one JSON object per message")
    p.add_argument("--top-k", type=int, default=3, help="(intent, probability) pairs (3)")
    p.add_argument("--precision", default="auto", choices=["auto", "fp32", "int8"])
    p.add_argument("--threads", type=int, default=1, help="ONNX Runtime threads")
    p.set_defaults(func=_predict)
