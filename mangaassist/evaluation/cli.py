"""``mangaassist evaluate | gate | registry``: judge a model, decide on it, keep it.

Exit status: 0 success (``gate``: promote=yes), 1 ``gate`` rejected, 2 a user error
(printed by :mod:`mangaassist.cli`).
"""

from __future__ import annotations

import argparse
import json
from pathlib import Path


def _evaluate_bundle(args: argparse.Namespace) -> int:
    """``evaluate --model BUNDLE``: the exported model as served (ONNX Runtime, its policy)."""
    from mangaassist.evaluation import artifacts
    from mangaassist.evaluation.evaluate import evaluate_bundle, log_line, write_evaluation
    from mangaassist.evaluation.settings import load_eval_settings
    from mangaassist.inference import Predictor, open_bundle

    bundle = open_bundle(args.model)
    examples = artifacts.read_labelled(args.data, bundle.labels, args.model)
    predictor = Predictor.from_bundle(bundle, args.precision, num_threads=1)
    settings = load_eval_settings(path=Path(args.config) if args.config else None)
    ev = evaluate_bundle(predictor, examples, settings=settings, time_it=not args.no_latency)
    context = {
        "model": str(args.model),
        "data": str(args.data),
        "bundle_sha256": bundle.sha256,
        "model_version": bundle.version,
        "precision": predictor.precision,
    }
    report = write_evaluation(
        ev, Path(args.out), title=f"{Path(args.data).name} · {bundle.version}", context=context
    )
    print(log_line(ev.metrics, "EVAL", Path(args.data).stem))
    print(f"[REPORT] path={report} metrics={Path(args.out) / 'metrics.json'}")
    return 0


def _evaluate(args: argparse.Namespace) -> int:
    from mangaassist.evaluation import artifacts

    if (Path(args.model) / "manifest.json").is_file():
        return _evaluate_bundle(args)

    # Check the cheap things (files, labels) before importing torch and loading the model.
    model_dir = artifacts.check_run_dir(args.model)
    labels = artifacts.read_labels(model_dir)
    # CLINC150-style `oos` lines are scored apart, by the fallback threshold (as post_train).
    examples, oos = artifacts.read_scoped(args.data, labels, model_dir)

    from mangaassist.evaluation.after_training import fit_calibration
    from mangaassist.evaluation.evaluate import evaluate_run, log_line, write_evaluation
    from mangaassist.evaluation.out_of_scope import evaluate_out_of_scope, oos_log_line
    from mangaassist.evaluation.settings import load_eval_settings

    config = artifacts.read_config(model_dir)
    settings = load_eval_settings(config, Path(args.config) if args.config else None)
    run = artifacts.load_model_run(model_dir)
    calib = artifacts.read_calibration(model_dir)
    val = model_dir / "data" / "val.jsonl"
    if calib is None and val.is_file():
        print(f'[EVAL] note="no calibration.json; fitting T on {val} for this report only"')
        calib = fit_calibration(run, val, settings)
    ev = evaluate_run(
        run,
        examples,
        rare=artifacts.run_rare_classes(model_dir, config),
        calibration=calib,
        settings=settings,
        time_it=not args.no_latency,
    )
    if oos:
        ev.metrics["out_of_scope"] = evaluate_out_of_scope(
            run, oos, ev, top=settings.report.top_errors
        )
    report = write_evaluation(
        ev,
        Path(args.out),
        title=f"{Path(args.data).name} · {model_dir.name}",
        context={"model": str(model_dir), "data": str(args.data)},
    )
    print(log_line(ev.metrics, "EVAL", Path(args.data).stem))
    if oos:
        print(oos_log_line(ev.metrics["out_of_scope"], Path(args.data).stem))
    print(f"[REPORT] path={report} metrics={Path(args.out) / 'metrics.json'}")
    return 0


