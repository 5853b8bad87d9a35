"""truncation=head_tail end to end: a tiny run trained with it, its bundle, serving, old bundles.

The long messages (a story, then the ask at the end) are written for this test, not taken
from the golden set or the phrasing banks. At ``model.max_length=24`` with 8 head tokens a
message over 24 tokens keeps [CLS], its first 8 word pieces, its last 14 and [SEP].
"""

from __future__ import annotations

import json

import numpy as np
import pytest
import torch
from hydra.utils import instantiate
from omegaconf import OmegaConf

from mangaassist.data.normalize import normalize_text
from mangaassist.data.truncation import Truncation
from mangaassist.errors import UserError
from mangaassist.export import bundle as export_bundle
from mangaassist.export.bundle import export_run
from mangaassist.inference import Predictor, open_bundle
from mangaassist.inference.bundle import BundleError
from mangaassist.inference.tokenize import BatchTokenizer
from mangaassist.training.run_dir import load_run, truncation_of
from mangaassist.training.train import train
from tests.conftest import TINY, compose_cfg, write_toy_jsonl
from tests.export.edit import with_manifest

MAX_LENGTH, HEAD = 24, 8
STORIES = [
    "ok so this is a long one my cousin got me into reading last summer and we have been "
    "trading volumes back and forth every weekend since then",
    "apologies for the long message but yesterday after work i was sitting on the train "
    "thinking about the series my neighbour lent me a while ago",
]
ASKS = {
    "order_tracking": "anyway has my parcel shipped yet",
    "return_request": "anyway i would like to send the damaged copy back",
    "promotion": "anyway are there coupon codes this month",
    "chitchat": "anyway just wanted to say you are great",
    "faq": "anyway which wallets or cards can i use here",
    "product_question": "anyway is the deluxe printing of that title in stock",
    "escalation": "anyway i need a staff member to look at this personally",
    "checkout_help": "anyway my card gets rejected right before confirming",
    "recommendation": "anyway can you suggest a series like that",
    "product_discovery": "anyway show me the newest fantasy releases",
}


@pytest.fixture(scope="module")
def run_dir(tmp_path_factory):
    root = tmp_path_factory.mktemp("head_tail")
    toy = write_toy_jsonl(root / "toy.jsonl", n_per_class=4)
    with toy.open("a") as f:
        for label, ask in ASKS.items():
            for i in range(4):  # a distinct number each: not normalised duplicates
                row = {
                    "text": f"{STORIES[i % 2]} {i} {ask}",
                    "label": label,
                    "conversation_id": f"long-{label}-{i}",
                }
                f.write(json.dumps(row) + "\n")
    cfg = compose_cfg(
        [
            *TINY,
            "data=files",
            f"data.train={toy}",
            f"model.max_length={MAX_LENGTH}",
            "data.module.truncation=head_tail",
            f"data.module.truncation_head_tokens={HEAD}",
        ],
        root / "run",
    )
    train(cfg)
    return root / "run"


@pytest.fixture(scope="module")
def bundle_dir(run_dir):
    return export_run(run_dir, run_dir / "export")


def _long(run, texts: list[str]) -> list[int]:
    """Indices of the messages over MAX_LENGTH tokens untruncated."""
    full = run.tokenizer([normalize_text(t) for t in texts])["input_ids"]
    return [i for i, ids in enumerate(full) if len(ids) > MAX_LENGTH]


def test_the_run_and_its_bundle_record_the_strategy(run_dir, bundle_dir):
    assert OmegaConf.load(run_dir / "config.yaml").data.module.truncation == "head_tail"
    assert load_run(run_dir).truncation == Truncation("head_tail", HEAD)
    manifest = json.loads((bundle_dir / "manifest.json").read_text())
    assert manifest["truncation_strategy"] == "head_tail"
    assert manifest["truncation_head_tokens"] == HEAD
    assert manifest["truncation"] == (
        "head_tail: a message over 24 tokens keeps [CLS], its first 8 and last 14 word "
        "pieces, and [SEP]; a shorter one is kept whole"
    )
    assert open_bundle(bundle_dir).truncation == Truncation("head_tail", HEAD)
    # The README's example (for a service written from the bundle alone) cuts the same way.
    readme = (bundle_dir / "README.md").read_text()
    assert "its first 8 and last 14 tokens" in readme
    assert "tok.no_truncation()" in readme and "enable_truncation" not in readme
    assert "    ids = ids[:9] + ids[-15:]" in readme


def test_served_ids_are_the_ids_training_fed_the_model(run_dir, bundle_dir):
    """The DataModule rebuilt from the run's config.yaml (as training built it) and the
    bundle's tokenizer (as serving builds it) give the same ids on every long message, and
    those ids end with the message's ask."""
    run = load_run(run_dir)
    cfg = run.config
    dm = instantiate(cfg.data.module, _partial_=True)(
        source=instantiate(cfg.data.source), tokenizer=run.tokenizer, name=cfg.data.name
    )
    predictor = Predictor.from_bundle(open_bundle(bundle_dir))
    for split in ("train", "val", "test"):
        enc = dm._encode(split)
        rows = _long(run, enc["texts"])
        assert rows, f"no long message in the {split} split"  # val: the export checked them
        texts = [enc["texts"][i] for i in rows]
        served = predictor.tokenizer.encode(texts)
        assert served == [list(enc["input_ids"][i]) for i in rows]
        assert served == run.token_ids(texts)  # the run's PyTorch scoring path too
        for text, ids in zip(texts, served, strict=True):
            assert len(ids) == MAX_LENGTH
            ask = run.tokenizer(ASKS[next(k for k, a in ASKS.items() if text.endswith(a))])
            ask_ids = ask["input_ids"][1:-1]  # without [CLS] and [SEP]
            assert ids[-1 - len(ask_ids) : -1] == ask_ids  # the ask is in the tail
            full = run.tokenizer(text)["input_ids"]
            assert ids == full[:9] + full[-15:]  # [CLS] + the first 8, the last 14 + [SEP]
    texts = [f"{STORIES[1]} 9 {ask}" for ask in ASKS.values()]
    # The run's PyTorch scoring (evaluation, teacher) and the bundle answer alike.
    np.testing.assert_allclose(predictor.logits(texts), run.predict_logits(texts), atol=1e-4)
    first = run.tokenizer(normalize_text(texts[0]), truncation=True, max_length=MAX_LENGTH)
    assert predictor.tokenizer.encode(texts[:1])[0] != first["input_ids"]


