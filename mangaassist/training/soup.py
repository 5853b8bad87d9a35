"""Weight soups: one model whose weights are the average of several fine-tuned runs.

Runs fine-tuned from the same pre-trained encoder (and the same head initialisation) with
different batch orders tend to land in one basin of the loss, where the average of their
weights is itself a good model, often better than each run (Wortsman et al. 2022, "Model
soups"). Unlike an ensemble, the soup costs one model at serving time: same size, same
latency, the same export path. Whether it helps a recipe is a question for a validation
split, not for faith: average runs trained on one carved split and score the soup there.

The soup is written as an ordinary run directory (the first ingredient's config, labels,
tokenizer and data splits, and ``checkpoints/best.ckpt`` with the averaged ``state_dict``),
plus ``soup.json`` naming the ingredients and their checkpoint hashes, so evaluation, export,
the registry and the gates take it like any run.

Example:
    >>> soup_runs(["outputs/o0", "outputs/o1", "outputs/o2"], "outputs/soup")  # doctest: +SKIP
    PosixPath('outputs/soup')
"""

from __future__ import annotations

import shutil
from collections.abc import Sequence
from pathlib import Path

import torch
from omegaconf import OmegaConf

from mangaassist.atomic import write_json
from mangaassist.checkpoint import load_checkpoint
from mangaassist.errors import UserError
from mangaassist.inference.bundle import file_sha256
from mangaassist.training.run_dir import require_run_files, text_preprocess_of, truncation_of

CHECKPOINT = "checkpoints/best.ckpt"
SOUP_FILE = "soup.json"
# Byte-identical in every ingredient: the same classes, architecture and data splits.
MUST_MATCH = ("labels.json", "backbone/config.json", "data/val.jsonl", "data/test.jsonl")
COPIED = ("config.yaml", "labels.json", "class_counts.json", "backbone", "tokenizer", "data")


def _check_ingredients(run_dirs: list[Path]) -> None:
    if len(run_dirs) < 2:
        raise UserError(f"a soup needs at least 2 runs, got {len(run_dirs)}")
    for run_dir in run_dirs:
        require_run_files(run_dir, CHECKPOINT)
    first = run_dirs[0]
    for name in MUST_MATCH:
        ref = first / name
        for other in run_dirs[1:]:
            here = other / name
            same = ref.is_file() == here.is_file() and (
                not ref.is_file() or ref.read_bytes() == here.read_bytes()
            )
            if not same:
                raise UserError(
                    f"{other / name} differs from {ref} (or exists in only one): soup "
                    "ingredients must share classes, architecture and data splits, else the "
                    "soup would be validated on messages an ingredient trained on. Train them "
                    "with the same data seed and vary data.module.order_seed instead"
                )
    # Averaged weights answer one way of writing the text: the soup keeps the first config.
    configs = {str(r): OmegaConf.load(r / "config.yaml") for r in run_dirs}
    for key, read, why in (
        ("text_preprocess", text_preprocess_of, "their weights read differently written text"),
        ("truncation", truncation_of, "each learned from other parts of long messages"),
    ):
        seen = {r: read(c) for r, c in configs.items()}
        if len(set(seen.values())) > 1:
            raise UserError(
                f"soup ingredients differ in data.module.{key} ({seen}); {why}: train them all "
                "with one setting"
            )


def average_state_dicts(states: Sequence[dict[str, torch.Tensor]]) -> dict[str, torch.Tensor]:
    """The element-wise mean of floating-point tensors; other tensors must be equal.

    Args:
        states: state dicts with the same keys and shapes.

    Returns:
        A new state dict: floats averaged in float64 and cast back to their dtype; integer
        buffers (token type ids, position ids) copied from the first.

    Raises:
        UserError: keys, shapes or integer buffers differ (not the same architecture).

    Example:
        >>> a, b = {"w": torch.tensor([1.0, 3.0])}, {"w": torch.tensor([3.0, 5.0])}
        >>> average_state_dicts([a, b])["w"]
        tensor([2., 4.])
    """
    keys = list(states[0])
    for i, state in enumerate(states[1:], start=1):
        if set(state) != set(keys):
            odd = sorted(set(state) ^ set(keys))[:5]
            raise UserError(f"ingredient {i} has other weights than ingredient 0: {odd}")
    out: dict[str, torch.Tensor] = {}
    for key in keys:
        tensors = [s[key] for s in states]
        if any(t.shape != tensors[0].shape for t in tensors):
            raise UserError(f"'{key}' has shapes {[tuple(t.shape) for t in tensors]}")
        if tensors[0].is_floating_point():
            mean = torch.stack([t.double() for t in tensors]).mean(0)
            out[key] = mean.to(tensors[0].dtype)
        elif all(torch.equal(t, tensors[0]) for t in tensors):
            out[key] = tensors[0].clone()
        else:
            raise UserError(f"'{key}' is not a float tensor and differs between ingredients")
    return out


def soup_runs(run_dirs: Sequence[str | Path], out: str | Path) -> Path:
    """Average the weights of finished runs into a new run directory.

    The temperature buffer is reset to 1.0: each ingredient's calibration describes that
    ingredient, so the soup is calibrated anew (``mangaassist post-train OUT``) on its
    validation split. The folder is built beside ``out`` and moved in place at the end, so a
    failure halfway leaves no half-written soup.

    Args:
        run_dirs: two or more run directories from the same data splits and architecture.
        out: the new run directory; must not exist.

    Returns:
        ``out`` as a Path.

    Raises:
        UserError: fewer than two runs, an incomplete or mismatched run, or ``out`` exists.
    """
    runs = [Path(r) for r in run_dirs]
    out = Path(out)
    if out.exists():
        raise UserError(f"{out} exists; choose a new folder for the soup (or remove it)")
    _check_ingredients(runs)
    states = []
    for run_dir in runs:
        ckpt = load_checkpoint(run_dir / CHECKPOINT)
        states.append(ckpt.get("state_dict", ckpt))
    state = average_state_dicts(states)
    for key in state:
        if key == "temperature" or key.endswith(".temperature"):
            state[key] = torch.ones_like(state[key])

    tmp = out.with_name(f".{out.name}.tmp")
    shutil.rmtree(tmp, ignore_errors=True)
    tmp.mkdir(parents=True)
    for name in COPIED:
        src = runs[0] / name
        if src.is_dir():
            shutil.copytree(src, tmp / name)
        elif src.is_file():
            shutil.copy2(src, tmp / name)
    (tmp / "checkpoints").mkdir()
    torch.save({"state_dict": state}, tmp / CHECKPOINT)
    manifest = {
        "method": "uniform",
        "ingredients": [
            {"run_dir": str(r.resolve()), "checkpoint_sha256": file_sha256(r / CHECKPOINT)}
            for r in runs
        ],
        "temperature": "reset to 1.0; calibrate the soup on its own validation split",
    }
    write_json(tmp / SOUP_FILE, manifest)
    tmp.rename(out)
    return out
