"""``mangaassist retrain``: labelled messages -> candidate -> gates -> registry, with its ROI.

Steps, each announced by a ``[RETRAIN] step=...`` line:

1. **merge**: the labels file is checked against the champion's intents and merged into the
   champion's ``data/train.jsonl`` (:mod:`~mangaassist.retrain.merge`: deduplicated; never
   into the test split, the golden set, the registry's gate set or the validation split). The
   merged file, the added and dropped rows and the data version record go to ``OUT/retrain/``;
2. **train**: the champion's own saved ``config.yaml`` (its model, loss, optimiser, trainer
   and seed), its paths moved to ``OUT``, its data source replaced by ``data=files`` on the
   merged train file and the champion's *own* validation and test files, so the candidate is
   tuned and tested on exactly the champion's splits; ``key=value`` overrides last;
3. **evaluate**: calibration on the validation split, the test split and the golden set, as
   after every training run (:func:`~mangaassist.evaluation.post_train`);
4. **gate**: :func:`~mangaassist.release.promotion.gate_candidate` against the registry's
   champion on its gate set (the same ``[GATE]``/``[DECISION]`` lines as ``mangaassist
   gate``), then the points recovered there (:mod:`~mangaassist.retrain.recovery`) and the
   realised cost: labels bought x price per label + training minutes x instance price;
5. **register**: when the gates pass (or ``register: always``), the candidate becomes the next
   registry version, with its data version and this report, **not** promoted: it goes to
   shadow next, and ``mangaassist gate VERSION --shadow-report ... --promote`` decides.

Exit status 0 when the candidate was registered, 1 when the gates rejected it (the run stays in
``OUT``), 2 for a user error (before any training where it can be checked up front).
"""

from __future__ import annotations

import datetime as dt
import json
import re
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from omegaconf import DictConfig, ListConfig, OmegaConf

from mangaassist.atomic import write_json
from mangaassist.data.normalize import dedup_key
from mangaassist.data.schema import read_examples
from mangaassist.errors import UserError
from mangaassist.evaluation.artifacts import check_run_dir
from mangaassist.evaluation.settings import load_eval_settings, load_gate_settings
from mangaassist.monitor.settings import RetrainCosts
from mangaassist.release.registry import GATE_SET_FILE, Registry
from mangaassist.retrain.labels import LabelFile, read_label_file
from mangaassist.retrain.merge import FOLDER, VERSION_FILE, MergeResult, merge_labels, write_merge
from mangaassist.retrain.settings import RetrainSettings, load_retrain_settings

REPORT_FILE = "report.json"
_VERSION = re.compile(r"^v\d+$")
Log = Callable[[str], None]


def _print(line: str) -> None:
    print(line, flush=True)


@dataclass
class Champion:
    """The model a retrain starts from: its folder, name, intents, config and split files."""

    path: Path
    name: str
    labels: list[str]
    config: DictConfig
    train: Path
    val: Path
    test: Path


def resolve_champion(registry: Registry, champion: str | None) -> Champion:
    """``--champion`` (a run directory or registry version), else the registry's champion.

    Raises:
        UserError: no champion, or a champion without its train, validation or test file.
    """
    if champion is None:
        champion = registry.champion()
        if champion is None:
            raise UserError(
                f"registry {registry.root} has no champion to retrain: promote one "
                "(`mangaassist registry promote vN`) or pass --champion RUN_OR_VERSION"
            )
    # promotion.resolve_model's rule, without its torch import: errors here come at once.
    if _VERSION.match(champion) and not Path(champion).exists():
        path, name = registry.path(champion), champion
    else:
        path, name = check_run_dir(champion), str(champion)
    data = path / "data"
    names = ("val.jsonl", "val_seen_in_training.jsonl")  # a refit champion trained on its val
    val = next((data / f for f in names if (data / f).is_file()), data / names[0])
    missing = [p.name for p in (data / "train.jsonl", val, data / "test.jsonl") if not p.is_file()]
    if missing:
        raise UserError(
            f"{path}/data lacks {missing}: a retrain adds to the champion's own training split "
            "and keeps its validation and test splits, so it needs a run that saved them "
            "(every run trained since train splits are kept does)"
        )
    labels = json.loads((path / "labels.json").read_text(encoding="utf-8"))
    try:
        config = OmegaConf.load(path / "config.yaml")
    except Exception as err:  # YAML errors come in several types
        raise UserError(f"{path}/config.yaml: cannot read it ({err})") from err
    assert isinstance(config, DictConfig)
    return Champion(path, name, labels, config, data / "train.jsonl", val, data / "test.jsonl")


