"""LightningDataModule: normalise, split, tokenise once, and batch by length.

Chat messages are short (BANKING77 median ~11 WordPiece tokens), so padding every batch to
128 tokens would spend ~8x the compute on padding. Batches are padded to their longest
message and built from messages of similar length: shuffle, cut into chunks of
``50 * batch_size``, sort each chunk by length, slice into batches, shuffle the batches.

The batch sampler shards batches over DDP ranks itself (same shuffle on every rank, then
``batches[rank::world]``), so Lightning's DistributedSampler, which would reshuffle the indices
and undo the length grouping, stays off (``use_distributed_sampler: false``).
"""

from __future__ import annotations

from collections import Counter
from collections.abc import Iterator
from pathlib import Path

import lightning as L
import torch
import torch.distributed as dist
from torch.utils.data import DataLoader, Sampler
from transformers import PreTrainedTokenizerBase

from mangaassist.atomic import write_json, write_text
from mangaassist.data.normalize import normalize_text
from mangaassist.data.schema import Example, sha256_examples, write_examples
from mangaassist.data.sources import Source
from mangaassist.data.splits import format_split_report, split_examples, split_report
from mangaassist.data.transliterate import check_text_preprocess, preprocessor
from mangaassist.data.truncation import DEFAULT_HEAD_TOKENS, check_truncation
from mangaassist.errors import UserError

CHUNK_BATCHES = 50  # batches per sorted chunk: big enough to group lengths, small enough to mix
RARE_SHARE_OF_EVEN = 0.5  # rare_below=None: a class under half of 1/num_classes is rare


def _rank_world() -> tuple[int, int]:
    if dist.is_available() and dist.is_initialized():
        return dist.get_rank(), dist.get_world_size()
    return 0, 1


def _check_secondary(splits: dict[str, list[Example]], labels: list[str], name: str) -> None:
    """Refuse secondary intents the labels lack, or a training split with none at all."""
    known = set(labels)
    unknown = Counter(
        s for split in splits.values() for e in split for s in e.secondary_intents if s not in known
    )
    if unknown:
        raise UserError(
            f"secondary_intents {dict(unknown.most_common(5))} in '{name}' are not labels "
            f"({labels}); fix those examples or train without the head (secondary.weight=0)"
        )
    if not any(e.secondary_intents for e in splits["train"]):
        raise UserError(
            f"secondary.weight > 0 but no training example of '{name}' has secondary_intents, "
            "so the secondary head would learn nothing; use data that records them "
            "(data=mangaassist does) or secondary.weight=0"
        )


