"""What runs after every training run: calibrate on val, evaluate test and the golden set.

``train.py`` calls :func:`post_train` (``from mangaassist.evaluation import post_train``)
after ``train(cfg)`` when ``cfg.evaluate`` is true. It writes, inside the run directory::

    calibration.json            temperature + fallback thresholds (also T in best.ckpt)
    secondary.json              the secondary-intent threshold, chosen on val (runs with that head)
    eval/test/                  metrics.json, predictions.jsonl, report.html
    eval/golden/                the same on the golden set (when it applies)
    eval/summary.json           the flat headline dict this function returns
"""

from __future__ import annotations

from pathlib import Path

import numpy as np
from omegaconf import DictConfig

import mangaassist.data
from mangaassist.atomic import write_json
from mangaassist.data.schema import INTENTS
from mangaassist.evaluation.artifacts import (
    load_model_run,
    rare_below,
    read_config,
    read_labelled,
    read_scoped,
    run_rare_classes,
)
from mangaassist.evaluation.calibration import (
    CALIBRATION_FILE,
    Calibration,
    at_search_bound,
    calibrate,
    write_checkpoint_temperature,
)
from mangaassist.evaluation.evaluate import evaluate_run, headline, log_line, write_evaluation
from mangaassist.evaluation.out_of_scope import (
    evaluate_out_of_scope,
    merge_run_metrics,
    oos_headline,
    oos_log_line,
)
from mangaassist.evaluation.secondary import SECONDARY_FILE, fit_policy
from mangaassist.evaluation.secondary import headline as secondary_headline
from mangaassist.evaluation.secondary import log_line as secondary_log_line
from mangaassist.evaluation.settings import EvalSettings, load_eval_settings
from mangaassist.evaluation.slices import slices_line

GOLDEN = Path(mangaassist.data.__file__).parent / "golden" / "golden.jsonl"


def golden_path(settings: EvalSettings) -> Path:
    """The configured golden set, or the packaged one."""
    return Path(settings.golden_path) if settings.golden_path else GOLDEN


def golden_applies(labels: list[str], path: Path) -> str | None:
    """None when the golden set can score this model, else the reason it cannot."""
    if not path.is_file():
        return f"no golden set at {path}"
    if set(labels) != set(INTENTS):
        return f"the run's {len(labels)} labels are not the {len(INTENTS)} MangaAssist intents"
    return None


def fit_calibration(run, val_path: Path, settings: EvalSettings) -> Calibration:
    """Fit temperature and per-intent thresholds on a labelled validation file."""
    examples = read_labelled(val_path, run.labels, run.path)
    index = {label: i for i, label in enumerate(run.labels)}
    y = np.array([index[ex.label] for ex in examples])
    logits = run.predict_logits([ex.text for ex in examples])
    f = settings.fallback
    return calibrate(
        logits,
        y,
        run.labels,
        global_threshold=f.global_threshold,
        margin=f.margin,
        target_precision=f.target_precision,
        target_precision_per_intent=f.target_precision_per_intent,
        min_support=f.min_support,
        max_threshold=f.max_threshold,
        bounds=settings.temperature_bounds,
        n_bins=settings.ece_bins,
        fitted_on=str(
            val_path.relative_to(run.path) if val_path.is_relative_to(run.path) else val_path
        ),
    )


def calibration_log(c: Calibration) -> str:
    """The one-line ``[CALIBRATION]`` record."""
    raised = {k: round(v, 2) for k, v in c.thresholds.items() if v > c.global_threshold}
    return (
        f"[CALIBRATION] T={c.temperature:.3f} nll_before={c.nll_before:.4f} "
        f"nll_after={c.nll_after:.4f} ece_before={c.ece_before:.4f} ece_after={c.ece_after:.4f} "
        f"global_threshold={c.global_threshold} margin={c.margin} raised_thresholds={raised} "
        f"unreached={c.unreached}"
    )


