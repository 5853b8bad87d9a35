"""Offline evaluation and the server answer the golden set identically (one inference core)."""

from __future__ import annotations

import asyncio
import json

import aiohttp
import httpx
import pytest

from mangaassist.cli import main
from mangaassist.data.schema import read_examples
from mangaassist.evaluation.after_training import GOLDEN
from tests.serve.test_app import running


async def _singles(url: str, texts: list[str]) -> list[dict]:
    async with aiohttp.ClientSession() as session:

        async def one(text: str) -> dict:
            async with session.post(f"{url}/v1/classify", json={"text": text}) as r:
                assert r.status == 200
                return await r.json()

        return await asyncio.gather(*(one(t) for t in texts))


def test_golden_set_over_http_equals_mangaassist_evaluate(tiny_bundle, tmp_path):
    out = tmp_path / "eval"
    args = ["evaluate", "--model", str(tiny_bundle), "--data", str(GOLDEN), "--out", str(out)]
    assert main([*args, "--no-latency"]) == 0
    recorded = [json.loads(line) for line in (out / "predictions.jsonl").open()]
    texts = [ex.text for ex in read_examples(GOLDEN)]
    assert [r["text"] for r in recorded] == texts and len(texts) >= 500

    with running(tiny_bundle, tmp_path, "max_wait_ms=5") as (url, _):
        served = []
        for start in range(0, len(texts), 64):  # batched requests ...
            r = httpx.post(f"{url}/v1/classify", json={"texts": texts[start : start + 64]})
            served += r.json()["results"]
        singles = asyncio.run(_singles(url, texts[:200]))  # ... and concurrent single ones

    for got in (served, singles):
        for answer, rec in zip(got, recorded, strict=False):
            assert answer["intent"] == rec["pred"], rec["text"]
            assert answer["confidence"] == pytest.approx(rec["confidence"], abs=1e-5)
            assert answer["fallback"] == (rec["action"] != "route"), rec["text"]
