"""Gather what the gates need: candidate and champion scored on the same examples.

Both models are scored on one comparison set rather than trusted from their own reports,
because the paired tests need both models' predictions on the very same examples. Each model
uses its own temperature. The set is, in order: ``--data``; the ``gate_set`` of the gate
settings; the registry's fixed gate set, ``<registry root>/gate_set.jsonl``, when present
(configured once per registry: copy a held-out labelled JSONL there); else the candidate's
own ``data/test.jsonl``, with a note, since two runs with different splits may each have
trained on the other's test messages.

Whatever the set, the gate refuses it (a :class:`UserError` naming the counts) when any of
its messages, by :func:`~mangaassist.data.normalize.dedup_key`, is in either model's training
data: a model scored on what it trained on looks better than it is. The training texts are
read from ``data/train.jsonl`` and ``data/val_seen_in_training.jsonl`` (a refit run) of the
model folder, or of the run a registry version was registered from (training saves its train
split there and the registry links it). A model without ``data/train.jsonl`` (a run trained
before the split was kept) cannot be checked; the gate then says so in a ``[GATE]`` note
(``overlap=unverified``) rather than claiming the set is clean.

The operational evidence is read here too (so that :func:`~mangaassist.release.gates.decide`
stays pure): the JSON of ``mangaassist loadtest --out`` (:func:`read_load_test`) and of
``mangaassist shadow-report --json`` (:func:`read_shadow_report`). A bad file is a
:class:`UserError` naming the file and the key. :func:`record_gate` keeps a promoting
decision in the candidate's ``eval/gate.json``, which the model card renders.
"""

from __future__ import annotations

import datetime as dt
import json
import math
import re
from collections.abc import Callable, Mapping
from pathlib import Path
from typing import Any

import numpy as np

from mangaassist.atomic import file_sha256, write_text
from mangaassist.data.normalize import dedup_key
from mangaassist.data.schema import read_examples
from mangaassist.errors import UserError
from mangaassist.evaluation.after_training import golden_applies, golden_path
from mangaassist.evaluation.artifacts import (
    check_run_dir,
    load_model_run,
    read_calibration,
    read_json,
    read_labelled,
    read_labels,
    run_rare_classes,
)
from mangaassist.evaluation.evaluate import Evaluation, evaluate_run
from mangaassist.evaluation.settings import EvalSettings, GateSettings
from mangaassist.release.gates import (
    Decision,
    LoadRun,
    LoadTest,
    Scores,
    ShadowEvidence,
    decide,
)
from mangaassist.release.model_card import GATE_RECORD, render_model_card
from mangaassist.release.registry import GATE_SET_FILE, Registry

_VERSION = re.compile(r"^v\d+$")
# Files of a model folder that hold examples it trained on (a refit run trains on its val).
TRAIN_FILES = ("data/train.jsonl", "data/val_seen_in_training.jsonl")
LOAD_HOW = "`mangaassist loadtest URL --out load.json` (or with --find-max)"
SHADOW_HOW = "`mangaassist shadow-report LOG --json shadow.json`"


def _read_json(path: str | Path, what: str, how: str) -> dict:
    """A JSON object from ``path``; UserError naming the file and how to write it otherwise."""
    return read_json(path, what, f"write it with {how}", obj=True)


def _is_num(v: Any) -> bool:
    return isinstance(v, int | float) and not isinstance(v, bool) and math.isfinite(v)


def _is_count(v: Any) -> bool:
    return isinstance(v, int) and not isinstance(v, bool) and v >= 0


def _key(
    d: Mapping[str, Any],
    key: str,
    where: str,
    ok: Callable[[Any], bool],
    expected: str,
    how: str,
    optional: bool = False,
) -> Any:
    """``d[key]`` when present and ``ok``; a UserError naming ``where`` and ``key`` if not."""
    if key not in d:
        if optional:
            return None
        raise UserError(f"{where}: missing key '{key}' ({expected}); is it the JSON of {how}?")
    value = d[key]
    if not ok(value):
        raise UserError(f"{where}: key '{key}' must be {expected}, got {value!r}")
    return value