def post_train(run_dir: Path, cfg: DictConfig | None = None) -> dict[str, float]:
    """Calibrate on ``data/val.jsonl``, evaluate ``data/test.jsonl`` and the golden set.

    Args:
        run_dir: a finished run directory.
        cfg: the run's composed config; ``cfg.evaluation`` and ``cfg.data`` are read
            (None = the run's own config.yaml).

    Returns:
        Flat headline metrics: ``test/...``, ``golden/...`` (when it applies),
        ``latency/p50_ms|p95_ms|p99_ms`` and ``calibration/...`` (temperature, val ECE);
        with the secondary head also ``<set>/secondary_...`` and ``secondary/threshold``.
    """
    run_dir = Path(run_dir)
    config = cfg if cfg is not None else read_config(run_dir)
    settings = load_eval_settings(config)
    run = load_model_run(run_dir)
    rare = run_rare_classes(run_dir, config)
    print(f"[EVAL] run={run_dir} rare_below={rare_below(config)} rare={rare}", flush=True)
    out: dict[str, float] = {}

    val_path = run_dir / "data" / "val.jsonl"
    if val_path.is_file():
        calib = fit_calibration(run, val_path, settings)
        calib.save(run_dir / CALIBRATION_FILE)
        write_checkpoint_temperature(run_dir / "checkpoints" / "best.ckpt", calib.temperature)
        run.model.temperature.fill_(calib.temperature)  # the loaded model matches the checkpoint
        print(calibration_log(calib), flush=True)
        lo, hi = settings.temperature_bounds
        if at_search_bound(calib.temperature, (lo, hi)):
            print(
                f'[CALIBRATION] note="T at the search bound [{lo}, {hi}]: the model is near '
                'chance, or the bounds are too tight"'
            )
        out |= {
            "calibration/temperature": calib.temperature,
            "calibration/val_ece_before": calib.ece_before,
            "calibration/val_ece_after": calib.ece_after,
        }
    else:
        calib = None
        print(f'[EVAL] note="no {val_path}; temperature stays 1.0, default thresholds"')

    secondary = None
    if run.has_secondary:  # threshold from val only, then applied unchanged to every set
        secondary = fit_policy(run, val_path, config.get("secondary"))
        secondary.save(run_dir / SECONDARY_FILE)
        val_f1 = secondary.val.get("f1_all")
        print(
            f'[SECONDARY] threshold={secondary.threshold:.2f} chosen_on="{secondary.chosen_on}" '
            f"mask_primary={str(secondary.mask_primary).lower()} "
            f"val_f1_all={'na' if val_f1 is None else f'{100 * val_f1:.1f}'}",
            flush=True,
        )
        out["secondary/threshold"] = secondary.threshold

    context = {"model": str(run_dir)}
    sets = [("test", run_dir / "data" / "test.jsonl")]
    gold = golden_path(settings)
    why_not = golden_applies(run.labels, gold)
    if why_not:
        print(f'[EVAL] note="golden set skipped: {why_not}"', flush=True)
    else:
        sets.append(("golden", gold))
    oos_flat: dict[str, float] = {}
    for name, path in sets:
        if not path.is_file():
            print(f'[EVAL] note="no {path}; {name} not evaluated"', flush=True)
            continue
        # Out-of-scope queries (CLINC150's `oos`) are scored apart, by the fallback threshold.
        examples, oos = read_scoped(path, run.labels, run_dir)
        # Latency is a property of the model, not of the set: time it once, on test messages.
        ev = evaluate_run(
            run,
            examples,
            rare=rare,
            calibration=calib,
            settings=settings,
            time_it=name == "test",
            secondary=secondary,
        )
        if oos:
            ev.metrics["out_of_scope"] = evaluate_out_of_scope(
                run, oos, ev, top=settings.report.top_errors
            )
        report = write_evaluation(
            ev,
            run_dir / "eval" / name,
            title=f"{name} · {run_dir.name}",
            context={**context, "data": str(path)},
        )
        print(log_line(ev.metrics, "EVAL", name), flush=True)
        if ev.metrics.get("slices"):  # script and length slices: issue 13's weak spots
            print(slices_line(ev.metrics["slices"], name), flush=True)
        if ev.metrics.get("secondary"):
            print(secondary_log_line(ev.metrics["secondary"], name), flush=True)
        if oos:
            print(oos_log_line(ev.metrics["out_of_scope"], name), flush=True)
        oos_flat |= oos_headline(ev.metrics.get("out_of_scope"), name)
        print(f"[REPORT] set={name} path={report}", flush=True)
        out |= headline(ev.metrics, name) | oos_flat
        out |= secondary_headline(ev.metrics.get("secondary"), name)
    (run_dir / "eval").mkdir(exist_ok=True)
    write_json(run_dir / "eval" / "summary.json", out, sort_keys=True)
    merge_run_metrics(run_dir, oos_flat)
    return out
