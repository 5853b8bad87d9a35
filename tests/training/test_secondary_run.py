"""A tiny run with the secondary-intent head: batches, training, reload, post_train figures."""

import json
import random
import re
from pathlib import Path

import numpy as np
import pytest
import torch

from mangaassist.checkpoint import load_checkpoint
from mangaassist.data.datamodule import IntentDataModule
from mangaassist.data.schema import INTENTS, primary_intent, read_examples
from mangaassist.data.sources import files
from mangaassist.errors import UserError
from mangaassist.evaluation import post_train
from mangaassist.evaluation.after_training import GOLDEN
from mangaassist.evaluation.secondary import choose_threshold, true_matrix
from mangaassist.inference.policy import sigmoid
from mangaassist.model.backbone import load_tokenizer
from mangaassist.training import load_run, train
from tests.conftest import _WORDS, TINY, compose_cfg


def write_multi_ask_jsonl(path: Path, n_single: int = 8, n_multi: int = 40, seed: int = 0) -> Path:
    """Single-ask messages per intent plus two-ask ones labelled by the priority rule."""
    rng = random.Random(seed)
    rows = []
    for label in INTENTS:
        for i in range(n_single):
            text = f"{rng.choice(_WORDS[label])} {' '.join(rng.sample(['ok', 'pls', 'rn'], 2))} {i}"
            rows.append({"id": f"{label}-{i}", "text": text, "label": label})
    for i in range(n_multi):
        a, b = rng.sample(INTENTS, 2)
        first = primary_intent([a, b])
        text = f"{rng.choice(_WORDS[a])} and also {rng.choice(_WORDS[b])} m{i}"
        other = b if first == a else a
        rows.append(
            {"id": f"multi-{i}", "text": text, "label": first, "secondary_intents": [other]}
        )
    path.write_text("".join(json.dumps(r) + "\n" for r in rows))
    return path


def test_batches_carry_the_multi_hot_only_when_asked(tmp_path, toy_file):
    data = write_multi_ask_jsonl(tmp_path / "multi.jsonl")
    tok = load_tokenizer(None, "tiny")
    plain = IntentDataModule(files(str(data)), tok, batch_size=8)
    plain.setup()
    assert set(next(iter(plain.train_dataloader()))) == {"input_ids", "attention_mask", "labels"}

    dm = IntentDataModule(files(str(data)), tok, batch_size=8, secondary=True)
    dm.setup()
    by_text = {e.text: e for e in read_examples(data)}
    for split, loader in (("train", dm.train_dataloader()), ("val", dm.val_dataloader())):
        batch = next(iter(loader))
        target = batch["secondary_targets"]
        assert target.shape == (len(batch["labels"]), len(INTENTS)) and target.dtype == torch.float
        texts = dm._encoded[split]["texts"]
        for row, i in enumerate(next(iter(loader.batch_sampler))):
            ex = by_text[dm.splits[split][i].text]
            want = [float(lab in ex.secondary_intents) for lab in dm.labels]
            assert target[row].tolist() == want, texts[i]
    with pytest.raises(UserError, match=r"no training example .* has secondary_intents"):
        IntentDataModule(files(str(toy_file)), tok, secondary=True)


def test_the_head_starts_at_the_training_base_rates(tmp_path):
    """bias_c = log(r / (1 - r)) of the share r of training messages with c secondary,
    counted here from the training split itself (an intent never secondary: the floor)."""
    from mangaassist.training.train import build

    data = write_multi_ask_jsonl(tmp_path / "multi.jsonl")
    cfg = compose_cfg([*TINY, "data=files", f"data.train={data}", "secondary.weight=0.5"], tmp_path)
    dm, model, _ = build(cfg)
    train_rows = dm.splits["train"]
    for c, label in enumerate(dm.labels):
        k = sum(label in e.secondary_intents and label != e.label for e in train_rows)
        r = min(max(k / len(train_rows), 1e-4), 1 - 1e-4)
        assert dm.secondary_rates()[c] == pytest.approx(k / len(train_rows))
        assert float(model.secondary_head.bias[c]) == pytest.approx(np.log(r / (1 - r)), abs=1e-5)
    assert 0 < np.mean(dm.secondary_rates()) < 0.2  # most (message, intent) pairs are negative


