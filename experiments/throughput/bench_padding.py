"""Training throughput of the default encoder: per-batch padding + length grouping vs pad-to-128.

Both arms run the same training step (focal loss, layer-wise AdamW, clipping at 1.0) on the
same BANKING77 training messages, batch 32, in one process, one after the other:

    python experiments/throughput/bench_padding.py [--steps 30] [--threads 2]

Prints examples/s and tokens/s per arm and their ratio, and writes ``results.json`` beside
this file. Target: >= 100 examples/s with per-batch padding and >= 5x over padding to 128.
"""

from __future__ import annotations

import argparse
import json
import platform
import random
import time
from pathlib import Path

import torch

from mangaassist.data.datamodule import LengthGroupedBatchSampler
from mangaassist.data.normalize import normalize_text
from mangaassist.data.sources import banking77
from mangaassist.model import FocalLoss, IntentClassifier, layerwise_param_groups, load_tokenizer


def run_arm(model, tokenizer, texts, labels, batches, pad_to_max: bool, bf16: bool) -> dict:
    groups = layerwise_param_groups(model.encoder, model.head, 1e-4, 0.8, 0.01)
    opt = torch.optim.AdamW(groups, fused=True)
    loss_fn = FocalLoss(2.0)
    model.train()
    n_ex = n_tok = 0
    elapsed = 0.0
    for step, batch in enumerate(batches):
        enc = tokenizer(
            [texts[i] for i in batch],
            truncation=True,
            max_length=128,
            padding="max_length" if pad_to_max else "longest",
            return_tensors="pt",
        )
        y = torch.tensor([labels[i] for i in batch])
        t0 = time.perf_counter()
        # bf16 autocast = Lightning's precision="bf16-mixed": fp32 weights, bf16 matmuls.
        with torch.autocast("cpu", dtype=torch.bfloat16, enabled=bf16):
            logits = model(enc["input_ids"], enc["attention_mask"])
        loss = loss_fn(logits, y)
        loss.backward()
        torch.nn.utils.clip_grad_norm_(model.parameters(), 1.0)
        opt.step()
        opt.zero_grad(set_to_none=True)
        if step >= 3:  # the first steps pay for allocator warm-up
            elapsed += time.perf_counter() - t0
            n_ex += len(batch)
            n_tok += enc["input_ids"].numel()
    return {
        "examples_per_s": n_ex / elapsed,
        "padded_tokens_per_s": n_tok / elapsed,
        "steps_timed": len(batches) - 3,
        "seconds": elapsed,
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--steps", type=int, default=30)
    parser.add_argument("--threads", type=int, default=torch.get_num_threads())
    # bf16-mixed by default: what trainer=cpu_bf16, the default trainer, runs.
    parser.add_argument("--precision", choices=["32", "bf16-mixed"], default="bf16-mixed")
    args = parser.parse_args()
    torch.set_num_threads(args.threads)
    torch.manual_seed(0)
    src = banking77()
    texts = [normalize_text(e.text) for e in src.train]
    index = {lab: i for i, lab in enumerate(src.labels)}
    labels = [index[e.label] for e in src.train]
    tokenizer = load_tokenizer()
    lengths = [len(ids) for ids in tokenizer(texts, truncation=True, max_length=128)["input_ids"]]
    grouped = list(LengthGroupedBatchSampler(lengths, 32, seed=0))[: args.steps + 3]
    order = list(range(len(texts)))
    random.Random(0).shuffle(order)
    plain = [order[i * 32 : (i + 1) * 32] for i in range(args.steps + 3)]

    results = {}
    for arm, batches, pad in (("per_batch_padding", grouped, False), ("pad_to_128", plain, True)):
        model = IntentClassifier("bert", num_labels=len(src.labels))  # fresh weights per arm
        bf16 = args.precision == "bf16-mixed"
        results[arm] = run_arm(model, tokenizer, texts, labels, batches, pad, bf16)
        print(
            f"[BENCH] arm={arm} ex_per_sec={results[arm]['examples_per_s']:.1f} "
            f"padded_tokens_per_sec={results[arm]['padded_tokens_per_s']:.0f}",
            flush=True,
        )
    ratio = results["per_batch_padding"]["examples_per_s"] / results["pad_to_128"]["examples_per_s"]
    results |= {
        "ratio": ratio,
        "threads": args.threads,
        "torch": torch.__version__,
        "machine": platform.processor() or platform.machine(),
        "command": "python experiments/throughput/bench_padding.py "
        f"--steps {args.steps} --threads {args.threads}",
    }
    print(
        f"[BENCH] speedup_per_batch_vs_pad128={ratio:.2f}x "
        f"target_ex_per_sec>=100:{results['per_batch_padding']['examples_per_s'] >= 100} "
        f"target_ratio>=5:{ratio >= 5}",
        flush=True,
    )
    out = Path(__file__).with_name(f"results_{args.precision}.json")
    out.write_text(json.dumps(results, indent=1))


if __name__ == "__main__":
    main()
