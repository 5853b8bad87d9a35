"""``export --quantize int8``: written only when it agrees with fp32 on validation."""

from __future__ import annotations

import json
import shutil

import numpy as np
import onnx
import onnxruntime.quantization as quantization
import pytest

from mangaassist.cli import main
from mangaassist.export.bundle import export_run
from mangaassist.inference import Predictor, open_bundle
from mangaassist.inference.bundle import PRECISIONS


def _skewed_quantizer(shift: float):
    """A stand-in for quantize_dynamic that writes fp32 with the head's bias moved by ``shift``.

    ``shift=0`` is a lossless "quantiser" (agreement 100%); a large shift on one class makes
    every message predict it (agreement far below 99%). The check itself runs unchanged.
    """

    def fake(src, dst, **_):
        model = onnx.load(str(src))
        if shift:
            bias = next(t for t in model.graph.initializer if t.dims == [10])
            values = onnx.numpy_helper.to_array(bias).copy()
            values[0] += shift
            bias.CopyFrom(onnx.numpy_helper.from_array(values, bias.name))
        onnx.save(model, str(dst))

    return fake


def test_a_real_int8_export_reports_its_agreement_and_loads(tiny_run, tmp_path):
    out = export_run(tiny_run, tmp_path / "b", quantize="int8")
    q = json.loads((out / "manifest.json").read_text())["int8"]
    fp32 = Predictor.from_bundle(open_bundle(out), "fp32")
    n = len((tiny_run / "data" / "val.jsonl").read_text().splitlines())
    assert q["n"] == n and q["source"] == "data/val.jsonl" and 0 <= q["agreement"] <= 1
    assert q["accepted"] == (
        q["agreement"] >= 0.99 and q["macro_f1_fp32"] - q["macro_f1_int8"] <= 0.5
    )
    assert ((out / PRECISIONS["int8"]).is_file()) == q["accepted"]
    if q["accepted"]:
        int8 = Predictor.from_bundle(open_bundle(out))
        assert int8.precision == "int8"
        texts = ["where is my order", "hi"]
        assert np.abs(int8.proba(texts) - fp32.proba(texts)).max() < 0.2
    assert not list(out.glob(".*tmp*"))


def test_int8_that_agrees_is_kept_and_served_by_default(tiny_run, tmp_path, monkeypatch, capsys):
    monkeypatch.setattr(quantization, "quantize_dynamic", _skewed_quantizer(0.0))
    out = tmp_path / "b"
    assert main(["export", str(tiny_run), "--out", str(out), "--quantize", "int8"]) == 0
    line = next(x for x in capsys.readouterr().out.splitlines() if "int8=" in x)
    assert "int8=accepted top1_agreement=100.00%" in line and "macro_f1_int8=" in line
    bundle = open_bundle(out)
    assert bundle.precisions() == ["fp32", "int8"]
    assert Predictor.from_bundle(bundle).precision == "int8"  # auto picks int8
    assert Predictor.from_bundle(bundle, "fp32").precision == "fp32"
    assert "int8 kept" in (out / "README.md").read_text()


def test_int8_that_disagrees_is_refused_and_not_written(tiny_run, tmp_path, monkeypatch, capsys):
    monkeypatch.setattr(quantization, "quantize_dynamic", _skewed_quantizer(50.0))
    out = tmp_path / "b"
    assert main(["export", str(tiny_run), "--out", str(out), "--quantize", "int8"]) == 0
    assert "int8=refused" in capsys.readouterr().out
    bundle = open_bundle(out)
    assert bundle.precisions() == ["fp32"] and not (out / PRECISIONS["int8"]).exists()
    assert bundle.manifest["int8"]["accepted"] is False
    assert bundle.manifest["int8"]["agreement"] < 0.99
    with pytest.raises(Exception, match=r"no model\.int8\.onnx in the bundle"):
        Predictor.from_bundle(bundle, "int8")
    shutil.rmtree(out)