def test_a_tiny_run_with_the_head_trains_reloads_and_reports(tmp_path, capsys):
    data = write_multi_ask_jsonl(tmp_path / "multi.jsonl")
    golden = tmp_path / "golden.jsonl"  # a slice keeps it quick; evaluation only
    golden.write_text("".join(GOLDEN.read_text(encoding="utf-8").splitlines(True)[:60]))
    overrides = [
        *TINY,
        "data=files",
        f"data.train={data}",
        "secondary.weight=0.5",
        f"evaluation.golden_path={golden}",
        "evaluation.latency.runtime=torch",
        "evaluation.latency.max_messages=5",
        "evaluation.latency.warmup=1",
        "evaluation.report.n_boot=20",
    ]
    cfg = compose_cfg(overrides, tmp_path / "run")
    metrics = train(cfg)
    run_dir = tmp_path / "run"
    assert np.isfinite(metrics["val/secondary_loss"])
    assert "train/secondary_loss" in (run_dir / "history.csv").read_text()

    # Reload from the run directory alone: the head comes back with the checkpoint's weights.
    state = load_checkpoint(run_dir / "checkpoints" / "best.ckpt")["state_dict"]
    run = load_run(run_dir)
    assert run.has_secondary
    torch.testing.assert_close(run.model.secondary_head.weight, state["secondary_head.weight"])
    primary, secondary = run.predict_heads(["where is my order", "hi"])
    assert primary.shape == secondary.shape == (2, len(INTENTS))
    np.testing.assert_allclose(run.predict_logits(["where is my order", "hi"]), primary)

    summary = post_train(run_dir, cfg)
    out = capsys.readouterr().out
    policy = json.loads((run_dir / "secondary.json").read_text())
    assert policy["chosen_on"] == "data/val.jsonl" and policy["mask_primary"] is True
    # The threshold is the one validation gives, whatever test and golden hold.
    val = read_examples(run_dir / "data" / "val.jsonl")
    z, z2 = run.predict_heads([e.text for e in val])
    true = true_matrix([e.secondary_intents for e in val], [e.label for e in val], run.labels)
    assert policy["threshold"] == choose_threshold(true, sigmoid(z2), z.argmax(1))[0]
    assert summary["secondary/threshold"] == policy["threshold"]
    for name in ("test", "golden"):
        assert f"[EVAL_SECONDARY] set={name} precision=" in out, name
        m = json.loads((run_dir / "eval" / name / "metrics.json").read_text())["secondary"]
        assert m["n_multi"] > 0 and m["threshold"] == policy["threshold"]
        assert summary[f"{name}/secondary_n_multi"] == m["n_multi"]
        assert summary[f"{name}/secondary_recall"] == pytest.approx(m["recall"])
        assert "Secondary intents" in (run_dir / "eval" / name / "report.html").read_text()
        first = json.loads((run_dir / "eval" / name / "predictions.jsonl").open().readline())
        assert isinstance(first["secondary_pred"], list)


def test_the_head_is_off_by_default_and_bad_settings_are_refused(tmp_path, tiny_cfg):
    from omegaconf import OmegaConf

    from mangaassist.training.config_schema import validate_train_config
    from mangaassist.training.train import build, secondary_weight_of

    cfg = tiny_cfg()
    assert (cfg.secondary.weight, cfg.secondary.threshold, cfg.secondary.mask_primary) == (
        0.0,
        None,
        True,
    )
    dm, model, _ = build(cfg)
    assert model.secondary_head is None and not dm.secondary
    # A run directory from before the option has no `secondary` section: no head.
    assert secondary_weight_of(OmegaConf.create({"model": {}})) == 0.0
    assert not [k for k in model.state_dict() if "secondary" in k]
    for bad, allowed in (
        ("secondary.weight=-1", "a number >= 0"),
        ("secondary.threshold=1.5", "a probability in (0, 1)"),
    ):
        with pytest.raises(UserError, match=re.escape(f"{bad} is not allowed: use {allowed}")):
            validate_train_config(compose_cfg([bad], tmp_path))