def _load_run(d: Mapping[str, Any], where: str) -> LoadRun:
    def get(key: str, ok: Callable[[Any], bool], expected: str, optional: bool = False) -> Any:
        return _key(d, key, where, ok, expected, LOAD_HOW, optional)

    achieved = get("achieved_rps", lambda v: _is_num(v) and v >= 0, "req/s >= 0", optional=True)
    p95 = get(
        "p95_ms",
        lambda v: v is None or (_is_num(v) and v >= 0),
        "milliseconds >= 0 (null when nothing was answered)",
    )
    return LoadRun(
        rate=float(get("rate", lambda v: _is_num(v) and v > 0, "the offered rate, req/s > 0")),
        p95_ms=None if p95 is None else float(p95),
        error_rate=float(
            get("error_rate", lambda v: _is_num(v) and 0 <= v <= 1, "a fraction in [0, 1]")
        ),
        errors=get("errors", _is_count, "a count >= 0", optional=True),
        scheduled=get("scheduled", _is_count, "a count >= 0", optional=True),
        achieved_rps=None if achieved is None else float(achieved),
    )


def read_load_test(path: str | Path) -> LoadTest:
    """A ``mangaassist loadtest --out`` file: one run, or a ``--find-max`` search.

    A find-max file (``max_sustained_rps``, ``steps``) keeps every step: which one the gates
    judge depends on the gates' own limits (:func:`~mangaassist.release.gates.judged_run`).

    Raises:
        UserError: a missing file, not JSON, or a missing or ill-typed key (named).
    """
    d = _read_json(path, "load test", LOAD_HOW)
    if "steps" in d or "max_sustained_rps" in d:
        steps = _key(
            d,
            "steps",
            str(path),
            lambda v: isinstance(v, list) and bool(v),
            "a non-empty list of runs (--find-max)",
            LOAD_HOW,
        )
        runs = []
        for i, step in enumerate(steps):
            where = f"{path}: steps[{i}]"
            if not isinstance(step, dict):
                raise UserError(f"{where}: expected a JSON object (one load-test run)")
            runs.append(_load_run(step, where))
        return LoadTest(tuple(runs), find_max=True, source=str(path))
    return LoadTest((_load_run(d, str(path)),), source=str(path))


def read_shadow_report(path: str | Path) -> ShadowEvidence:
    """The figures the shadow gate needs from a ``mangaassist shadow-report --json`` file.

    Raises:
        UserError: a missing file, not JSON, or a missing or ill-typed key (named).
    """
    d = _read_json(path, "shadow report", SHADOW_HOW)
    where = str(path)

    def get(key: str, ok: Callable[[Any], bool], expected: str, optional: bool = False) -> Any:
        return _key(d, key, where, ok, expected, SHADOW_HOW, optional)

    def is_version(v: Any) -> bool:
        return isinstance(v, str) and bool(v)

    critical = get("critical", lambda v: isinstance(v, dict), "an object per intent", True) or {}
    # Name the regressed intents with their flips, so the gate line says what went wrong.
    regressed = tuple(
        f"{intent}({c.get('flips_away', '?')}>{c.get('allowed', '?')} flips away)"
        for intent, c in critical.items()
        if isinstance(c, dict) and c.get("regression") is True
    )
    return ShadowEvidence(
        agreement=float(
            get(
                "agreement_with_champion",
                lambda v: _is_num(v) and 0 <= v <= 1,
                "a fraction in [0, 1]",
            )
        ),
        critical_regression=get(
            "critical_intent_regression", lambda v: isinstance(v, bool), "true or false"
        ),
        n_paired=get("n_paired", _is_count, "a count >= 0"),
        candidate_version=get("candidate_version", is_version, "a version name"),
        champion_version=get("champion_version", is_version, "a version name", optional=True),
        regressed=regressed,
        source=where,
    )


def candidate_versions(cand_path: Path, registry: Registry) -> tuple[str, ...]:
    """The registry version(s) a candidate is: itself, or those registered from this run.

    Empty for a run directory never registered: nothing to check a shadow report against.
    """
    cand = cand_path.resolve()
    if cand.parent == (registry.root / "versions").resolve():
        return (cand.name,)
    found = []
    for v in registry.versions():
        try:
            source = registry.info(v).get("source")
        except (OSError, ValueError):  # an unreadable version.json says nothing about this run
            continue
        if source and Path(source).resolve() == cand:
            found.append(v)
    return tuple(found)


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