def _gate(args: argparse.Namespace) -> int:
    from mangaassist.evaluation.gates import format_decision
    from mangaassist.evaluation.promotion import gate_candidate, record_gate
    from mangaassist.evaluation.registry import Registry
    from mangaassist.evaluation.settings import load_eval_settings, load_gate_settings

    evidence = {"load_test": args.load_test, "shadow_report": args.shadow_report}
    decision = gate_candidate(
        args.candidate,
        Registry(args.root),
        load_eval_settings(path=Path(args.eval_config) if args.eval_config else None),
        load_gate_settings(Path(args.gates) if args.gates else None),
        data=Path(args.data) if args.data else None,
        load_test=Path(args.load_test) if args.load_test else None,
        shadow_report=Path(args.shadow_report) if args.shadow_report else None,
    )
    for line in format_decision(decision):
        print(line)
    if decision.promote and args.promote:
        # Recorded before registering, so the new version's model card shows the gate table.
        record_gate(args.candidate, Registry(args.root), decision, evidence)
        _register_and_promote(args.candidate, Registry(args.root), decision.reason)
    return 0 if decision.promote else 1


def _register_and_promote(candidate: str, reg, reason: str) -> None:
    """After promote=yes: register a run directory (a version is already in), then promote it."""
    from mangaassist.evaluation.model_card import render_model_card
    from mangaassist.evaluation.promotion import resolve_model

    path, name = resolve_model(candidate, reg)
    if path.resolve().parent != (reg.root / "versions").resolve():
        name = reg.register(
            path, extra_files=lambda v, folder: {"MODEL_CARD.md": render_model_card(v, folder)}
        )
        print(f"[REGISTRY] event=register version={name} source={path} root={reg.root}")
    before = reg.champion()
    reg.promote(name, reason=f"gate: {reason}")
    print(f"[REGISTRY] event=promote version={name} from={before or 'none'}")


def _registry_list(args: argparse.Namespace) -> int:
    from mangaassist.evaluation.registry import Registry

    reg = Registry(args.root)
    champion = reg.champion()
    versions = reg.versions()
    if not versions:
        print(
            f"no model versions yet in the registry at {reg.root}/; "
            "add one with: mangaassist registry register RUN_DIR"
        )
        return 0

    def pct(v: float | None) -> str:
        return "-" if v is None else f"{100 * v:.1f}"

    print(
        f"{'':2}{'version':8} {'created':26} {'acc':>6} {'mF1':>6} {'rare':>6} {'p95ms':>6}  source"
    )
    for v in versions:
        info = reg.info(v)
        m = info.get("metrics", {})
        p95 = m.get("latency/p95_ms")
        print(
            f"{'*' if v == champion else ' ':2}{v:8} {info['created_at']:26} "
            f"{pct(m.get('test/acc')):>6} {pct(m.get('test/macro_f1')):>6} "
            f"{pct(m.get('test/rare_recall')):>6} {'-' if p95 is None else f'{p95:.1f}':>6}  "
            f"{info['source']}"
        )
    print(f"champion: {champion or 'none'}")
    return 0


def _registry_register(args: argparse.Namespace) -> int:
    from mangaassist.evaluation.artifacts import check_run_dir
    from mangaassist.evaluation.model_card import render_model_card
    from mangaassist.evaluation.registry import Registry

    run_dir = check_run_dir(args.run_dir)
    if not (run_dir / "eval" / "test" / "metrics.json").is_file():
        from mangaassist.evaluation.after_training import post_train

        print(f'[REGISTRY] note="{run_dir} has no eval/test; calibrating and evaluating it first"')
        post_train(run_dir)
    reg = Registry(args.root)
    version = reg.register(
        run_dir, extra_files=lambda v, folder: {"MODEL_CARD.md": render_model_card(v, folder)}
    )
    print(f"[REGISTRY] event=register version={version} source={run_dir} root={reg.root}")
    return 0


def _registry_promote(args: argparse.Namespace) -> int:
    from mangaassist.evaluation.registry import Registry

    reg = Registry(args.root)
    before = reg.champion()
    reg.promote(args.version, reason=args.reason or "")
    print(f"[REGISTRY] event=promote version={args.version} from={before or 'none'}")
    return 0


def _registry_rollback(args: argparse.Namespace) -> int:
    from mangaassist.evaluation.registry import Registry

    reg = Registry(args.root)
    before = reg.champion()
    now = reg.rollback()
    print(f"[REGISTRY] event=rollback version={now} from={before}")
    return 0