def gate_set_path(registry: Registry, gate_settings: Any) -> Path | None:
    """The gate set the gates will score on: ``gates.gate_set``, else the registry's file."""
    if gate_settings.gate_set:
        return Path(gate_settings.gate_set)
    fixed = registry.root / GATE_SET_FILE
    return fixed if fixed.is_file() else None


def protected_sets(
    champ: Champion, registry: Registry, gate_settings: Any
) -> dict[str, tuple[Path, set[str]]]:
    """The sets no labelled message may join training from: name -> (file, dedup keys)."""
    from mangaassist.evaluation.after_training import golden_path

    files = {"test": champ.test, "val": champ.val}
    gold = golden_path(load_eval_settings(champ.config))
    if gold.is_file():
        files["golden"] = gold
    gate = gate_set_path(registry, gate_settings)
    if gate is not None:
        if not gate.is_file():
            raise UserError(f"gates.gate_set: {gate} does not exist")
        files["gate_set"] = gate
    return {k: (p, {dedup_key(e.text) for e in read_examples(p)}) for k, p in files.items()}


def candidate_config(
    champ: Champion, train_file: Path, out: Path, overrides: Sequence[str] = ()
) -> DictConfig:
    """The champion's config, moved to ``out``, on the merged train file and its own splits.

    Every path under the champion's ``paths.output_dir`` (checkpoints, logger, reports) moves
    under ``out``; ``data.source`` becomes ``mangaassist.data.sources.files`` on
    ``train_file`` and the champion's validation and test files, with the champion's labels in
    its order; ``evaluate`` is on. ``overrides`` (``trainer.max_epochs=3``) apply last.

    Raises:
        UserError: an override that is not ``key=value`` or names no key of the config.
    """
    old = str(OmegaConf.select(champ.config, "paths.output_dir", default="") or "")

    def move(x: Any) -> Any:
        if isinstance(x, dict):
            return {k: move(v) for k, v in x.items()}
        if isinstance(x, list):
            return [move(v) for v in x]
        if old and isinstance(x, str) and (x == old or x.startswith(old + "/")):
            return str(out) + x[len(old) :]
        return x

    cfg = OmegaConf.create(move(OmegaConf.to_container(champ.config, resolve=False)))
    assert isinstance(cfg, DictConfig)
    files = {"train": str(train_file), "val": str(champ.val), "test": str(champ.test)}
    cfg.data.source = {
        "_target_": "mangaassist.data.sources.files",
        **files,
        "labels": list(champ.labels),
        "text_column": "text",
        "label_column": "label",
    }
    for key, value in {**files, "labels": list(champ.labels)}.items():
        if key in cfg.data:  # a data=files champion also lists them at data.*: keep them true
            cfg.data[key] = value
    cfg.paths.output_dir = str(out)
    cfg.evaluate = True
    tags = cfg.get("tags")
    if isinstance(tags, ListConfig) and "retrain" not in tags:
        tags.append("retrain")
    for text in overrides:
        key, eq, _ = text.partition("=")
        if not eq or not key:
            raise UserError(f"override {text!r}: expected key=value, e.g. trainer.max_epochs=3")
        if OmegaConf.select(cfg, key, default=KeyError) is KeyError:
            raise UserError(f"override {text!r}: the champion's config has no key {key!r}")
    if overrides:
        merged = OmegaConf.merge(cfg, OmegaConf.from_dotlist(list(overrides)))
        assert isinstance(merged, DictConfig)
        cfg = merged
    return cfg


def default_out(settings: RetrainSettings) -> Path:
    """``out_root/<UTC time>``."""
    return Path(settings.out_root) / dt.datetime.now(dt.UTC).strftime("%Y-%m-%d_%H-%M-%S")


