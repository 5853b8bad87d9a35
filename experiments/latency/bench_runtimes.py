"""Batch-1 serving latency of one trained run: PyTorch eager fp32 vs ONNX Runtime fp32.

Both arms run the whole serving path for one message (normalise, tokenize, forward, softmax
with the run's temperature) on the run's test messages, on 1 intra-op thread, in one process,
one after the other, with the evaluation stage's warm-up and percentiles:

    python experiments/latency/bench_runtimes.py RUN_DIR [--messages 300] [--threads 1]

Prints P50/P95/P99 per runtime and the torch/onnxruntime ratios, and writes
``results_<run name>.json`` beside this file. Target: ONNX Runtime P95 < 15 ms.
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import tempfile
from pathlib import Path

import torch

from mangaassist.data.normalize import normalize_text
from mangaassist.data.schema import read_examples
from mangaassist.evaluation.artifacts import load_model_run, read_calibration
from mangaassist.evaluation.latency import measure_latency, time_predict_one
from mangaassist.model.onnx_runtime import check_parity, onnx_predictor, to_onnx

HERE = Path(__file__).resolve().parent


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("run_dir", type=Path)
    parser.add_argument("--messages", type=int, default=300, help="test messages timed")
    parser.add_argument("--threads", type=int, default=1, help="intra-op threads per arm")
    parser.add_argument("--warmup", type=int, default=20)
    parser.add_argument("--out", type=Path, help="results JSON (default beside this script)")
    args = parser.parse_args()

    run = load_model_run(args.run_dir)
    calib = read_calibration(run.path)
    temperature = calib.temperature if calib else float(run.model.temperature)
    texts = [ex.text for ex in read_examples(run.path / "data" / "test.jsonl")][: args.messages]
    timing = {"num_threads": args.threads, "warmup": args.warmup, "max_messages": args.messages}
    print(f"[BENCH] run={run.path} messages={len(texts)} threads={args.threads}", flush=True)

    results = {}
    results["torch_fp32"] = measure_latency(
        run.model,
        run.tokenizer,
        texts,
        run.max_length,
        preprocess=normalize_text,
        temperature=temperature,
        **timing,
    )
    with tempfile.TemporaryDirectory() as tmp:
        path = to_onnx(run.model, run.tokenizer, Path(tmp) / "model.onnx", run.max_length)
        predictor = onnx_predictor(
            path,
            run.tokenizer,
            run.max_length,
            run.labels,
            num_threads=args.threads,
            temperature=temperature,
        )
        parity = check_parity(run.model, predictor, texts[:64], atol=1e-3)
        results["onnxruntime_fp32"] = {
            "runtime": "onnxruntime",
            **time_predict_one(predictor.predict_one, texts, **timing),
            "parity_max_abs_diff": parity,
        }
    for name, r in results.items():
        r.pop("samples_ms")
        print(
            f"[BENCH] arm={name} p50_ms={r['p50_ms']:.2f} p95_ms={r['p95_ms']:.2f} "
            f"p99_ms={r['p99_ms']:.2f} mean_ms={r['mean_ms']:.2f}",
            flush=True,
        )
    t, o = results["torch_fp32"], results["onnxruntime_fp32"]
    ratio = {k: t[k] / o[k] for k in ("p50_ms", "p95_ms", "p99_ms")}
    print(
        "[BENCH] torch/onnxruntime "
        + " ".join(f"{k.removesuffix('_ms')}={v:.2f}x" for k, v in ratio.items())
        + f" parity_max_abs_diff={parity:.2e}",
        flush=True,
    )
    out = args.out or HERE / f"results_{run.path.name}.json"
    meta = {
        "run": str(run.path),
        "model": str(run.config.model.get("name", "")),
        "max_length": run.max_length,
        "messages": len(texts),
        "threads": args.threads,
        "torch": torch.__version__,
        "cpu": platform.processor() or platform.machine(),
        "cpu_count": os.cpu_count(),
    }
    out.write_text(json.dumps({**meta, "arms": results, "ratio": ratio}, indent=1))
    print(f"[BENCH] results={out}")


if __name__ == "__main__":
    main()
