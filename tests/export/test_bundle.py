"""The export bundle of a tiny trained run: files, hashes, parity, atomic failure."""

from __future__ import annotations

import hashlib
import json
import shutil

import numpy as np
import pytest
import torch

from mangaassist.cli import main
from mangaassist.errors import UserError
from mangaassist.evaluation.calibration import Calibration
from mangaassist.export.bundle import export_run, verify_bundle
from mangaassist.inference import Predictor, open_bundle
from mangaassist.model import onnx_runtime
from mangaassist.model.onnx_runtime import ParityError
from mangaassist.training.run_dir import load_run
from mangaassist.training.train import train
from tests.conftest import TINY, compose_cfg, write_toy_jsonl

BUNDLE_FILES = {
    "model.onnx",
    "README.md",
    "canary.jsonl",
    "labels.json",
    "calibration.json",
    "tokenizer/tokenizer.json",
    "tokenizer/tokenizer_config.json",
}


@pytest.fixture(scope="module")
def run_dir(tmp_path_factory):
    root = tmp_path_factory.mktemp("export")
    toy = write_toy_jsonl(root / "toy.jsonl", n_per_class=6)
    train(compose_cfg([*TINY, "data=files", f"data.train={toy}"], root / "run"))
    labels = json.loads((root / "run" / "labels.json").read_text())
    Calibration(
        temperature=1.5, labels=labels, thresholds=dict.fromkeys(labels, 0.55), fitted_on="x"
    ).save(root / "run" / "calibration.json")
    return root / "run"


def leftovers(folder):
    return [p.name for p in folder.iterdir() if ".tmp-" in p.name or ".old-" in p.name]


def test_bundle_has_every_file_with_matching_hashes(run_dir, tmp_path):
    out = export_run(run_dir, tmp_path / "bundle")
    m = json.loads((out / "manifest.json").read_text())
    assert set(m["files"]) == BUNDLE_FILES
    for name, entry in m["files"].items():
        data = (out / name).read_bytes()
        assert hashlib.sha256(data).hexdigest() == entry["sha256"] and len(data) == entry["bytes"]
    assert m["max_length"] == 32 and m["temperature"] == 1.5 and m["calibrated"]
    assert m["parity"]["max_abs_logit_diff"] < 1e-3 and m["parity"]["source"] == "data/val.jsonl"
    assert m["parity"]["messages"] == min(
        64, len((run_dir / "data/val.jsonl").read_text().splitlines())
    )
    assert set(m["runtime_versions"]) >= {"torch", "onnx", "onnxruntime", "transformers"}
    assert m["source_run"] == str(run_dir.resolve())
    cal = json.loads((out / "calibration.json").read_text())
    assert cal["thresholds"]["faq"] == 0.55 and cal["temperature"] == 1.5
    assert verify_bundle(out) == m

    # Served probabilities from the bundle alone equal PyTorch's softmax(logits / T).
    predictor = Predictor.from_bundle(open_bundle(out))
    run = load_run(run_dir)
    texts = ["where is my order", "any sales this weekend pls"]
    ref = torch.from_numpy(run.predict_logits(texts)) / 1.5
    np.testing.assert_allclose(predictor.proba(texts), ref.softmax(-1).numpy(), atol=1e-5)

    # A changed file is caught; exporting again replaces the bundle atomically.
    (out / "labels.json").write_text("[]")
    with pytest.raises(UserError, match=r"changed since export: \['labels.json'\]"):
        verify_bundle(out)
    export_run(run_dir, out)
    verify_bundle(out)
    assert leftovers(tmp_path) == []


def test_cli_default_out_is_the_run_export_folder(run_dir, capsys):
    try:
        assert main(["export", str(run_dir), "--messages", "8"]) == 0
        out = capsys.readouterr().out
        assert f"[EXPORT] path={run_dir / 'export'} files=7" in out and "on=8:" in out
        assert verify_bundle(run_dir / "export")["parity"]["messages"] == 8
    finally:
        shutil.rmtree(run_dir / "export", ignore_errors=True)


def test_missing_checkpoint_is_a_user_error_and_writes_nothing(run_dir, tmp_path, capsys):
    broken = tmp_path / "run"
    shutil.copytree(run_dir, broken, ignore=shutil.ignore_patterns("checkpoints"))
    out = tmp_path / "bundle"
    with pytest.raises(UserError, match=r"missing \['checkpoints/best.ckpt'\].*training run"):
        export_run(broken, out)
    assert not out.exists() and leftovers(tmp_path) == []
    assert main(["export", str(broken), "--out", str(out)]) == 2
    assert "checkpoints/best.ckpt" in capsys.readouterr().err and not out.exists()


def test_parity_failure_raises_and_keeps_the_previous_bundle(run_dir, tmp_path, monkeypatch):
    out = export_run(run_dir, tmp_path / "bundle")
    before = verify_bundle(out)
    real = onnx_runtime.to_onnx

    def skewed(model, *args, **kwargs):  # export a model whose head is off by 0.1
        with torch.no_grad():
            model.head.bias += 0.1
            try:
                return real(model, *args, **kwargs)
            finally:
                model.head.bias -= 0.1

    monkeypatch.setattr(onnx_runtime, "to_onnx", skewed)
    with pytest.raises(ParityError, match=r"differ from PyTorch by 0\.1"):
        export_run(run_dir, out)
    assert verify_bundle(out) == before and leftovers(tmp_path) == []
    with pytest.raises(ParityError):
        export_run(run_dir, tmp_path / "fresh")
    assert not (tmp_path / "fresh").exists() and leftovers(tmp_path) == []


def test_refuses_to_overwrite_a_folder_that_is_not_a_bundle(run_dir, tmp_path):
    (tmp_path / "notes").mkdir()
    (tmp_path / "notes" / "keep.txt").write_text("mine")
    with pytest.raises(UserError, match="not an export bundle"):
        export_run(run_dir, tmp_path / "notes")
    assert (tmp_path / "notes" / "keep.txt").read_text() == "mine"


def test_bundle_keeps_the_runs_rare_classes_for_evaluate(tiny_run, tmp_path):
    """`evaluate --model BUNDLE` reports rare-class recall as `evaluate --model RUN` does."""
    from mangaassist.evaluation.artifacts import run_rare_classes

    run = tmp_path / "run"
    shutil.copytree(tiny_run, run, ignore=shutil.ignore_patterns("export"))
    counts = json.loads((run / "class_counts.json").read_text())
    rare_label = sorted(counts)[0]
    counts = {k: 1 if k == rare_label else 100 for k in counts}  # the toy is balanced
    (run / "class_counts.json").write_text(json.dumps(counts))
    rare = run_rare_classes(run)
    assert rare == [rare_label]
    bundle = export_run(run, tmp_path / "bundle")
    assert open_bundle(bundle).rare_classes == rare
    data = run / "data" / "val.jsonl"
    out = tmp_path / "ev"
    assert main(["evaluate", "--model", str(bundle), "--data", str(data), "--out", str(out)]) == 0
    metrics = json.loads((out / "metrics.json").read_text())
    assert metrics["rare_classes"] == rare and metrics["rare_recall"] is not None
