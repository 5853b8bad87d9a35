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
import hashlib
import json
from dataclasses import dataclass
from pathlib import Path

from mangaassist.data.schema import INTENTS, Example, read_examples
from mangaassist.errors import UserError

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
    train: str, test: str | None = None, val: str | None = None, labels: list[str] | None = None
) -> Source:
    """A user's own JSONL/CSV files in the example contract.

    Args:
        train: path of the training file.
        test: path of the test file; None carves a test split off train.
        val: path of the validation file; None carves one off train.
        labels: the label set; None takes the labels found in train (sorted). A val/test label
            outside it is an error naming the file and line.
    """
    if train is None:
        raise UserError("data=files needs data.source.train=PATH (and optionally val, test)")
    train_ex = read_examples(train, labels)
    labels = list(labels) if labels else sorted({e.label for e in train_ex})
    val_ex = read_examples(val, labels) if val else None
    test_ex = read_examples(test, labels) if test else []
    return Source(Path(train).stem, labels, train_ex, test_ex, val_ex)


def _generator_hash() -> str:
    """12 hex digits of sha256 over the generator package's .py files (sorted by path)."""
    from mangaassist.data import generator

    digest = hashlib.sha256()
    root = Path(generator.__file__).parent
    for file in sorted(root.rglob("*.py")):
        digest.update(file.relative_to(root).as_posix().encode() + b"\0" + file.read_bytes())
    return digest.hexdigest()[:12]


def mangaassist(
    path: str | None = None,
    n: int = 55_000,
    seed: int = 0,
    label_noise: float = 0.03,
    cache_dir: str = ".cache/mangaassist",
    audit: dict | None = None,
    audit_out: str | None = None,
    max_length: int = 128,
) -> Source:
    """The MangaAssist corpus, audited and cleaned, ready to be split 80/10/10.

    With ``path`` None the seeded generator writes the corpus once into ``cache_dir`` (the same
    seed gives the same bytes, so the cache is only a time saver). The audit runs first and
    its ``[DATA_AUDIT]``/``[DECISION]`` lines decide what cleaning drops: flagged synthetic
    examples when ``filter_synthetic=yes``, contradictory and re-sent duplicates always.

    Args:
        path: a corpus file in the example contract; None generates one.
        n, seed, label_noise: generator settings when ``path`` is None.
        cache_dir: where generated corpora are kept.
        audit: thresholds (``conf/audit/default.yaml``).
        audit_out: folder for ``audit.json`` and plots (the run directory's ``audit/``).
        max_length: token budget for the audit's truncation share.
    """
    from mangaassist.data.audit import audit_file
    from mangaassist.data.cleaning import clean
    from mangaassist.data.generator import write_corpus

    if path is None:
        # The generator's own source is in the key: edit a phrasing bank and the cache misses.
        folder = Path(cache_dir) / f"n{n}-seed{seed}-noise{label_noise}-g{_generator_hash()}"
        corpus = folder / "corpus.jsonl"
        if not corpus.exists():
            write_corpus(folder, n=n, seed=seed, label_noise=label_noise)
    else:
        corpus = Path(path)
    out = Path(audit_out) if audit_out else corpus.parent / "audit"
    report = audit_file(corpus, out_dir=out, max_length=max_length, cfg=audit)
    filter_synthetic = report.decisions["filter_synthetic"]["value"] == "yes"
    flagged = report.flagged_synthetic_ids if filter_synthetic else []
    kept, _ = clean(read_examples(corpus, INTENTS), flagged)
    return Source("mangaassist", list(INTENTS), kept, test=[], val=None)
