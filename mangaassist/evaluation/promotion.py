"""Gather what the gates need: candidate and champion scored on the same examples.

The champion is re-scored on the candidate's comparison set (by default the candidate's
``data/test.jsonl``) rather than trusted from its own report, because the paired tests need
both models' predictions on the very same examples. Each model uses its own temperature.
"""

from __future__ import annotations

import re
from pathlib import Path

import numpy as np

from mangaassist.errors import UserError
from mangaassist.evaluation.after_training import golden_applies, golden_path
from mangaassist.evaluation.artifacts import (
    check_run_dir,
    load_model_run,
    read_calibration,
    read_labelled,
    run_rare_classes,
)
from mangaassist.evaluation.evaluate import Evaluation, evaluate_run
from mangaassist.evaluation.gates import Decision, Scores, decide
from mangaassist.evaluation.registry import Registry, file_sha256
from mangaassist.evaluation.settings import EvalSettings, GateSettings

_VERSION = re.compile(r"^v\d+$")


def resolve_model(ref: str, registry: Registry) -> tuple[Path, str]:
    """A run directory or a registry version name -> (folder, display name)."""
    if _VERSION.match(ref) and not Path(ref).exists():
        return registry.path(ref), ref
    return check_run_dir(ref), str(ref)


def scores_of(ev: Evaluation, labels_to: list[str] | None = None) -> Scores:
    """Gate table of an evaluation; ``labels_to`` re-indexes predictions to another label order."""
    m = ev.metrics
    y_true, y_pred = ev.y_true, ev.y_pred
    if labels_to is not None and list(m["labels"]) != list(labels_to):
        remap = np.array([labels_to.index(lb) for lb in m["labels"]])
        y_true, y_pred = remap[y_true], remap[y_pred]
    return Scores(
        y_true=y_true,
        y_pred=y_pred,
        n_classes=len(m["labels"]),
        acc=m["acc"],
        macro_f1=m["macro_f1"],
        rare_recall=m["rare_recall"],
        ece=m["calibration"]["ece_after"],
        p95_ms=(m.get("latency") or {}).get("p95_ms"),
    )


def gate_candidate(
    candidate: str,
    registry: Registry,
    eval_settings: EvalSettings,
    gate_settings: GateSettings,
    data: Path | None = None,
    log=print,
) -> Decision:
    """Score the candidate (and the champion, if any) and run the gates.

    Args:
        candidate: a run directory or a registry version (``v3``).
        registry: where the champion lives.
        data: the comparison set; default the candidate's ``data/test.jsonl``.
        log: where the ``[GATE]`` notes go.
    """
    cand_path, cand_name = resolve_model(candidate, registry)
    data = Path(data) if data else cand_path / "data" / "test.jsonl"
    cand_run = load_model_run(cand_path)
    examples = read_labelled(data, cand_run.labels, cand_path)
    rare = run_rare_classes(cand_path)  # one definition of "rare" for both models
    cand_ev = evaluate_run(
        cand_run,
        examples,
        rare=rare,
        calibration=read_calibration(cand_path),
        settings=eval_settings,
    )
    log(f"[GATE] candidate={cand_name} data={data} n={len(examples)} rare={rare}")

    champ_scores, champ_name = None, "champion"
    champ = registry.champion()
    if champ is not None:
        champ_path = registry.path(champ)
        champ_name = champ
        if champ_path.resolve() == cand_path.resolve():
            log(f'[GATE] note="the candidate is the champion {champ}; it cannot beat itself"')
        champ_run = load_model_run(champ_path)
        if set(champ_run.labels) != set(cand_run.labels):
            raise UserError(
                f"champion {champ} has labels {champ_run.labels}, the candidate "
                f"{cand_run.labels}; they cannot be compared. Promote by hand if intended"
            )
        champ_ev = evaluate_run(
            champ_run,
            examples,
            rare=rare,
            calibration=read_calibration(champ_path),
            settings=eval_settings,
            time_it=False,
        )
        champ_scores = scores_of(champ_ev, labels_to=cand_run.labels)
        champ_test = champ_path / "data" / "test.jsonl"
        if champ_test.is_file() and file_sha256(champ_test) != file_sha256(data):
            log(
                f'[GATE] note="{champ} was tested on a different split; if it trained on some '
                f'of these examples the comparison favours it"'
            )
    else:
        log('[GATE] champion=none note="only the absolute floors apply"')

    golden_scores = None
    gold = golden_path(eval_settings)
    why_not = golden_applies(cand_run.labels, gold)
    if why_not:
        log(f'[GATE] note="golden floors skipped: {why_not}"')
    else:
        gold_ev = evaluate_run(
            cand_run,
            read_labelled(gold, cand_run.labels, cand_path),
            rare=rare,
            calibration=read_calibration(cand_path),
            settings=eval_settings,
            time_it=False,
        )
        golden_scores = scores_of(gold_ev)
    return decide(scores_of(cand_ev), champ_scores, golden_scores, gate_settings, champ_name)
