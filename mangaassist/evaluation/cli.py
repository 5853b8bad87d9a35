"""``mangaassist evaluate | post-train``: judge a model.

Deciding on it and keeping it (``gate``, ``registry``) is :mod:`mangaassist.release.cli`.
Exit status: 0 success, 2 a user error (printed by :mod:`mangaassist.cli`).
"""

from __future__ import annotations

import argparse
from pathlib import Path


def _bundle_secondary(bundle):  # -> evaluation.secondary.SecondaryPolicy | None
    """The secondary policy a bundle with that head serves by (its manifest), else None."""
    from mangaassist.evaluation.secondary import CRITERION, SecondaryPolicy

    entry, rule = bundle.manifest.get("secondary"), bundle.secondary
    if rule is None:
        return None
    where = entry.get("chosen_on") or "bundle manifest"
    return SecondaryPolicy(
        rule.threshold, rule.mask_primary, where, entry.get("criterion", CRITERION)
    )


def _evaluate_bundle(args: argparse.Namespace) -> int:
    """``evaluate --model BUNDLE``: the exported model as served (ONNX Runtime, its policy)."""
    from mangaassist.evaluation import artifacts
    from mangaassist.evaluation.evaluate import evaluate_bundle, log_line, write_evaluation
    from mangaassist.evaluation.settings import load_eval_settings
    from mangaassist.evaluation.slices import slices_line
    from mangaassist.inference import Predictor, open_bundle

    bundle = open_bundle(args.model)
    examples = artifacts.read_labelled(args.data, bundle.labels, args.model)
    predictor = Predictor.from_bundle(bundle, args.precision, num_threads=1)
    settings = load_eval_settings(path=Path(args.config) if args.config else None)
    ev = evaluate_bundle(
        predictor,
        examples,
        rare=bundle.rare_classes,
        settings=settings,
        time_it=not args.no_latency,
        secondary=_bundle_secondary(bundle),
    )
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
    if ev.metrics.get("slices"):
        print(slices_line(ev.metrics["slices"], Path(args.data).stem))
    if ev.metrics.get("secondary"):
        from mangaassist.evaluation.secondary import log_line as secondary_line

        print(secondary_line(ev.metrics["secondary"], Path(args.data).stem))
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
    from mangaassist.evaluation.slices import slices_line

    config = artifacts.read_config(model_dir)
    settings = load_eval_settings(config, Path(args.config) if args.config else None)
    run = artifacts.load_model_run(model_dir)
    calib = artifacts.read_calibration(model_dir)
    val = model_dir / "data" / "val.jsonl"
    if calib is None and val.is_file():
        print(f'[EVAL] note="no calibration.json; fitting T on {val} for this report only"')
        calib = fit_calibration(run, val, settings)
    secondary = None
    if run.has_secondary:  # the threshold post_train chose on val; else chosen on val now
        from mangaassist.evaluation import secondary as sec

        stored = model_dir / sec.SECONDARY_FILE
        secondary = (
            sec.SecondaryPolicy.load(stored)
            if stored.is_file()
            else sec.fit_policy(run, val, config.get("secondary"))
        )
    ev = evaluate_run(
        run,
        examples,
        rare=artifacts.run_rare_classes(model_dir, config),
        calibration=calib,
        settings=settings,
        time_it=not args.no_latency,
        secondary=secondary,
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
    if ev.metrics.get("slices"):
        print(slices_line(ev.metrics["slices"], Path(args.data).stem))
    if ev.metrics.get("secondary"):
        print(sec.log_line(ev.metrics["secondary"], Path(args.data).stem))
    if oos:
        print(oos_log_line(ev.metrics["out_of_scope"], Path(args.data).stem))
    print(f"[REPORT] path={report} metrics={Path(args.out) / 'metrics.json'}")
    return 0


def _post_train(args: argparse.Namespace) -> int:
    from mangaassist.evaluation import artifacts

    model_dir = artifacts.check_run_dir(args.run_dir)
    from mangaassist.evaluation.after_training import post_train

    out = post_train(model_dir)
    print(f"[RUN] dir={model_dir} summary={model_dir / 'eval' / 'summary.json'} keys={len(out)}")
    return 0


def register(sub: argparse._SubParsersAction) -> None:
    """Add ``evaluate`` and ``post-train`` to the top-level parser."""
    pt = sub.add_parser(
        "post-train",
        help="calibrate a run on its val split and score its test (+ golden) split in place",
    )
    pt.add_argument("run_dir", help="a run directory (e.g. trained with evaluate=false, a soup)")
    pt.set_defaults(func=_post_train)

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
