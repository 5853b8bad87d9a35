"""A teacher's logits for distillation: computed once over the training split, cached, checked.

``distill.teacher=RUN_DIR`` names a finished run directory. Its model is loaded the safe way
(:func:`~mangaassist.training.run_dir.load_run`: ``weights_only=True``), run once over the
student's training messages, and its raw logits (before the calibration temperature;
``distill.temperature`` softens them instead) are written to a cache. Training looks rows up
per batch (:meth:`IntentDataModule.set_teacher_logits`); the teacher never runs per epoch.

Cache format: one safetensors file (``distill.cache``; default
``<run dir>/distill/teacher_logits.safetensors``; point several students at one file to share
it) with two tensors and string metadata:

- ``keys`` (N, 32) uint8: sha256 of each distinct normalised message (UTF-8), so the cache is
  independent of the split's order and serves any run whose training messages it holds;
- ``logits`` (N, C) float32: the teacher's logits for that message, in ``labels`` order;
- metadata: ``format``, ``teacher`` (its path), ``checkpoint_sha256`` (of its best.ckpt),
  ``labels`` (JSON), ``max_length`` (the teacher's truncation), ``text_preprocess`` (what
  the teacher's tokenizer saw: ``none`` or ``romaji``; a cache without it is ``none``),
  ``truncation`` (what a long message kept, in words; a cache without it is ``first``), ``n``.

Keys are of the normalised message whatever either run's ``text_preprocess``: the teacher
pass applies the teacher's own preprocessing (:meth:`LoadedRun.predict_logits`), so a
``romaji`` student can learn from a ``none`` teacher and the reverse.

A cache is used only if its format, teacher checkpoint hash, labels, max_length,
text_preprocess and truncation match the teacher now, and it holds every training message;
otherwise it is refused with what differs (stale: another teacher, a recalibrated
checkpoint, another training split), never silently mixed. Teacher and student must share
``labels.json`` order, or the teacher is refused with the difference named.
"""

from __future__ import annotations

import hashlib
import json
import time
from collections.abc import Sequence
from pathlib import Path
from typing import TYPE_CHECKING

import numpy as np

from mangaassist.atomic import file_sha256
from mangaassist.checkpoint import CHECKPOINT
from mangaassist.data.normalize import normalize_text
from mangaassist.data.truncation import Truncation
from mangaassist.errors import UserError

if TYPE_CHECKING:
    import torch

    from mangaassist.data.datamodule import IntentDataModule

CACHE_FORMAT = "1"
DEFAULT_CACHE = "distill/teacher_logits.safetensors"  # inside the student's run directory


def text_key(text: str) -> bytes:
    """sha256 (32 bytes) of the normalised message: the cache's key for one text."""
    return hashlib.sha256(normalize_text(text).encode("utf-8")).digest()


def check_same_labels(teacher: Sequence[str], student: Sequence[str], where: str = "") -> None:
    """Refuse a teacher whose labels (or their order) differ from the student's.

    Raises:
        UserError: naming the labels only one side has, or the first position where the
            order differs.
    """
    teacher, student = list(teacher), list(student)
    if teacher == student:
        return
    only_t = [x for x in teacher if x not in student]
    only_s = [x for x in student if x not in teacher]
    if only_t or only_s:
        diff = f"only the teacher has {only_t}; only the student's data has {only_s}"
    else:
        i = next(i for i, (a, b) in enumerate(zip(teacher, student, strict=True)) if a != b)
        diff = (
            f"same labels in another order: at index {i} the teacher has '{teacher[i]}', "
            f"the student '{student[i]}'"
        )
    raise UserError(
        f"distill.teacher={where}: its labels.json differs from the student's labels ({diff}); "
        "the logits would be matched to the wrong classes. Use a teacher trained on the same "
        "label set, in the same order"
    )