class _FirstOnly(BatchTokenizer):
    """A served path that forgets the run's truncation (as a stale serving build would)."""

    def __init__(self, tokenizer, max_length, preprocess=normalize_text, truncation=None):
        super().__init__(tokenizer, max_length, preprocess)


def test_export_refuses_a_served_path_that_truncates_otherwise(run_dir, tmp_path, monkeypatch):
    monkeypatch.setattr(export_bundle, "BatchTokenizer", _FirstOnly)
    with pytest.raises(UserError, match=r"tokenizes .* differently from the tokenizer"):
        export_run(run_dir, tmp_path / "bundle")
    assert not (tmp_path / "bundle").exists()


def test_a_bundle_without_the_keys_loads_as_first(run_dir, bundle_dir, tmp_path):
    def drop(m):
        del m["truncation_strategy"], m["truncation_head_tokens"]

    bundle = open_bundle(with_manifest(bundle_dir, tmp_path, drop))
    assert bundle.truncation == Truncation("first")
    text = f"{STORIES[0]} 7 {ASKS['faq']}"
    want = load_run(run_dir).tokenizer(normalize_text(text), truncation=True, max_length=24)
    assert Predictor.from_bundle(bundle).tokenizer.encode([text])[0] == want["input_ids"]


@pytest.mark.parametrize(
    ("change", "message"),
    [
        (
            {"truncation_strategy": "middle"},
            r"manifest\.json: truncation_strategy='middle' is not allowed: use one of "
            r"first, head_tail",
        ),
        (
            {"truncation_head_tokens": 23},
            r"manifest\.json: truncation_head_tokens=23 is not allowed with max_length=24: "
            r"use a whole number from 0 to 22",
        ),
    ],
)
def test_a_bundle_with_a_bad_value_is_refused_at_load(bundle_dir, tmp_path, change, message):
    bad = with_manifest(bundle_dir, tmp_path, lambda m: m.update(change))
    with pytest.raises(BundleError, match=message) as err:
        open_bundle(bad)
    assert err.value.check == "manifest"


def test_an_old_run_is_first_and_a_bad_run_value_is_refused(run_dir):
    cfg = OmegaConf.load(run_dir / "config.yaml")
    del cfg.data.module["truncation"], cfg.data.module["truncation_head_tokens"]
    assert truncation_of(cfg) == Truncation("first")  # runs trained before the option
    cfg.data.module.truncation = "middle"
    with pytest.raises(UserError, match=r"data\.module\.truncation='middle' is not allowed"):
        truncation_of(cfg)


def test_explain_and_latency_see_the_ids_the_run_trained_on(run_dir, bundle_dir):
    """`mangaassist explain` and both latency runtimes cut a long message as training did."""
    from mangaassist.evaluation.latency import measure_latency
    from mangaassist.model.onnx_runtime import onnx_predictor
    from mangaassist.training.explain import explain

    run = load_run(run_dir)
    text = f"{STORIES[0]} 5 {ASKS['checkout_help']}"
    want = run.token_ids([text])[0]
    assert (
        len(want) == MAX_LENGTH
        and want
        != run.tokenizer(normalize_text(text), truncation=True, max_length=MAX_LENGTH)["input_ids"]
    )  # head_tail differs from first here
    assert explain(run_dir, text).token_ids == want
    onnx = onnx_predictor(
        bundle_dir / "model.onnx",
        run.tokenizer,
        MAX_LENGTH,
        run.labels,
        preprocess=run.preprocess,
        truncation=run.truncation,
    )
    assert onnx.tokenizer.encode([text])[0] == want
    seen = []

    class Recorder(torch.nn.Module):  # what the torch timing path feeds the model
        def forward(self, ids, mask):
            seen.append(ids[0].tolist())
            return run.model(ids, mask)

    measure_latency(
        Recorder(),
        run.tokenizer,
        [text],
        MAX_LENGTH,
        warmup=0,
        max_messages=1,
        preprocess=run.preprocess,
        truncation=run.truncation,
    )
    assert seen and all(ids == want for ids in seen)


def test_a_teacher_cache_of_another_truncation_is_refused(run_dir, tmp_path):
    from mangaassist.training.teacher import read_cache, teacher_identity, text_key, write_cache

    identity = teacher_identity(run_dir)
    assert identity["truncation"].startswith("head_tail: a message over 24 tokens")
    keys = [text_key("hello")]
    cache = tmp_path / "cache.safetensors"
    write_cache(
        cache,
        {**identity, "truncation": Truncation().describe(MAX_LENGTH)},
        keys,
        np.zeros((1, 10), dtype=np.float32),
    )
    with pytest.raises(UserError, match=r"stale: it was computed with truncation='first 24"):
        read_cache(cache, identity, keys)
