"""ONNX export of the classifier: same logits as PyTorch, batch 1 and padded batches."""

from __future__ import annotations

import doctest

import numpy as np
import pytest
import torch

from mangaassist.data.schema import INTENTS
from mangaassist.model import onnx_runtime
from mangaassist.model.backbone import load_tokenizer
from mangaassist.model.module import IntentClassifier
from mangaassist.model.onnx_runtime import ParityError, check_parity, onnx_predictor, to_onnx

TEXTS = [
    "hi",
    "where is my order",
    "vol 3 came ripped can i swap it for a new one or do i need to send it back first",
    "ＳＨＯＷ ME  horror manga",  # normalisation runs first
    "is chainsaw man finished",
]


@pytest.fixture(scope="module")
def exported(tmp_path_factory):
    torch.manual_seed(0)
    model = IntentClassifier("bert", num_labels=10, init="tiny", pooling="mean")
    with torch.no_grad():
        model.temperature.fill_(1.7)
    tok = load_tokenizer(None, "tiny")
    path = to_onnx(model, tok, tmp_path_factory.mktemp("onnx") / "sub" / "model.onnx", 32)
    predictor = onnx_predictor(path, tok, 32, INTENTS, temperature=1.7)
    return model, tok, predictor


def test_doctest():
    assert doctest.testmod(onnx_runtime).failed == 0


def test_logits_match_torch_across_lengths_in_one_batch(exported):
    model, _, predictor = exported
    assert model.training  # a fresh module trains; export must not change that
    enc = predictor.encode(TEXTS)
    lengths = enc["attention_mask"].sum(1)
    assert len(set(lengths.tolist())) > 2 and enc["input_ids"].shape[1] == lengths.max()
    model.eval()
    with torch.no_grad():
        ref = model(torch.from_numpy(enc["input_ids"]), torch.from_numpy(enc["attention_mask"]))
    got = predictor.logits(TEXTS, batch_size=3)  # two batches, each padded to its own longest
    assert got.shape == (len(TEXTS), 10)
    np.testing.assert_allclose(got, ref.numpy(), atol=1e-4)
    assert check_parity(model, predictor, TEXTS, atol=1e-4) < 1e-4
    model.train()


def test_cosine_head_exports_with_parity(tmp_path):
    torch.manual_seed(0)
    model = IntentClassifier("bert", num_labels=10, init="tiny", head="cosine")
    tok = load_tokenizer(None, "tiny")
    predictor = onnx_predictor(to_onnx(model, tok, tmp_path / "model.onnx", 32), tok, 32, INTENTS)
    assert check_parity(model, predictor, TEXTS, atol=1e-4) < 1e-4


def test_served_probabilities_are_softmax_of_logits_over_temperature(exported):
    model, _, predictor = exported
    enc = predictor.encode(TEXTS[1:2])
    ids, mask = (torch.from_numpy(enc[k]) for k in ("input_ids", "attention_mask"))
    ref = model.eval().predict_proba(ids, mask)[0].numpy()
    model.train()
    one = predictor.predict_one(TEXTS[1])
    assert one.shape == (10,) and one.sum() == pytest.approx(1.0)
    np.testing.assert_allclose(one, ref, atol=1e-5)
    np.testing.assert_allclose(predictor.proba(TEXTS[1:2])[0], one, atol=1e-7)


def test_parity_failure_names_the_fix(exported):
    model, _, predictor = exported
    other = IntentClassifier("bert", num_labels=10, init="tiny")  # different random weights
    with pytest.raises(ParityError, match=r"latency\.runtime: torch"):
        check_parity(other, predictor, TEXTS, atol=1e-4)
    with pytest.raises(ValueError):
        check_parity(model, predictor, [], atol=1e-4)