def prepare(
    labels: str | Path,
    champ: Champion,
    registry: Registry,
    out: Path,
    gate_settings: Any,
    log: Log = _print,
) -> tuple[LabelFile, MergeResult, dict[str, Any]]:
    """Step 1: read the labels, merge them, write ``OUT/retrain/`` (see the module docstring).

    Returns:
        The label file, the merge and the data version record.
    """
    got = read_label_file(labels, champ.labels)
    protected = protected_sets(champ, registry, gate_settings)
    merged = merge_labels(
        got.examples,
        got.where,
        read_examples(champ.train),
        {k: keys for k, (_, keys) in protected.items()},
    )
    record = write_merge(
        out / FOLDER,
        merged,
        parent={"model": champ.name, "path": str(champ.path), "train_file": str(champ.train)},
        labels_file={
            "path": str(got.path),
            "sha256": got.sha256,
            "rows": got.rows,
            "unlabelled": got.unlabelled,
        },
        protected={k: {"file": str(p), "n": len(keys)} for k, (p, keys) in protected.items()},
    )
    c = record["counts"]
    dropped = " ".join(f"{k}={v}" for k, v in c["dropped"].items()) or "none"
    log(
        f"[RETRAIN_DATA] labelled={c['labelled']} unlabelled={got.unlabelled} added={c['added']} "
        f'dropped="{dropped}" disagrees_with_train={c["disagrees_with_train"]} '
        f"base_train={c['base_train']} merged_train={c['merged_train']} "
        f"data_version={record['data_version'][:19]} parent={record['parent']['data_version'][:19]}"
    )
    if not merged.added:
        raise UserError(
            f"{got.path}: none of its {len(got.examples)} labelled messages is new to "
            f"{champ.name}'s training data ({dropped}); see {out / FOLDER / 'dropped.jsonl'}. "
            "Nothing to retrain on"
        )
    return got, merged, record


def realised_cost(costs: RetrainCosts, labels_bought: int, train_minutes: float) -> dict:
    """labels x price_per_label + training minutes x instance_price_per_hour / 60.

    Example:
        >>> realised_cost(RetrainCosts(), 480, 20.0)["cost"]
        49.0
    """
    label_cost = labels_bought * costs.price_per_label
    training_cost = train_minutes * costs.instance_price_per_hour / 60
    return {
        "labels": labels_bought,
        "price_per_label": costs.price_per_label,
        "label_cost": round(label_cost, 2),
        "training_minutes": round(train_minutes, 3),
        "instance_price_per_hour": costs.instance_price_per_hour,
        "training_cost": round(training_cost, 2),
        "cost": round(label_cost + training_cost, 2),
        "currency": costs.currency,
    }


def monitor_estimate(path: str | Path) -> dict[str, Any] | None:
    """The ROI estimate of the last priced alert in a ``monitor.json`` (or its folder)."""
    path = Path(path)
    path = path / "monitor.json" if path.is_dir() else path
    try:
        report = json.loads(path.read_text(encoding="utf-8"))
    except (OSError, ValueError) as err:
        raise UserError(f"--monitor {path}: cannot read the monitor report ({err})") from None
    priced = [e for e in report.get("alerts", []) if e.get("event") == "fire" and e.get("roi")]
    if not priced:
        return None
    last = priced[-1]
    return {"rule": last["rule"], "start": last["start"], "file": str(path), **last["roi"]}