class LengthGroupedBatchSampler(Sampler[list[int]]):
    """Batches of indices with similar lengths, reshuffled each epoch, sharded over DDP ranks.

    Args:
        lengths: token count of each example.
        batch_size: examples per batch.
        shuffle: training order (random, length-grouped) or evaluation order (longest first).
        weights: per-example sampling weights; given, an epoch draws ``len(lengths)`` examples
            with replacement in proportion to them (class-balanced oversampling).
        seed: base seed; epoch ``e`` uses ``seed + e`` on every rank.
    """

    def __init__(
        self,
        lengths: list[int],
        batch_size: int,
        shuffle: bool = True,
        weights: list[float] | None = None,
        seed: int = 0,
    ) -> None:
        self.lengths = torch.as_tensor(lengths)
        self.batch_size = batch_size
        self.shuffle = shuffle
        self.weights = None if weights is None else torch.as_tensor(weights, dtype=torch.double)
        self.seed = seed
        self.epoch = 0

    def set_epoch(self, epoch: int) -> None:
        """Called by Lightning at each epoch start, so each epoch has its own order."""
        self.epoch = epoch

    def _all_batches(self) -> list[list[int]]:
        n, bs = len(self.lengths), self.batch_size
        g = torch.Generator().manual_seed(self.seed + self.epoch)
        if self.weights is not None:
            idx = torch.multinomial(self.weights, n, replacement=True, generator=g)
        else:
            idx = torch.randperm(n, generator=g)
        batches = []
        for start in range(0, n, bs * CHUNK_BATCHES):
            chunk = idx[start : start + bs * CHUNK_BATCHES]
            chunk = chunk[torch.argsort(self.lengths[chunk], descending=True, stable=True)].tolist()
            batches += [chunk[i : i + bs] for i in range(0, len(chunk), bs)]
        return [batches[i] for i in torch.randperm(len(batches), generator=g).tolist()]

    def _mine(self) -> list[list[int]]:
        rank, world = _rank_world()
        if not self.shuffle:  # evaluation: every example once over all ranks, longest first
            order = torch.argsort(self.lengths, descending=True, stable=True).tolist()[rank::world]
            return [order[i : i + self.batch_size] for i in range(0, len(order), self.batch_size)]
        batches = self._all_batches()  # same on every rank: same seed and epoch
        batches = batches[: len(batches) // world * world]  # DDP: equal steps on every rank
        return batches[rank::world]

    def __iter__(self) -> Iterator[list[int]]:
        yield from self._mine()

    def __len__(self) -> int:
        rank, world = _rank_world()
        if not self.shuffle:
            return -(-len(range(rank, len(self.lengths), world)) // self.batch_size)
        return -(-len(self.lengths) // self.batch_size) // world


class IntentDataModule(L.LightningDataModule):
    """Examples -> tokenised, length-grouped batches ``{input_ids, attention_mask, labels}``.

    Args:
        source: where the examples come from (:mod:`mangaassist.data.sources`).
        tokenizer: the backbone's tokenizer.
        name: dataset name, for logs and run names.
        batch_size: training batch size (32).
        eval_batch_size: validation/test batch size (no gradients, so larger).
        max_length: truncation in tokens (128).
        val_fraction: carved from train when the source has no validation split.
        test_fraction: carved from train when the source has no test split.
        sampler: None, or ``balanced`` to draw each class equally often (oversampling).
        rare_below: classes below this share of train are rare (their recall is watched);
            None: half an even share, ``0.5 / len(labels)`` (5% with 10 classes, 0.65% with
            77), so "rare" means the same for any number of classes.
        seed: for the carving and the batch order.
        order_seed: the batch order alone, when it should vary while the carving stays (the
            ingredients of a weight soup are scored on one validation split); None: ``seed``.
        refit: train on train + val once the settings are chosen (the usual last step of
            tuning on a carved validation split). Validation is still scored each epoch but
            on seen data, so pick the checkpoint by epoch count (``monitor: null``), and
            ``val.jsonl`` is not written, so no temperature is fitted on training data.
        secondary: every batch (train, val, test) also carries ``secondary_targets`` (B, C),
            the multi-hot of each example's ``secondary_intents`` without its own label (the
            secondary head's target; ``train()`` sets it when ``secondary.weight > 0``).
        text_preprocess: what the tokenizer sees after normalisation, ``none`` (the
            normalised text) or ``romaji`` (Japanese script in Hepburn romaji); see
            :mod:`mangaassist.data.transliterate`. Scoring, export and serving read it back
            from the run's config.
        truncation: what a message over ``max_length`` tokens keeps: ``first`` (its first
            tokens) or ``head_tail`` (its first ``truncation_head_tokens`` and its last
            tokens); see :mod:`mangaassist.data.truncation`. Scoring, export and serving
            read it back from the run's config.
        truncation_head_tokens: ``head_tail`` only: word pieces kept from the start.
    """

    def __init__(
        self,
        source: Source,
        tokenizer: PreTrainedTokenizerBase,
        name: str = "",
        batch_size: int = 32,
        eval_batch_size: int = 128,
        max_length: int = 128,
        val_fraction: float = 0.1,
        test_fraction: float = 0.1,
        sampler: str | None = None,
        rare_below: float | None = 0.05,
        seed: int = 0,
        num_workers: int = 0,
        refit: bool = False,
        order_seed: int | None = None,
        secondary: bool = False,
        text_preprocess: str | None = "none",
        truncation: str | None = "first",
        truncation_head_tokens: int | None = DEFAULT_HEAD_TOKENS,
    ) -> None:
        super().__init__()
        if sampler not in (None, "balanced"):
            raise UserError(f"unknown sampler '{sampler}'; use null or balanced")
        self.text_preprocess = check_text_preprocess(text_preprocess)
        self.preprocess = preprocessor(self.text_preprocess)  # normalise (+ romaji)
        self.truncation = check_truncation(truncation, truncation_head_tokens, max_length)
        self.source, self.tokenizer = source, tokenizer
        self.name = name or source.name
        self.labels = list(source.labels)
        self.batch_size, self.eval_batch_size = batch_size, eval_batch_size
        self.max_length, self.sampler = max_length, sampler
        self.rare_below = (
            RARE_SHARE_OF_EVEN / len(self.labels) if rare_below is None else rare_below
        )
        self.seed, self.num_workers = seed, num_workers
        self.order_seed = seed if order_seed is None else order_seed
        self.splits = self._split(source, val_fraction, test_fraction, seed)
        # Class-share parity and leakage (conversations, normalised duplicates) across splits.
        self.split_report = split_report(self.splits)
        given = [*source.train, *(source.val or []), *(source.test or [])]
        self.split_report["dropped_common_copies"] = len(given) - sum(
            map(len, self.splits.values())
        )
        # What the report describes: the seed and a hash of the input examples, so two
        # machines can check they split the same bytes the same way.
        self.split_report["seed"] = seed
        self.split_report["input_sha256"] = sha256_examples(given)
        self.split_report["split_sha256"] = {k: sha256_examples(v) for k, v in self.splits.items()}
        print(format_split_report(self.split_report).splitlines()[-1], flush=True)
        self.refit = refit
        if refit:
            self.splits["train"] = self.splits["train"] + self.splits["val"]
            self.split_report["refit_on_val"] = True
            print(
                f'[DATA] refit=true train={len(self.splits["train"])} note="training on '
                'train + val; validation figures are on seen data"',
                flush=True,
            )
        counts = Counter(e.label for e in self.splits["train"])
        self.class_counts = [counts.get(label, 0) for label in self.labels]
        empty = [lab for lab, n in zip(self.labels, self.class_counts, strict=True) if n == 0]
        if empty:
            raise UserError(
                f"label(s) {empty} have no training examples in '{self.name}'; "
                "add examples or drop the label from data.labels"
            )
        self.secondary = secondary
        if secondary:
            _check_secondary(self.splits, self.labels, self.name)
        self._encoded: dict[str, dict] = {}
        # (N_train, C) teacher logits aligned to the encoded train split, for distillation;
        # None: batches carry no teacher_logits (see set_teacher_logits).
        self.teacher_logits: torch.Tensor | None = None

    @staticmethod
    def _split(
        source: Source, val_fraction: float, test_fraction: float, seed: int
    ) -> dict[str, list[Example]]:
        carve = {}
        if source.val is None:
            carve["val"] = val_fraction
        if not source.test:
            carve["test"] = test_fraction
        if not carve:
            return {"train": source.train, "val": source.val, "test": source.test}
        carve["train"] = 1.0 - sum(carve.values())
        out = split_examples(source.train, carve, seed=seed)
        return {
            "train": out["train"],
            "val": source.val if source.val is not None else out["val"],
            "test": source.test or out["test"],
        }

    def _encode(self, stage: str) -> dict:
        if stage not in self._encoded:
            examples = self.splits[stage]
            index = {label: i for i, label in enumerate(self.labels)}
            # Test files may hold labels outside the model's (CLINC150's out-of-scope): they
            # are scored after training from the saved test file, not in the test loop.
            examples = [e for e in examples if e.label in index]
            texts = [normalize_text(e.text) for e in examples]
            # The tokenizer sees the preprocessed text (normalised, romaji when on); a teacher
            # reads the normalised text and applies its own run's preprocessing.
            seen = texts if self.preprocess is normalize_text else list(map(self.preprocess, texts))
            self._encoded[stage] = {
                # first: the tokenizer truncates, as before; head_tail: whole messages, then
                # Truncation.keep (the function serving calls) keeps each long one's two ends.
                "input_ids": self.truncation.encode(self.tokenizer, seen, self.max_length),
                "labels": [index[e.label] for e in examples],
                "texts": texts,  # normalised; what a teacher's logits are keyed by
                # Secondary intents as label indices, the example's own label left out.
                "secondary": [
                    [index[s] for s in e.secondary_intents if s != e.label and s in index]
                    for e in examples
                ],
            }
        return self._encoded[stage]

    def train_texts(self) -> list[str]:
        """The normalised training messages, in the order batch indices refer to them.

        Normalised, not transliterated: a teacher run applies its own ``text_preprocess``.
        """
        return list(self._encode("train")["texts"])

    def secondary_rates(self) -> list[float]:
        """(C,) share of training messages with each intent as a secondary one (own label out)."""
        rows = [set(s) for s in self._encode("train")["secondary"]]
        n = max(len(rows), 1)
        return [sum(c in r for r in rows) / n for c in range(len(self.labels))]

    def set_teacher_logits(self, logits: torch.Tensor) -> None:
        """Attach a teacher's logits, row ``i`` for :meth:`train_texts` ``[i]``.

        Each training batch then carries ``teacher_logits`` (B, C), looked up by the
        examples' indices, so the teacher never runs during training.

        Args:
            logits: (N_train, C) raw teacher logits, C = ``len(self.labels)``.

        Raises:
            ValueError: the shape does not match the training split and the labels.
        """
        want = (len(self._encode("train")["labels"]), len(self.labels))
        if tuple(logits.shape) != want:
            raise ValueError(
                f"teacher logits have shape {tuple(logits.shape)}; the training split needs {want}"
            )
        self.teacher_logits = logits.detach().float().cpu()

    def setup(self, stage: str | None = None) -> None:
        for split in ("train", "val", "test"):
            self._encode(split)

    def _collate(self, items: list[int], stage: str) -> dict[str, torch.Tensor]:
        enc = self._encoded[stage]
        seqs = [enc["input_ids"][i] for i in items]
        width = max(len(s) for s in seqs)  # pad to the longest in the batch, not to max_length
        ids = torch.full((len(seqs), width), self.tokenizer.pad_token_id, dtype=torch.long)
        mask = torch.zeros((len(seqs), width), dtype=torch.long)
        for row, s in enumerate(seqs):
            ids[row, : len(s)] = torch.tensor(s)
            mask[row, : len(s)] = 1
        labels = torch.tensor([enc["labels"][i] for i in items])
        batch = {"input_ids": ids, "attention_mask": mask, "labels": labels}
        if stage == "train" and self.teacher_logits is not None:
            batch["teacher_logits"] = self.teacher_logits[items]  # (B, C), by example index
        if self.secondary:
            target = torch.zeros((len(items), len(self.labels)))  # (B, C) multi-hot, float
            for row, i in enumerate(items):
                target[row, enc["secondary"][i]] = 1.0
            batch["secondary_targets"] = target
        return batch

    def _loader(self, stage: str, shuffle: bool) -> DataLoader:
        enc = self._encode(stage)
        weights = None
        if shuffle and self.sampler == "balanced":
            per_class = [1.0 / n for n in self.class_counts]
            weights = [per_class[y] for y in enc["labels"]]
        sampler = LengthGroupedBatchSampler(
            [len(s) for s in enc["input_ids"]],
            self.batch_size if shuffle else self.eval_batch_size,
            shuffle=shuffle,
            weights=weights,
            seed=self.order_seed,
        )
        return DataLoader(
            range(len(enc["labels"])),
            batch_sampler=sampler,
            collate_fn=lambda items: self._collate(items, stage),
            num_workers=self.num_workers,
        )

    def train_dataloader(self) -> DataLoader:
        return self._loader("train", shuffle=True)

    def val_dataloader(self) -> DataLoader:
        return self._loader("val", shuffle=False)

    def test_dataloader(self) -> DataLoader:
        return self._loader("test", shuffle=False)

    def save_splits(self, folder: Path) -> None:
        """Write the train, val and test examples used, and the split report (parity, leakage).

        The train split is kept so later checks can prove a message was not trained on (the
        gate set's overlap check, the retrain loop's deduplication).
        """
        for split in ("train", "val", "test"):
            name = "val_seen_in_training" if split == "val" and self.refit else split
            write_examples(self.splits[split], Path(folder) / f"{name}.jsonl")
        write_json(Path(folder) / "split_report.json", self.split_report)
        write_text(Path(folder) / "split_report.txt", format_split_report(self.split_report))