def comparison_set(
    cand_path: Path, registry: Registry, settings: GateSettings, data: Path | None = None
) -> tuple[Path, str]:
    """The set both models are scored on, and where it came from (``--data``, ``gate_set``,
    ``registry`` or ``candidate_test``), in the order of the module docstring.

    Raises:
        UserError: ``gates.gate_set`` names a file that does not exist.
    """
    if data is not None:
        return Path(data), "--data"
    if settings.gate_set:
        path = Path(settings.gate_set)
        if not path.is_file():
            raise UserError(
                f"gates.gate_set: {path} does not exist; point it at a labelled JSONL held out "
                f"from every model's training, or set it to null to use {registry.root}/"
                f"{GATE_SET_FILE}"
            )
        return path, "gate_set"
    fixed = registry.root / GATE_SET_FILE
    if fixed.is_file():
        return fixed, "registry"
    return cand_path / "data" / "test.jsonl", "candidate_test"


def _training_files(model: Path, registry: Registry) -> list[Path]:
    """The files holding ``model``'s training examples: its own, else its source run's.

    A registry version keeps only val/test splits, so its training files are looked for in
    the run folder it was registered from (``version.json`` ``source``), when still there.
    """
    own = [model / f for f in TRAIN_FILES if (model / f).is_file()]
    if (model / TRAIN_FILES[0]).is_file():
        return own
    info = model / "version.json"
    if info.is_file():
        try:
            source = read_json(info, obj=True).get("source")
        except UserError:  # an unreadable version.json names no source
            source = None
        if source and Path(source).is_dir():
            found = [Path(source) / f for f in TRAIN_FILES if (Path(source) / f).is_file()]
            return own + [f for f in found if f.name not in {o.name for o in own}]
    return own


def training_overlap(examples: list, model: Path, registry: Registry) -> tuple[int | None, str]:
    """How many of ``examples`` (by ``dedup_key``) are in ``model``'s training data.

    Returns:
        (count, the files read); count None when the model's ``data/train.jsonl`` was found
        neither in its folder nor in its source run's, so the overlap cannot be known.
    """
    files = _training_files(model, registry)
    train_keys = {dedup_key(e.text) for f in files for e in read_examples(f)}
    count = sum(dedup_key(e.text) in train_keys for e in examples)
    if not any(f.name == "train.jsonl" for f in files):
        # A refit run's val_seen_in_training.jsonl alone still shows an overlap when there is
        # one; it cannot show there is none.
        return (count or None), ",".join(map(str, files)) or "no data/train.jsonl"
    return count, ",".join(map(str, files))


def check_no_training_overlap(
    examples: list, data: Path, models: Mapping[str, Path], registry: Registry, log=print
) -> None:
    """Refuse a comparison set that either model trained on; note a model not checkable.

    Raises:
        UserError: naming, per model, how many of the set's messages it trained on.
    """
    found, unverified = [], []
    for name, path in models.items():
        count, files = training_overlap(examples, path, registry)
        if count is None:
            unverified.append(name)
        elif count:
            found.append(f"{count} in {name}'s ({files})")
    if found:
        raise UserError(
            f"{data}: {' and '.join(found)} of its {len(examples)} messages are in the training "
            "data (same text after normalisation); a model scored on what it trained on looks "
            "better than it is. Remove them from the set (or gate on a set held out from both, "
            f"e.g. {registry.root}/{GATE_SET_FILE})"
        )
    if unverified:
        log(
            f"[GATE] overlap=unverified models={','.join(unverified)} "
            'note="no data/train.jsonl kept (trained before train splits were saved), so the '
            'set could not be checked against their training data"'
        )
    else:
        log(f"[GATE] overlap=0 models={','.join(models)} data={data}")


