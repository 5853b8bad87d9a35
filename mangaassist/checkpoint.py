"""Read a checkpoint without running code from it, and convert an old one once.

``torch.load(..., weights_only=False)`` unpickles arbitrary objects: a checkpoint from a
shared registry or someone else's run directory could run code on load. Every load here is
``weights_only=True`` (tensors, containers and plain values only), which is what a Lightning
``best.ckpt`` from this framework holds. A checkpoint that needs more (written by an older
version, or tampered with) is refused with the one command that rewrites a trusted one:
``mangaassist convert-run RUN_DIR``.

Also the one list of files a run directory needs to rebuild its model
(:data:`MODEL_FILES`, checked by :func:`require_model_files`), shared by training's
``load_run`` and evaluation's up-front check.

torch is imported inside the functions, so importing this module is free.
"""

from __future__ import annotations

import pickle
from pathlib import Path
from typing import Any

from mangaassist.atomic import replacing
from mangaassist.errors import UserError

CHECKPOINT = "checkpoints/best.ckpt"
# Files the model needs: every stage that loads a run checks this list, naming all gaps at once.
MODEL_FILES = ("config.yaml", "labels.json", "backbone/config.json", "tokenizer", CHECKPOINT)
# What a converted checkpoint keeps: the weights (and the raw weights of weight averaging).
KEPT = ("state_dict", "current_model_state", "epoch", "global_step", "pytorch-lightning_version")


def require_model_files(
    run_dir: str | Path, checkpoint: str = CHECKPOINT, extra: tuple[str, ...] = ()
) -> Path:
    """``run_dir`` if it holds every model file (``checkpoint`` in place of best.ckpt, and
    ``extra``), else a UserError naming every gap at once.
    """
    run_dir = Path(run_dir)
    if not run_dir.is_dir():
        raise UserError(f"{run_dir}: no such model directory; pass a training run's folder")
    files = [f for f in MODEL_FILES if f != CHECKPOINT] + [checkpoint, *extra]
    missing = [f for f in files if not (run_dir / f).exists()]
    if missing:
        raise UserError(
            f"{run_dir} is not a complete run directory: missing {missing}. Pass the folder a "
            "training run wrote (outputs/.../<time>: it holds config.yaml, labels.json, "
            "checkpoints/best.ckpt, tokenizer/)"
        )
    return run_dir


def load_checkpoint(path: str | Path, mmap: bool = False) -> dict[str, Any]:
    """The checkpoint at ``path``, loaded on CPU with ``weights_only=True``.

    Args:
        path: a ``.ckpt`` file.
        mmap: map the file instead of reading it (only the tensors touched are read).

    Raises:
        UserError: the file holds Python objects beyond tensors and plain values; the message
            names the file and the conversion command.
    """
    import torch

    path = Path(path)
    try:
        ckpt = torch.load(path, map_location="cpu", weights_only=True, mmap=mmap)
    except pickle.UnpicklingError as err:
        run_dir = path.parent.parent if path.parent.name == "checkpoints" else path.parent
        first = str(err).strip().splitlines()[0][:200]
        raise UserError(
            f"{path}: not loaded, it holds Python objects beyond tensors and plain values "
            f"({first}); loading those can run code. If you trust this run (e.g. written by "
            f"an older mangaassist), rewrite it once with: mangaassist convert-run {run_dir}"
        ) from None
    if not isinstance(ckpt, dict):
        raise UserError(f"{path}: expected a checkpoint dict, got {type(ckpt).__name__}")
    return ckpt


def convert_checkpoint(path: str | Path) -> list[str]:
    """Rewrite a *trusted* checkpoint so that :func:`load_checkpoint` accepts it.

    Unpickles ``path`` in full (this is the one place that does, on the user's word), keeps
    the weights and plain bookkeeping (:data:`KEPT`), checks that the result loads with
    ``weights_only=True``, and swaps it in atomically.

    Returns:
        The top-level keys that were dropped (optimizer state, callbacks, hyper-parameters).

    Raises:
        UserError: the file is missing or has no ``state_dict``.
    """
    import torch

    path = Path(path)
    if not path.is_file():
        raise UserError(f"{path}: no checkpoint here; pass a run directory with {CHECKPOINT}")
    ckpt = torch.load(path, map_location="cpu", weights_only=False)
    if not isinstance(ckpt, dict) or "state_dict" not in ckpt:
        raise UserError(f"{path}: no 'state_dict' in it; not a checkpoint of this framework")
    kept = {k: ckpt[k] for k in KEPT if k in ckpt}
    kept["state_dict"] = {str(k): v for k, v in dict(kept["state_dict"]).items()}
    with replacing(path) as tmp:
        torch.save(kept, tmp)
        torch.load(tmp, map_location="cpu", weights_only=True)  # refuse to install a bad one
    return sorted(set(ckpt) - set(kept))
