"""Distillation end to end on tiny models: the teacher cache, its checks, a smoke run."""

import csv
import json
import shutil
from pathlib import Path

import numpy as np
import pytest
import torch
from safetensors import safe_open

from mangaassist.checkpoint import CHECKPOINT
from mangaassist.data.schema import read_examples
from mangaassist.errors import UserError
from mangaassist.evaluation.calibration import write_checkpoint_temperature
from mangaassist.model.distill import DistillationLoss
from mangaassist.training import load_run, train
from mangaassist.training.config_schema import validate_train_config
from mangaassist.training.teacher import file_sha256, seen_by_teacher, teacher_logits, text_key
from mangaassist.training.train import build


@pytest.fixture
def texts(toy_file) -> list[str]:
    found = [e.text for e in read_examples(toy_file)][:50]
    return [*found, found[3]]  # a duplicate message: one cache row, two lookups


@pytest.fixture
def teacher_copy(tiny_run, tmp_path) -> Path:
    """A copy of the tiny teacher run that a test may change."""
    out = tmp_path / "teacher"
    shutil.copytree(tiny_run, out, ignore=shutil.ignore_patterns("export"))
    return out


def labels_of(run: Path) -> list[str]:
    return json.loads((run / "labels.json").read_text())


def test_cached_logits_equal_a_fresh_teacher_pass(tiny_run, texts, tmp_path):
    cache = tmp_path / "cache.safetensors"
    logits, source = teacher_logits(tiny_run, texts, labels_of(tiny_run), cache)
    assert source == "computed" and logits.shape == (len(texts), 10)
    fresh = load_run(tiny_run).predict_logits(texts, batch_size=7)  # other batches, other pads
    np.testing.assert_allclose(logits, fresh, rtol=0, atol=1e-5)
    again, source = teacher_logits(tiny_run, texts, labels_of(tiny_run), cache)
    assert source == "cache" and np.array_equal(again, logits)
    np.testing.assert_array_equal(logits[-1], logits[3])  # the duplicate
    with safe_open(str(cache), framework="np") as f:
        meta = f.metadata()
        assert f.get_tensor("keys").shape == (len(texts) - 1, 32)  # distinct messages only
        assert f.get_tensor("logits").dtype == np.float32
    assert meta["checkpoint_sha256"] == file_sha256(tiny_run / CHECKPOINT)
    assert json.loads(meta["labels"]) == labels_of(tiny_run) and meta["n"] == str(len(texts) - 1)
    # The order of the messages asked for does not matter: keys are text hashes.
    shuffled, _ = teacher_logits(tiny_run, texts[::-1], labels_of(tiny_run), cache)
    np.testing.assert_array_equal(shuffled, logits[::-1])


def test_keys_are_hashes_of_the_normalised_text():
    assert text_key("where is   my order\u200b!!!!!!") == text_key("where is my order!!!")
    assert text_key("where is my order") != text_key("where is my package")


def test_a_cache_for_other_messages_is_refused(tiny_run, texts, tmp_path):
    cache = tmp_path / "cache.safetensors"
    teacher_logits(tiny_run, texts[:10], labels_of(tiny_run), cache)
    with pytest.raises(UserError, match=r"stale: 40 of the 51 training messages are not in it"):
        teacher_logits(tiny_run, texts, labels_of(tiny_run), cache)


def test_a_cache_from_another_checkpoint_is_refused(teacher_copy, texts, tmp_path):
    cache = tmp_path / "cache.safetensors"
    teacher_logits(teacher_copy, texts, labels_of(teacher_copy), cache)
    write_checkpoint_temperature(teacher_copy / CHECKPOINT, 1.7)  # the checkpoint changed
    with pytest.raises(UserError, match=r"stale: it was computed with checkpoint_sha256=") as err:
        teacher_logits(teacher_copy, texts, labels_of(teacher_copy), cache)
    assert "Delete it" in str(err.value) and "distill.cache" in str(err.value)


def test_a_teacher_with_other_labels_is_refused(teacher_copy, texts, tmp_path):
    labels = labels_of(teacher_copy)
    swapped = [labels[1], labels[0], *labels[2:]]
    (teacher_copy / "labels.json").write_text(json.dumps(swapped))
    with pytest.raises(UserError, match=r"another order: at index 0 the teacher has"):
        teacher_logits(teacher_copy, texts, labels, tmp_path / "c.safetensors")
    (teacher_copy / "labels.json").write_text(json.dumps([*labels[:-1], "smalltalk"]))
    with pytest.raises(UserError, match=r"only the teacher has \['smalltalk'\]") as err:
        teacher_logits(teacher_copy, texts, labels, tmp_path / "c.safetensors")
    assert f"only the student's data has ['{labels[-1]}']" in str(err.value)
    assert not (tmp_path / "c.safetensors").exists()  # refused before the teacher ran


def test_overlap_with_the_teachers_training_split_is_counted(tiny_cfg, tiny_run, tmp_path, capsys):
    trained = [e.text for e in read_examples(tiny_run / "data/train.jsonl")]
    held_out = [e.text for e in read_examples(tiny_run / "data/val.jsonl")]
    assert seen_by_teacher(tiny_run, trained) == len(trained)
    assert seen_by_teacher(tiny_run, held_out) == 0  # a group never crosses splits
    assert seen_by_teacher(tmp_path, held_out) is None  # no data/train.jsonl: unknown
    # A student whose validation split is the teacher's training data gets a warning.
    build(tiny_cfg(f"data.val={tiny_run / 'data/train.jsonl'}", f"distill.teacher={tiny_run}"))
    out = capsys.readouterr().out
    seen = int(out.split("teacher_saw_val_test=")[1].split()[0])
    assert seen >= len(trained)  # the whole validation split, and maybe some of test
    assert '[DISTILL] warning="the teacher trained on' in out