def teacher_identity(teacher_dir: str | Path) -> dict[str, str]:
    """What a cache must match: checkpoint hash, labels and truncation of the teacher now.

    Raises:
        UserError: ``teacher_dir`` is not a complete run directory.
    """
    from omegaconf import OmegaConf

    from mangaassist.training.run_dir import require_run_files, text_preprocess_of, truncation_of

    teacher_dir = Path(teacher_dir)
    require_run_files(teacher_dir)
    cfg = OmegaConf.load(teacher_dir / "config.yaml")
    max_length = int(cfg.model.max_length)
    return {
        "format": CACHE_FORMAT,
        "teacher": str(teacher_dir),
        "checkpoint_sha256": file_sha256(teacher_dir / CHECKPOINT),
        "labels": json.dumps(json.loads((teacher_dir / "labels.json").read_text())),
        "max_length": str(max_length),
        "text_preprocess": text_preprocess_of(cfg),
        "truncation": truncation_of(cfg).describe(max_length),
    }


def compute_teacher_logits(
    teacher_dir: str | Path, texts: Sequence[str], batch_size: int = 64
) -> np.ndarray:
    """One pass of the teacher over ``texts``: raw logits (N, C) in the order of ``texts``.

    The teacher is loaded with :func:`~mangaassist.training.run_dir.load_run` (weights only,
    eval mode: no dropout). Texts are batched by length (less padding), then put back in order.
    """
    import torch

    from mangaassist.training.run_dir import load_run

    run = load_run(teacher_dir)
    order = sorted(range(len(texts)), key=lambda i: len(texts[i]))
    with torch.inference_mode():
        sorted_logits = run.predict_logits([texts[i] for i in order], batch_size=batch_size)
    out = np.empty_like(sorted_logits)
    out[order] = sorted_logits  # row order[j] of the output is sorted row j
    return out.astype(np.float32)


def _stale(path: Path, reason: str) -> UserError:
    return UserError(
        f"distill.cache {path} is stale: {reason}. Delete it (the teacher runs once again) or "
        "set distill.cache to another file"
    )


def read_cache(path: Path, identity: dict[str, str], keys: Sequence[bytes]) -> np.ndarray:
    """The cached logits for ``keys`` (N, C), in their order, after checking the cache.

    Raises:
        UserError: the cache was written for another teacher, checkpoint, labels, truncation
            or format, or lacks some of ``keys`` (another training split).
    """
    from safetensors import safe_open

    with safe_open(str(path), framework="np") as f:
        meta = f.metadata() or {}
        stored_keys, logits = f.get_tensor("keys"), f.get_tensor("logits")
    meta.setdefault("text_preprocess", "none")  # caches written before the options
    if "truncation" not in meta and meta.get("max_length", "").isdigit():
        meta["truncation"] = Truncation().describe(int(meta["max_length"]))
    for field in (
        "format",
        "checkpoint_sha256",
        "labels",
        "max_length",
        "text_preprocess",
        "truncation",
    ):
        if meta.get(field) != identity[field]:
            raise _stale(
                path,
                f"it was computed with {field}={meta.get(field)!r} (teacher "
                f"{meta.get('teacher')}), the teacher now has {field}={identity[field]!r}",
            )
    row = {bytes(k.tobytes()): i for i, k in enumerate(stored_keys)}
    missing = sum(k not in row for k in keys)
    if missing:
        raise _stale(
            path,
            f"{missing} of the {len(keys)} training messages are not in it (it was computed "
            "for another training split)",
        )
    return logits[[row[k] for k in keys]]


def write_cache(
    path: Path, identity: dict[str, str], keys: Sequence[bytes], logits: np.ndarray
) -> None:
    """Write distinct ``keys`` and their ``logits`` (N, C) atomically, with ``identity``."""
    from safetensors.numpy import save_file

    from mangaassist.atomic import replacing

    first = {}
    for i, k in enumerate(keys):  # duplicate messages share one row
        first.setdefault(k, i)
    rows = list(first.values())
    tensors = {
        "keys": np.frombuffer(b"".join(first), dtype=np.uint8).reshape(-1, 32).copy(),
        "logits": np.ascontiguousarray(logits[rows], dtype=np.float32),
    }
    with replacing(path) as tmp:
        save_file(tensors, str(tmp), metadata={**identity, "n": str(len(rows))})


