import doctest
import time

import pytest
import torch

from mangaassist.errors import UserError
from mangaassist.model import module
from mangaassist.model.backbone import FAMILIES, load_backbone, load_tokenizer
from mangaassist.model.module import CosineHead, IntentClassifier, pool


def test_missing_weights_fail_fast_with_instructions(tmp_path, monkeypatch):
    monkeypatch.setenv("HF_HOME", str(tmp_path))  # an empty cache
    start = time.perf_counter()
    with pytest.raises(UserError) as err:
        load_backbone("distilbert", "distilbert-base-uncased")
    assert time.perf_counter() - start < 10  # no hang waiting for a hub that isn't there
    msg = str(err.value)
    assert "distilbert-base-uncased" in msg and "name_or_path" in msg and "huggingface-cli" in msg
    # The override it suggests must be a real key: model.allow_download (conf/model/*.yaml).
    assert "model.allow_download=true" in msg and "model.backbone." not in msg


def test_missing_local_folder_names_it(tmp_path):
    with pytest.raises(UserError, match="nowhere"):
        load_tokenizer(str(tmp_path / "nowhere"))


def test_unknown_family_and_init():
    with pytest.raises(UserError, match="family"):
        load_backbone("gpt2", init="tiny")
    with pytest.raises(UserError, match="init"):
        load_backbone("bert", init="random")


@pytest.mark.parametrize("family", FAMILIES)
@pytest.mark.parametrize("pooling", ["cls", "mean"])
def test_tiny_classifier_forward_shapes(family, pooling):
    model = IntentClassifier(family, num_labels=10, init="tiny", pooling=pooling)
    ids = torch.randint(5, 1000, (3, 7))
    mask = torch.ones(3, 7, dtype=torch.long)
    assert model(ids, mask).shape == (3, 10)
    probs = model.predict_proba(ids, mask)
    assert torch.allclose(probs.sum(-1), torch.ones(3))
    assert model.temperature.item() == 1.0


def test_doctest():
    assert doctest.testmod(module).failed == 0


def test_cosine_head_scores_direction_not_norm():
    torch.manual_seed(0)
    head = CosineHead(8, 4, scale=16.0)
    x = torch.randn(5, 8)
    w = head.weight.detach()
    expected = 16.0 * torch.nn.functional.cosine_similarity(x[:, None], w[None], dim=-1)
    torch.testing.assert_close(head(x), expected)
    torch.testing.assert_close(head(3.0 * x), head(x))  # a longer embedding, the same logits
    with torch.no_grad():
        head.weight[1] = 2.0 * x[0]  # class 1 points exactly at message 0: the top logit, 16
    assert head(x)[0].argmax() == 1 and head(x)[0, 1].item() == pytest.approx(16.0)


def test_cosine_classifier_and_bad_head_settings():
    model = IntentClassifier("bert", num_labels=6, init="tiny", head="cosine", head_scale=10.0)
    ids, mask = torch.randint(5, 1000, (2, 5)), torch.ones(2, 5, dtype=torch.long)
    assert isinstance(model.head, CosineHead) and model(ids, mask).abs().max() <= 10.0
    with pytest.raises(ValueError, match=r"model\.head must be one of"):
        IntentClassifier("bert", num_labels=6, init="tiny", head="mlp")
    with pytest.raises(ValueError, match="head_scale must be > 0"):
        IntentClassifier("bert", num_labels=6, init="tiny", head="cosine", head_scale=0.0)


def test_mean_pooling_ignores_padding():
    hidden = torch.tensor([[[1.0, 1.0], [3.0, 3.0], [100.0, 100.0]]])
    mask = torch.tensor([[1, 1, 0]])
    assert pool(hidden, mask, "mean").tolist() == [[2.0, 2.0]]
    assert pool(hidden, mask, "cls").tolist() == [[1.0, 1.0]]


@pytest.mark.slow
def test_default_encoder_is_the_real_minilm():
    enc = load_backbone("bert")
    assert enc.config.num_hidden_layers == 6 and enc.config.hidden_size == 384


def test_local_folder_loads_and_trains_with_dropout_on(tmp_path):
    # A model saved to a folder loads offline from it; from_pretrained hands it back in eval
    # mode, and fine-tuning needs dropout on.
    load_backbone("bert", init="tiny").save_pretrained(tmp_path / "enc")
    load_tokenizer(None).save_pretrained(tmp_path / "enc")
    model = IntentClassifier("bert", num_labels=3, name_or_path=str(tmp_path / "enc"))
    assert model.encoder.config.hidden_size == 32
    assert all(m.training for m in model.encoder.modules())