def gate_candidate(
    candidate: str,
    registry: Registry,
    eval_settings: EvalSettings,
    gate_settings: GateSettings,
    data: Path | None = None,
    log=print,
    *,
    load_test: str | Path | None = None,
    shadow_report: str | Path | None = None,
) -> Decision:
    """Score the candidate (and the champion, if any) and run the gates.

    Args:
        candidate: a run directory or a registry version (``v3``).
        registry: where the champion lives.
        data: the comparison set; default the gate set (see :func:`comparison_set`).
        log: where the ``[GATE]`` notes go.
        load_test: the candidate's ``mangaassist loadtest --out`` JSON, if any.
        shadow_report: the candidate's ``mangaassist shadow-report --json`` JSON, if any.

    Raises:
        UserError: a bad candidate, data set or evidence file (read before any model loads),
            or a comparison set that either model trained on (the counts named).
    """
    cand_path, cand_name = resolve_model(candidate, registry)
    # The evidence files first: a typo in a path should not cost two model evaluations.
    load = read_load_test(load_test) if load_test is not None else None
    shadow = read_shadow_report(shadow_report) if shadow_report is not None else None
    versions: tuple[str, ...] = ()
    if load is not None:
        shape = f"find_max steps={len(load.runs)}" if load.find_max else "single_run"
        log(f"[GATE] load_test={load.source} shape={shape}")
    if shadow is not None:
        versions = candidate_versions(cand_path, registry)
        log(
            f"[GATE] shadow_report={shadow.source} candidate={shadow.candidate_version} "
            f"champion={shadow.champion_version or '?'} paired={shadow.n_paired} "
            f"gated_as={'/'.join(versions) or 'unregistered (version not checked)'}"
        )
    data, origin = comparison_set(cand_path, registry, gate_settings, data)
    if origin == "candidate_test":
        log(
            f"[GATE] gate_set=none note=\"scoring on the candidate's own test split; set a fixed "
            f"gate set (gates.gate_set, or {registry.root / GATE_SET_FILE}) so every candidate "
            'meets the champion on the same held-out messages"'
        )
    champ = registry.champion()
    models = {cand_name: cand_path}
    if champ is not None and registry.path(champ).resolve() != cand_path.resolve():
        models[champ] = registry.path(champ)
    # Read labels only (no model load) and check the overlap first: a refusal costs nothing.
    examples = read_labelled(data, read_labels(cand_path), cand_path)
    check_no_training_overlap(examples, data, models, registry, log)
    cand_run = load_model_run(cand_path)
    rare = run_rare_classes(cand_path)  # one definition of "rare" for both models
    cand_ev = evaluate_run(
        cand_run,
        examples,
        rare=rare,
        calibration=read_calibration(cand_path),
        settings=eval_settings,
    )
    log(f"[GATE] candidate={cand_name} data={data} source={origin} n={len(examples)} rare={rare}")

    champ_scores, champ_name = None, "champion"
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
        if (
            origin == "candidate_test"
            and champ_test.is_file()
            and file_sha256(champ_test) != file_sha256(data)
        ):
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
    return decide(
        scores_of(cand_ev),
        champ_scores,
        golden_scores,
        gate_settings,
        champ_name,
        load=load,
        shadow=shadow,
        candidate_versions=versions,
    )


def record_gate(
    candidate: str,
    registry: Registry,
    decision: Decision,
    evidence: Mapping[str, str | Path | None] | None = None,
) -> Path:
    """Keep the decision in the candidate's ``eval/gate.json``, for its model card.

    A run directory's record travels into the registry with ``eval/`` when it is registered;
    a registry version's card is re-rendered in place, so the card of a version promoted on
    shadow evidence shows that evidence. Returns the record's path.

    Args:
        candidate: as given to :func:`gate_candidate`.
        registry: where the champion (the one compared against) lives.
        decision: what :func:`gate_candidate` returned.
        evidence: ``{"load_test": path, "shadow_report": path}``; None where not given.
    """
    path, name = resolve_model(candidate, registry)
    record = {
        "candidate": name,
        "champion": registry.champion(),
        "gated_at": dt.datetime.now(dt.UTC).isoformat(timespec="seconds"),
        **decision.as_dict(),
        "evidence": {k: None if v is None else str(v) for k, v in (evidence or {}).items()},
    }
    out = path / GATE_RECORD
    write_text(out, json.dumps(record, indent=1) + "\n")
    if (path / "version.json").is_file() and (path / "MODEL_CARD.md").is_file():
        write_text(path / "MODEL_CARD.md", render_model_card(path.name, path))
    return out