def _registry_history(args: argparse.Namespace) -> int:
    from mangaassist.evaluation.registry import Registry

    for event in Registry(args.root).history():
        print(json.dumps(event))
    return 0


def _post_train(args: argparse.Namespace) -> int:
    from mangaassist.evaluation import artifacts

    model_dir = artifacts.check_run_dir(args.run_dir)
    from mangaassist.evaluation.after_training import post_train

    out = post_train(model_dir)
    print(f"[RUN] dir={model_dir} summary={model_dir / 'eval' / 'summary.json'} keys={len(out)}")
    return 0


def register(sub: argparse._SubParsersAction) -> None:
    """Add ``evaluate``, ``post-train``, ``gate`` and ``registry`` to the top-level parser."""
    pt = sub.add_parser(
        "post-train",
        help="calibrate a run on its val split and score its test (+ golden) split in place",
    )
    pt.add_argument("run_dir", help="a run directory (e.g. trained with evaluate=false, a soup)")
    pt.set_defaults(func=_post_train)

    root_help = "registry folder (default $MANGAASSIST_REGISTRY, else ./registry)"

    ev = sub.add_parser("evaluate", help="metrics, calibration, latency and an HTML report")
    ev.add_argument(
        "--model", required=True, help="run directory, registry version or export bundle"
    )
    ev.add_argument("--data", required=True, help="labelled JSONL/CSV in the example contract")
    ev.add_argument("--out", required=True, help="folder for metrics.json and report.html")
    ev.add_argument("--config", help="evaluation settings YAML (default: the run's, else conf/)")
    ev.add_argument("--no-latency", action="store_true", help="skip the batch-1 timing")
    ev.add_argument(
        "--precision",
        default="auto",
        choices=["auto", "fp32", "int8"],
        help="a bundle's graph (auto: int8 when present, as serve picks)",
    )
    ev.set_defaults(func=_evaluate)

    gt = sub.add_parser("gate", help="compare a candidate with the champion; [DECISION] line")
    gt.add_argument("candidate", help="run directory or registry version (v3)")
    gt.add_argument("--data", help="comparison set (default: the candidate's data/test.jsonl)")
    gt.add_argument("--gates", help="gate settings YAML (default conf/gates/default.yaml)")
    gt.add_argument("--eval-config", help="evaluation settings YAML (default conf/evaluation)")
    gt.add_argument("--root", type=Path, default=None, help=root_help)
    gt.add_argument(
        "--load-test",
        metavar="FILE",
        help="the candidate's `mangaassist loadtest --out` JSON: P95 and error rate under load",
    )
    gt.add_argument(
        "--shadow-report",
        metavar="FILE",
        help="the candidate's `mangaassist shadow-report --json` JSON: agreement, critical intents",
    )
    gt.add_argument(
        "--promote",
        action="store_true",
        help="on promote=yes, register the candidate (if a run directory) and make it champion",
    )
    gt.set_defaults(func=_gate)

    reg = sub.add_parser("registry", help="list, register, promote, roll back model versions")
    reg.add_argument("--root", type=Path, default=None, help=root_help)
    reg_sub = reg.add_subparsers(dest="registry_command", required=True)
    commands = {
        "list": ("versions with headline metrics; * marks the champion", _registry_list),
        "register": ("copy a run into the next version, with a model card", _registry_register),
        "promote": ("make a version the champion", _registry_promote),
        "rollback": ("restore the previous champion", _registry_rollback),
        "history": ("the event log, one JSON object per line", _registry_history),
    }
    for name, (text, func) in commands.items():
        p = reg_sub.add_parser(name, help=text)
        # Accepted after the subcommand too; SUPPRESS keeps the parent's value when absent.
        p.add_argument("--root", type=Path, default=argparse.SUPPRESS, help=root_help)
        p.set_defaults(func=func)
        if name == "register":
            p.add_argument("run_dir", help="a finished training run directory")
        elif name == "promote":
            p.add_argument("version", help="e.g. v3")
            p.add_argument("--reason", help="recorded in history.jsonl")
