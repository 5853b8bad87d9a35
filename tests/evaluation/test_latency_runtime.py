"""Latency as served: evaluate_run times ONNX Runtime by default, PyTorch on request."""

from __future__ import annotations

import dataclasses
import json
import os

import pytest

from mangaassist.data.schema import read_examples
from mangaassist.errors import UserError
from mangaassist.evaluation.evaluate import evaluate_run
from mangaassist.evaluation.latency import time_predict_one
from mangaassist.evaluation.report import write_report
from mangaassist.evaluation.settings import EvalSettings, LatencySettings, eval_settings_from
from mangaassist.model.onnx_runtime import ParityError, to_onnx
from mangaassist.release.model_card import render_model_card
from mangaassist.training.run_dir import load_run
from mangaassist.training.train import train
from tests.conftest import TINY, compose_cfg, write_toy_jsonl


@pytest.fixture(scope="module")
def run(tmp_path_factory):
    root = tmp_path_factory.mktemp("latency")
    toy = write_toy_jsonl(root / "toy.jsonl", n_per_class=6)
    train(compose_cfg([*TINY, "data=files", f"data.train={toy}"], root / "run"))
    return load_run(root / "run")


def settings(**latency) -> EvalSettings:
    small = {"warmup": 2, "max_messages": 12, "n_boot": 0}
    lat = LatencySettings(**{k: v for k, v in small.items() if k != "n_boot"} | latency)
    return dataclasses.replace(EvalSettings(), latency=lat)


def test_default_runtime_is_onnxruntime_and_unknown_is_rejected():
    assert EvalSettings().latency.runtime == "onnxruntime"
    assert eval_settings_from({"latency": {"runtime": "torch"}}).latency.runtime == "torch"
    with pytest.raises(UserError, match=r"runtime: 'tensorrt'.*onnxruntime"):
        eval_settings_from({"latency": {"runtime": "tensorrt"}})


def test_time_predict_one_warms_up_then_times_each_message():
    calls = []
    out = time_predict_one(calls.append, ["a", "b", "c"], warmup=4, max_messages=2)
    assert calls == ["a", "b", "a", "b", "a", "b"] and out["n"] == 2
    assert out["p50_ms"] <= out["p95_ms"] <= out["p99_ms"] and out["num_threads"] == 1


@pytest.mark.parametrize("runtime", ["onnxruntime", "torch"])
def test_evaluate_run_records_the_runtime(run, runtime, tmp_path):
    examples = read_examples(run.path / "data" / "test.jsonl")
    ev = evaluate_run(run, examples, settings=settings(runtime=runtime))
    lat = ev.metrics["latency"]
    assert lat["runtime"] == runtime and lat["n"] == min(12, len(examples))
    assert 0 < lat["p50_ms"] <= lat["p95_ms"] <= lat["p99_ms"] <= lat["max_ms"] < 1000
    assert lat["num_threads"] == 1 and len(ev.latency_samples_ms) == lat["n"]
    if runtime == "onnxruntime":
        assert lat["parity_max_abs_diff"] < 1e-3 and lat["onnx"] == "exported"
        assert not (run.path / "export").exists()  # a temporary export, gone afterwards
    report = write_report(ev, tmp_path / "report.html")
    assert f"Runtime {runtime}" in report.read_text()


def test_reuses_a_fresh_export_and_model_card_names_the_runtime(run, tmp_path):
    onnx_file = run.path / "export" / "model.onnx"
    to_onnx(run.model, run.tokenizer, onnx_file, run.max_length)
    examples = read_examples(run.path / "data" / "test.jsonl")
    try:
        ev = evaluate_run(run, examples, settings=settings())
        assert ev.metrics["latency"]["onnx"] == "reused"
        # An export older than the checkpoint is stale: exported afresh.
        ckpt = (run.path / "checkpoints" / "best.ckpt").stat().st_mtime_ns
        os.utime(onnx_file, ns=(ckpt - 10**9, ckpt - 10**9))
        ev = evaluate_run(run, examples, settings=settings())
        assert ev.metrics["latency"]["onnx"] == "exported"
    finally:
        onnx_file.unlink()
        onnx_file.parent.rmdir()
    folder = tmp_path / "v1"
    (folder / "eval" / "test").mkdir(parents=True)
    (folder / "eval" / "test" / "metrics.json").write_text(json.dumps(ev.metrics, default=float))
    assert "Batch 1 on onnxruntime, 1 thread(s)" in render_model_card("v1", folder)


def test_parity_failure_stops_the_timing(run):
    examples = read_examples(run.path / "data" / "test.jsonl")
    with pytest.raises(ParityError, match="differ from PyTorch"):
        evaluate_run(run, examples, settings=settings(parity_atol=-1.0))
