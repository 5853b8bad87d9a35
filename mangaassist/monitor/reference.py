"""What live traffic is compared with: the training intent mix, vocabulary, script and lengths.

``--reference`` takes:

* a **run directory** (``outputs/.../<time>``): ``class_counts.json`` (the training split's
  intent counts, the Q of the KL), ``labels.json``, texts from ``data/train.jsonl`` if the run
  kept it, else ``data/val.jsonl`` (vocabulary, Japanese share), ``tokenizer/`` and
  ``config.yaml`` (``model.max_length``) to count the reference texts' tokens as the server does;
* a **registry version**: its folder (``registry/versions/v3``), or ``v3`` / ``champion``
  with ``--registry DIR``; a version keeps the run's ``class_counts.json`` and ``data/val.jsonl``;
* a **bundle** holding ``reference.json``. A bundle has no class counts of its own; write the
  file from the run it was exported from (``mangaassist monitor-reference RUN --out
  BUNDLE/reference.json``; the manifest does not list it, so the bundle still verifies), or pass
  the run directory instead;
* a ``reference.json`` file itself.

``reference.json`` = :func:`build_reference`'s dict: ``labels``, ``class_counts``, ``rare``,
``vocab`` (sorted word tokens), ``jp_share``, ``new_vocab_share``, ``len_mean``, ``len_p95``.
"""

from __future__ import annotations

import contextlib
import json
import re
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

import duckdb
import numpy as np

from mangaassist.errors import UserError
from mangaassist.monitor import textdrift
from mangaassist.monitor.settings import MonitorSettings

REFERENCE_FILE = "reference.json"
_VERSION = re.compile(r"^v\d+$")
HOW = (
    "pass the training run directory (it holds class_counts.json), a registry version, or a "
    "bundle with reference.json (`mangaassist monitor-reference RUN --out BUNDLE/reference.json`)"
)


@dataclass
class Reference:
    """The reference distribution and text figures; ``None`` where the source has none."""

    source: str
    kind: str  # run | registry | bundle | file
    labels: list[str]
    class_counts: dict[str, int]
    rare: list[str]
    texts: int = 0
    text_file: str | None = None
    vocab_size: int | None = None
    jp_share: float | None = None
    new_vocab_share: float | None = None
    len_mean: float | None = None
    len_p95: float | None = None
    notes: list[str] = field(default_factory=list)

    @property
    def shares(self) -> np.ndarray:
        """Q: the reference share of each label, in ``labels`` order."""
        q = np.array([self.class_counts.get(k, 0) for k in self.labels], dtype=float)
        return q / q.sum()

    def summary(self) -> dict[str, Any]:
        return {
            **asdict(self),
            "shares": dict(zip(self.labels, self.shares.round(6).tolist(), strict=True)),
        }


def resolve(arg: str | Path, registry: str | Path | None = None) -> tuple[Path, str]:
    """The folder or file behind ``--reference`` and its kind.

    Raises:
        UserError: nothing there, or a bundle without ``reference.json``.
    """
    p = Path(arg)
    if not p.exists() and registry is not None and (_VERSION.match(str(arg)) or arg == "champion"):
        root = Path(registry)
        version = str(arg)
        if arg == "champion":
            try:
                version = json.loads((root / "champion.json").read_text())["version"]
            except (OSError, ValueError, KeyError) as err:
                raise UserError(f"{root}/champion.json: no champion to monitor ({err})") from None
        p = root / "versions" / version
        if not p.is_dir():
            raise UserError(f"no version {version!r} in registry {root}; {HOW}")
    if p.is_file():
        return p, "file"
    if not p.is_dir():
        raise UserError(f"--reference {arg}: no such file or directory; {HOW}")
    if (p / "class_counts.json").is_file():
        return p, "registry" if (p / "version.json").is_file() else "run"
    if (p / REFERENCE_FILE).is_file():
        return p / REFERENCE_FILE, "bundle"
    if (p / "manifest.json").is_file():
        raise UserError(
            f"{p} is a model bundle: it has no class counts, so it cannot say what the intent "
            f"mix should be. Pass the run directory it was exported from (--reference RUN), or "
            f"write {p / REFERENCE_FILE} with `mangaassist monitor-reference RUN --out "
            f"{p / REFERENCE_FILE}`"
        )
    raise UserError(f"{p}: no class_counts.json or {REFERENCE_FILE}; {HOW}")


def _read_json(path: Path) -> Any:
    try:
        return json.loads(path.read_text(encoding="utf-8"))
    except (OSError, ValueError) as err:
        raise UserError(f"{path}: cannot read it as JSON ({err}); {HOW}") from None