def _recovery(out: Path, against: Path, registry: Registry, eval_settings, gate_settings):
    """Candidate and ``against`` scored on the gates' comparison set: points recovered."""
    from mangaassist.evaluation.artifacts import (
        load_model_run,
        read_calibration,
        read_labelled,
        run_rare_classes,
    )
    from mangaassist.evaluation.evaluate import evaluate_run
    from mangaassist.release.promotion import comparison_set, scores_of
    from mangaassist.retrain.recovery import points_recovered

    data, origin = comparison_set(out, registry, gate_settings)
    cand_run = load_model_run(out)
    examples = read_labelled(data, cand_run.labels, out)
    rare = run_rare_classes(out)
    kw = {"rare": rare, "settings": eval_settings, "time_it": False}
    cand = scores_of(evaluate_run(cand_run, examples, calibration=read_calibration(out), **kw))
    champ_run = load_model_run(against)
    champ_ev = evaluate_run(champ_run, examples, calibration=read_calibration(against), **kw)
    champ = scores_of(champ_ev, labels_to=cand_run.labels)
    sig = gate_settings.significance
    rec = points_recovered(
        cand.y_true,
        cand.y_pred,
        champ.y_pred,
        cand.n_classes,
        rare=[cand_run.labels.index(r) for r in rare],
        n_boot=sig.n_boot,
        seed=sig.seed,
        alpha=sig.alpha,
    )
    return rec, {"file": str(data), "source": origin, "n": len(examples)}