def test_not_a_run_directory_is_refused(tmp_path, texts):
    with pytest.raises(UserError, match="not a complete run directory"):
        teacher_logits(tmp_path, texts, ["a"], tmp_path / "c.safetensors")


def test_batches_carry_the_teacher_rows_of_their_examples(tiny_cfg, tiny_run, tmp_path):
    cache = tmp_path / "shared.safetensors"
    cfg = tiny_cfg(f"distill.teacher={tiny_run}", f"distill.cache={cache}")
    dm, model, _ = build(cfg)
    assert isinstance(model.criterion, DistillationLoss) and cache.is_file()
    texts = dm.train_texts()
    expected = load_run(tiny_run).predict_logits(texts)
    torch.testing.assert_close(dm.teacher_logits, torch.from_numpy(expected), atol=1e-5, rtol=0)
    # Row i of the table is example i: tag rows with their index and follow them into batches.
    table = torch.zeros(len(texts), 10)
    table[:, 0] = torch.arange(len(texts), dtype=torch.float32)
    dm.set_teacher_logits(table)
    enc = dm._encode("train")
    for batch in dm.train_dataloader():
        for row, index in enumerate(batch["teacher_logits"][:, 0].long().tolist()):
            width = int(batch["attention_mask"][row].sum())
            assert batch["input_ids"][row, :width].tolist() == enc["input_ids"][index]
    assert "teacher_logits" not in next(iter(dm.val_dataloader()))
    with pytest.raises(ValueError, match="shape"):
        dm.set_teacher_logits(torch.zeros(3, 10))
    # A second student on the same split reads the shared cache: the teacher does not run.
    dm2, _, _ = build(tiny_cfg(f"distill.teacher={tiny_run}", f"distill.cache={cache}"))
    torch.testing.assert_close(dm2.teacher_logits, torch.from_numpy(expected), atol=1e-5, rtol=0)


def test_distillation_is_off_by_default(tiny_cfg):
    cfg = tiny_cfg()
    assert cfg.distill.teacher is None
    dm, model, _ = build(cfg)
    assert dm.teacher_logits is None and not isinstance(model.criterion, DistillationLoss)
    assert "teacher_logits" not in next(iter(dm.train_dataloader()))


@pytest.mark.parametrize(
    ("override", "message"),
    [
        ("distill.alpha=1.5", "distill.alpha=1.5 is not allowed: use a weight in [0, 1]"),
        ("distill.temperature=0", "distill.temperature=0 is not allowed: use a number > 0"),
    ],
)
def test_distill_settings_are_checked(tiny_cfg, override, message):
    with pytest.raises(UserError) as err:
        validate_train_config(tiny_cfg(override))
    assert str(err.value).startswith(message)


def test_smoke_distillation_run_of_a_layer_reduced_student(tiny_cfg, tiny_run, capsys):
    cfg = tiny_cfg(
        "model=minilm_l3",
        f"distill.teacher={tiny_run}",
        "distill.alpha=0.5",
        "distill.temperature=2",
        "trainer.log_every_n_steps=1",
    )
    metrics = train(cfg)
    run = Path(cfg.paths.output_dir)
    out = capsys.readouterr().out
    assert f"[DISTILL] teacher={tiny_run} " in out and "source=computed" in out
    assert "teacher_saw_val_test=" in out
    assert (run / "distill/teacher_logits.safetensors").is_file()
    assert np.isfinite(metrics["val/loss"]) and np.isfinite(metrics["test_lightning/acc"])
    rows = list(csv.DictReader((run / "csv/metrics.csv").open()))
    kd = [float(r["train/kd_loss"]) for r in rows if r.get("train/kd_loss")]
    hard = [float(r["train/hard_loss"]) for r in rows if r.get("train/hard_loss")]
    total = [float(r["train/loss"]) for r in rows if r.get("train/loss")]
    assert kd and len(kd) == len(hard) == len(total)
    assert total[0] == pytest.approx(0.5 * kd[0] + 0.5 * hard[0], rel=1e-4)
    # The run directory reloads as a 3-layer student with the kept layers (the default) recorded.
    backbone = json.loads((run / "backbone/config.json").read_text())
    assert backbone["num_hidden_layers"] == 3 and backbone["kept_layers"] == [0, 1, 2]
    loaded = load_run(run)
    assert len(loaded.model.encoder.encoder.layer) == 3
    state = torch.load(run / CHECKPOINT, weights_only=True)["state_dict"]
    torch.testing.assert_close(
        loaded.model.encoder.encoder.layer[2].output.dense.weight,
        state["encoder.encoder.layer.2.output.dense.weight"],
    )
    assert loaded.predict_logits(["where is my order"]).shape == (1, 10)
    # ...and exports to ONNX like any run (export_run checks ONNX against PyTorch logits).
    from mangaassist.export.bundle import export_run

    bundle = export_run(run, run / "export")
    manifest = json.loads((bundle / "manifest.json").read_text())
    assert (bundle / "model.onnx").is_file() and manifest["parity"]
