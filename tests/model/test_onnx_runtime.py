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


def test_a_model_without_the_secondary_head_exports_one_output(exported):
    _, _, predictor = exported
    assert [o.name for o in predictor.session.get_outputs()] == ["logits"]
    assert predictor.run_heads(predictor.encode(TEXTS))[1] is None


def test_the_secondary_head_is_a_second_output_checked_for_parity(tmp_path):
    import onnx

    from mangaassist.inference.policy import SecondaryRule

    torch.manual_seed(0)
    model = IntentClassifier("bert", num_labels=10, init="tiny", secondary_weight=0.5)
    tok = load_tokenizer(None, "tiny")
    path = to_onnx(model, tok, tmp_path / "model.onnx", 32)
    graph = onnx.load(str(path)).graph
    assert [o.name for o in graph.output] == ["logits", "secondary_logits"]
    for out in graph.output:  # (batch, 10): a dynamic batch axis, C fixed
        dims = out.type.tensor_type.shape.dim
        assert dims[0].dim_param == "batch" and dims[1].dim_value == 10

    predictor = onnx_predictor(path, tok, 32, INTENTS)
    predictor.secondary = SecondaryRule(threshold=0.5)
    model.eval()
    enc = predictor.encode(TEXTS)
    with torch.no_grad():
        ref_z, ref_z2 = model.forward_with_secondary(
            torch.from_numpy(enc["input_ids"]), torch.from_numpy(enc["attention_mask"])
        )
    z, z2 = predictor.heads(TEXTS, batch_size=2)  # batches of their own padding
    np.testing.assert_allclose(z, ref_z.numpy(), atol=1e-4)
    np.testing.assert_allclose(z2, ref_z2.numpy(), atol=1e-4)
    diffs = onnx_runtime.parity_diffs(model, predictor, TEXTS, atol=1e-4)
    assert set(diffs) == {"logits", "secondary_logits"} and max(diffs.values()) < 1e-4
    assert check_parity(model, predictor, TEXTS, atol=1e-4) == max(diffs.values())

    # A secondary head that drifted is caught by name, even when the primary logits agree.
    with torch.no_grad():
        model.secondary_head.bias += 0.1
    with pytest.raises(ParityError, match=r"secondary_logits differ from PyTorch by 0\.1"):
        onnx_runtime.parity_diffs(model, predictor, TEXTS, atol=1e-4)
    model.train()