def retrain(
    labels: str | Path,
    *,
    registry: str | Path | None = None,
    champion: str | None = None,
    out: str | Path | None = None,
    overrides: Sequence[str] = (),
    config: str | Path | None = None,
    gates: str | Path | None = None,
    register: str | None = None,
    monitor: str | Path | None = None,
    log: Log = _print,
) -> dict[str, Any]:
    """Run the five steps of the module docstring; returns the report (``OUT/retrain/report.json``).

    Args:
        labels: the labelled file (active-learn's JSONL or CSV, ``label`` filled).
        registry: the registry folder (default ``$MANGAASSIST_REGISTRY``, else ``./registry``).
        champion: the model to start from; default the registry's champion. The gates always
            compare with the registry's champion (the model serving now), when there is one.
        out: the candidate's run directory (must not hold files); default ``out_root/<time>``.
        overrides: ``key=value`` over the champion's config (``trainer.max_epochs=3``).
        config: retrain settings YAML over ``conf/retrain/default.yaml``.
        gates: gate settings YAML (default: the settings' ``gates``, else conf/gates).
        register: ``pass`` or ``always`` (default: the settings').
        monitor: a ``monitor.json`` (or its folder) whose priced alert asked for this retrain:
            its estimate is printed beside what the retrain cost and recovered.

    Raises:
        UserError: a missing registry, champion or labels file, a bad label, an override
            naming no key, an ``out`` that holds files; checked before any training.
    """
    t0 = time.perf_counter()
    settings = load_retrain_settings(config)
    register = register or settings.register
    reg_root = Path(registry) if registry is not None else Registry().root
    if not reg_root.is_dir():
        raise UserError(
            f"no registry at {reg_root}: pass --registry DIR (or set $MANGAASSIST_REGISTRY) to "
            "the registry that holds the champion"
        )
    reg = Registry(reg_root)
    if not Path(labels).is_file():
        raise UserError(
            f"{labels}: no such labels file; select messages with `mangaassist active-learn "
            "LOGS --out to_label.jsonl` and fill its label column"
        )
    gates = gates or settings.gates
    gate_settings = load_gate_settings(Path(gates) if gates else None)
    estimate = monitor_estimate(monitor) if monitor is not None else None
    champ = resolve_champion(reg, champion)
    out = Path(out) if out is not None else default_out(settings)
    if out.exists() and any(out.iterdir()):
        raise UserError(f"--out {out} already holds files; pass a new folder for the candidate")
    cfg = candidate_config(champ, out / FOLDER / "train.jsonl", out, overrides)
    against_name = reg.champion()
    log(
        f"[RETRAIN] step=1/5 merge labels={labels} champion={champ.name} "
        f"gated_against={against_name or 'none (floors only)'} out={out}"
    )
    if against_name is not None and reg.path(against_name).resolve() != champ.path.resolve():
        log(
            f'[RETRAIN] note="starting from {champ.name}; the gates compare with the registry '
            f'champion {against_name}"'
        )
    got, _, record = prepare(labels, champ, reg, out, gate_settings, log)

    log(f"[RETRAIN] step=2/5 train config={champ.path / 'config.yaml'} overrides={list(overrides)}")
    from mangaassist.evaluation import post_train
    from mangaassist.training.train import train

    metrics = train(cfg)
    log(f"[RETRAIN] step=3/5 evaluate run={out}")
    post_train(out, cfg)

    log(f"[RETRAIN] step=4/5 gate candidate={out} against={against_name or 'none'}")
    from mangaassist.release.gates import format_decision
    from mangaassist.release.promotion import gate_candidate
    from mangaassist.retrain.recovery import recovered_line

    eval_settings = load_eval_settings(cfg)
    decision = gate_candidate(str(out), reg, eval_settings, gate_settings, log=log)
    for line in format_decision(decision):
        log(line)
    against = reg.path(against_name) if against_name is not None else champ.path
    recovered, gate_set = _recovery(out, against, reg, eval_settings, gate_settings)
    log(recovered_line(recovered, gate_set["n"], gate_set["source"]))
    costs = settings.cost
    # Every row shown to a labeller was paid for, dropped or not (as the estimate's budget is).
    cost = realised_cost(costs, got.rows, float(metrics.get("train_minutes") or 0.0))
    wall = (time.perf_counter() - t0) / 60
    log(
        f"[RETRAIN_COST] labels={cost['labels']} x {costs.money(costs.price_per_label)} + "
        f"{cost['training_minutes']:.2f} train min x {costs.money(costs.instance_price_per_hour)}"
        f"/h = {costs.money(cost['cost'])} wall_min={wall:.2f}"
    )
    if monitor is not None and estimate is None:
        log(f'[RETRAIN_ROI] note="{monitor} holds no priced alert (roi.rules) to compare with"')
    if estimate is not None:
        lost = estimate.get("points_lost")
        log(
            f"[RETRAIN_ROI] estimated_cost={costs.money(estimate['cost'])} "
            f"realised_cost={costs.money(cost['cost'])} "
            f"points_lost={'n/a' if lost is None else f'{lost:.2f}'}({estimate.get('live')}) "
            f"acc_recovered={recovered['acc']['points']:+.2f}pp "  # type: ignore[index]
            f'alert={estimate["rule"]}@{estimate["start"]} note="lost: live traffic against '
            'the baseline; recovered: the gate set, candidate against champion"'
        )

    report: dict[str, Any] = {
        "labels": str(labels),
        "champion": champ.name,
        "gated_against": against_name,
        "candidate": str(out),
        "data_version": record["data_version"],
        "parent_data_version": record["parent"]["data_version"],
        "counts": record["counts"],
        "decision": decision.as_dict(),
        "gate_set": gate_set,
        "recovered": recovered,
        "cost": cost,
        "estimate": estimate,
        "wall_minutes": round(wall, 3),
        "registered": None,
    }
    version = None
    if decision.promote or register == "always":
        log(f"[RETRAIN] step=5/5 register (for shadow, not promoted) root={reg.root}")
        from mangaassist.release.model_card import render_model_card

        def extra(v: str, folder: Path) -> dict[str, str]:
            done = {**report, "registered": v}
            return {
                "MODEL_CARD.md": render_model_card(v, folder),
                f"{FOLDER}/{VERSION_FILE}": json.dumps(record, indent=1, ensure_ascii=False),
                f"{FOLDER}/{REPORT_FILE}": json.dumps(done, indent=1, ensure_ascii=False),
            }

        version = reg.register(out, extra_files=extra)
        report["registered"] = version
        log(f"[REGISTRY] event=register version={version} source={out} root={reg.root}")
    write_json(out / FOLDER / REPORT_FILE, report, ensure_ascii=False)
    if version is not None:
        log(
            f"[RETRAIN] candidate={version} status=registered promoted=no "
            f"data_version={record['data_version'][:19]} "
            f'next="mangaassist serve --registry {reg.root} --shadow {version}; mangaassist '
            f"shadow-report LOGS --json shadow.json; mangaassist gate {version} --root "
            f'{reg.root} --shadow-report shadow.json --promote"'
        )
    else:
        reason = decision.reason.replace('"', "'")
        log(
            f'[RETRAIN] candidate=none status=rejected reason="{reason}" run={out} '
            f'note="not registered; register it anyway with --register always, or '
            f'mangaassist registry register {out}"'
        )
    return report