def teacher_logits(
    teacher_dir: str | Path,
    texts: Sequence[str],
    labels: Sequence[str],
    cache: str | Path,
    batch_size: int = 64,
) -> tuple[np.ndarray, str]:
    """The teacher's logits for ``texts`` (N, C): from ``cache`` if valid, else one pass.

    Args:
        teacher_dir: the teacher's run directory.
        texts: the student's training messages (normalised or not: keys normalise).
        labels: the student's labels, in index order; the teacher's must be the same.
        cache: the cache file (written when absent).
        batch_size: the teacher pass's batch size.

    Returns:
        ``(logits, source)`` with source ``cache`` or ``computed``.

    Raises:
        UserError: the teacher's labels differ, or the cache is stale.
    """
    teacher_dir, cache = Path(teacher_dir), Path(cache)
    identity = teacher_identity(teacher_dir)
    check_same_labels(json.loads(identity["labels"]), labels, str(teacher_dir))
    keys = [text_key(t) for t in texts]
    if cache.is_file():
        return read_cache(cache, identity, keys), "cache"
    distinct: dict[bytes, int] = {}
    for i, k in enumerate(keys):
        distinct.setdefault(k, i)
    firsts = list(distinct.values())
    computed = compute_teacher_logits(teacher_dir, [texts[i] for i in firsts], batch_size)
    write_cache(cache, identity, [keys[i] for i in firsts], computed)
    row = {k: j for j, k in enumerate(distinct)}
    return computed[[row[k] for k in keys]], "computed"


def seen_by_teacher(teacher_dir: str | Path, texts: Sequence[str]) -> int | None:
    """How many of ``texts`` the teacher trained on (its ``data/train.jsonl``); None: unknown.

    A teacher trained on another split (another seed, another corpus) may have trained on
    the student's validation or test messages; its soft labels then leak them, and the
    student's validation figures (which rank candidates) are biased upward.
    """
    from mangaassist.data.schema import read_examples

    path = Path(teacher_dir) / "data" / "train.jsonl"
    if not path.is_file():
        return None
    trained = {text_key(e.text) for e in read_examples(path)}
    return sum(text_key(t) in trained for t in texts)


def attach_teacher(
    dm: IntentDataModule,
    teacher: str | Path,
    cache: str | Path | None,
    run_dir: str | Path,
    batch_size: int = 64,
) -> torch.Tensor:
    """Give ``dm`` its teacher's logits (cache or one pass) and print a ``[DISTILL]`` line.

    The line also says how many of the student's validation and test messages the teacher
    trained on (:func:`seen_by_teacher`), with a warning when any.

    Args:
        dm: the student's DataModule (its training split and labels).
        teacher: the teacher's run directory.
        cache: the cache file; None is ``run_dir / DEFAULT_CACHE``.
        run_dir: the student's run directory.
        batch_size: the teacher pass's batch size.

    Returns:
        The (N_train, C) logits attached.
    """
    import torch

    start = time.perf_counter()
    path = Path(cache) if cache else Path(run_dir) / DEFAULT_CACHE
    logits, source = teacher_logits(teacher, dm.train_texts(), dm.labels, path, batch_size)
    table = torch.from_numpy(np.ascontiguousarray(logits))
    dm.set_teacher_logits(table)
    held_out = [e.text for split in ("val", "test") for e in dm.splits.get(split) or []]
    seen = seen_by_teacher(teacher, held_out)
    print(
        f"[DISTILL] teacher={teacher} cache={path} source={source} n={len(table)} "
        f"teacher_saw_val_test={'unknown' if seen is None else seen} "
        f"seconds={time.perf_counter() - start:.1f}",
        flush=True,
    )
    if seen:
        print(
            f"[DISTILL] warning=\"the teacher trained on {seen} of the student's {len(held_out)} "
            "validation and test messages (another seed or corpus?): its soft labels leak them "
            "and bias the student's validation figures upward; use a teacher trained on this "
            'split (the same data and seed)"',
            flush=True,
        )
    return table