def _counts(obj: Any, where: str) -> dict[str, int]:
    if not isinstance(obj, dict) or not obj:
        raise UserError(f"{where}: expected a non-empty {{label: count}} object")
    bad = {k: v for k, v in obj.items() if isinstance(v, bool) or not isinstance(v, int) or v < 0}
    if bad:
        raise UserError(f"{where}: counts must be integers >= 0, got {bad}")
    if sum(obj.values()) == 0:
        raise UserError(f"{where}: every count is 0; the reference needs examples")
    return dict(obj)


def _rare(counts: dict[str, int], below: float) -> list[str]:
    total = sum(counts.values())  # the training stage's rule: share of the split < below
    return [k for k, n in counts.items() if n / total < below]


def _token_lengths(folder: Path, con: duckdb.DuckDBPyConnection) -> tuple[float, float] | None:
    """Mean and P95 tokens of ``ref_text`` with the run's tokenizer, as the server counts."""
    tok_file = folder / "tokenizer" / "tokenizer.json"
    if not tok_file.is_file():
        return None
    from mangaassist.data.transliterate import CONFIG_KEY, preprocessor
    from mangaassist.inference.tokenize import BatchTokenizer  # tokenizers only, no torch

    max_length, text_preprocess = 128, None
    if (folder / "config.yaml").is_file():
        from omegaconf import OmegaConf

        # An older or hand-made config without model.max_length: keep the serving default.
        # Tokens are counted as the server counts them: after the run's text_preprocess.
        with contextlib.suppress(Exception):
            cfg = OmegaConf.load(folder / "config.yaml")
            text_preprocess = OmegaConf.select(cfg, CONFIG_KEY, default=None)
            max_length = int(cfg.model.max_length)
    texts = [t for (t,) in con.execute("SELECT text FROM ref_text ORDER BY i").fetchall()]
    if not texts:
        return None
    lengths = np.array(
        [
            len(x)
            for x in BatchTokenizer.from_file(
                tok_file, max_length, preprocess=preprocessor(text_preprocess)
            ).encode(texts)
        ]
    )
    return round(float(lengths.mean()), 3), round(float(np.percentile(lengths, 95)), 3)


def load_reference(
    arg: str | Path,
    con: duckdb.DuckDBPyConnection,
    settings: MonitorSettings,
    registry: str | Path | None = None,
) -> Reference:
    """Read the reference and create table ``vocab`` on ``con`` (empty when unknown)."""
    path, kind = resolve(arg, registry)
    if kind in ("file", "bundle"):
        obj = _read_json(path)
        if not isinstance(obj, dict):
            raise UserError(f"{path}: expected a JSON object (see `mangaassist monitor-reference`)")
        counts = _counts(obj.get("class_counts"), f"{path}: class_counts")
        labels = list(obj.get("labels") or counts)
        ref = Reference(str(path), kind, labels, counts, _rare(counts, settings.rare_below))
        ref.vocab_size = textdrift.vocab_from_tokens(con, list(obj.get("vocab") or [])) or None
        for key in ("jp_share", "new_vocab_share", "len_mean", "len_p95"):
            setattr(ref, key, obj.get(key))
        ref.texts = int(obj.get("texts") or 0)
        return ref
    counts = _counts(_read_json(path / "class_counts.json"), f"{path}/class_counts.json")
    labels = _read_json(path / "labels.json") if (path / "labels.json").is_file() else list(counts)
    if not isinstance(labels, list) or set(labels) != set(counts):
        raise UserError(f"{path}: labels.json and class_counts.json name different labels")
    ref = Reference(str(path), kind, labels, counts, _rare(counts, settings.rare_below))
    split = next(
        (path / "data" / f for f in ("train.jsonl", "val.jsonl") if (path / "data" / f).is_file()),
        None,
    )
    if split is None:
        textdrift.vocab_from_tokens(con, [])
        ref.notes.append(f"{path}/data has no train.jsonl or val.jsonl: no reference texts")
        return ref
    ref.text_file = str(split)
    ref.texts = textdrift.load_reference_texts(con, split, settings.vocab_max_examples)
    for key, value in textdrift.reference_text_stats(con).items():
        setattr(ref, key, value)
    lengths = _token_lengths(path, con)
    if lengths is None:
        ref.notes.append(f"{path} has no tokenizer/tokenizer.json: no reference token lengths")
    else:
        ref.len_mean, ref.len_p95 = lengths
    return ref


def build_reference(run_dir: str | Path, settings: MonitorSettings) -> dict[str, Any]:
    """The ``reference.json`` of a run directory (or registry version), for a bundle."""
    from mangaassist.monitor.logs import connect

    con = connect(settings.engine)
    ref = load_reference(run_dir, con, settings)
    if ref.kind not in ("run", "registry"):
        raise UserError(f"{run_dir}: pass a run directory or a registry version folder")
    out = {k: v for k, v in asdict(ref).items() if k not in ("kind", "notes")}
    return {**out, "vocab": textdrift.vocab_list(con)}
