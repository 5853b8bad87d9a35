"""Why light traffic is slower per message: ONNX Runtime batch-1 latency hot and after idle gaps.

Usage::

    python experiments/serving/bench_idle_gap.py BUNDLE [--precision int8] [--calls 200]

For 1 and 2 intra-op threads, with ONNX Runtime's spin-wait on and off, times one message per
call back to back (gap 0) and with a 20 ms sleep between calls (50 req/s arriving one at a
time). Only the session run is timed (no tokenizer, no HTTP), so any difference between the
two gaps is the machine's: caches, frequency and scheduler state after the cores went idle.
"""

from __future__ import annotations

import argparse
import time

import numpy as np
import onnxruntime as ort

from mangaassist.inference import open_bundle
from mangaassist.inference.bundle import PRECISIONS
from mangaassist.inference.tokenize import BatchTokenizer

TEXTS = ("where is my order", "is vol 12 of one piece in stock and when does 13 ship", "hi",
         "any sales this weekend?")  # fmt: skip


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("bundle")
    parser.add_argument("--precision", default="int8", choices=list(PRECISIONS))
    parser.add_argument("--calls", type=int, default=200)
    a = parser.parse_args()
    b = open_bundle(a.bundle)
    tok = BatchTokenizer.from_file(b.folder / "tokenizer" / "tokenizer.json", b.max_length)
    inputs = [tok([t]) for t in TEXTS]
    for threads in (1, 2):
        for spin in ("0", "1"):
            o = ort.SessionOptions()
            o.intra_op_num_threads, o.inter_op_num_threads, o.log_severity_level = threads, 1, 3
            o.add_session_config_entry("session.intra_op.allow_spinning", spin)
            path = str(b.folder / PRECISIONS[a.precision])
            s = ort.InferenceSession(path, o, providers=["CPUExecutionProvider"])
            for x in inputs:
                s.run(["logits"], x)  # warm-up
            for gap in (0.0, 0.02):
                lat = []
                for i in range(a.calls):
                    t0 = time.perf_counter()
                    s.run(["logits"], inputs[i % len(inputs)])
                    lat.append((time.perf_counter() - t0) * 1000)
                    if gap:
                        time.sleep(gap)
                p50, p95 = np.percentile(lat, [50, 95])
                print(f"[IDLE_GAP] precision={a.precision} threads={threads} spin={spin} "
                      f"gap_ms={gap * 1000:.0f} p50_ms={p50:.2f} p95_ms={p95:.2f}")  # fmt: skip


if __name__ == "__main__":
    main()
